"""Agents: declarative configuration plus the one-turn contract.

An agent never imports Temporal. ``BaseAgent.execute_turn`` runs exactly one turn (prepare
messages, call the model, run the tools, update the context); a worker runs it inside the
``run_turn`` activity and ``run_inline`` runs the same loop in-process.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ValidationError

from factorial._ids import new_task_id, validate_id
from factorial._inline import run_inline
from factorial._spawn import SpawnRequest
from factorial._tool_actions import (
    FINAL_OUTPUT_TOOL,
    PendingCall,
    ToolActionResult,
    run_tool_call,
)
from factorial._tool_actions import published as published_tool_action
from factorial.context import AgentContext, ExecutionContext
from factorial.errors import (
    HookSignatureError,
    InvalidPayloadError,
    MaxTurnsExceeded,
    UserError,
)
from factorial.events import (
    EventPublisher,
    progress_event_type,
)
from factorial.models import (
    Model,
    ModelClients,
    ModelRequest,
    ModelResponse,
    ModelSettings,
    ToolCall,
)
from factorial.task import Task, TaskMetadata
from factorial.tools import FunctionTool, tools_by_name

#: The public names; the rest (``tools_by_name``, ``build_workers``, ...) serve Factorial itself.
__all__ = [
    "Agent",
    "BaseAgent",
    "RunCompletion",
    "TurnCompletion",
]

logger = logging.getLogger("factorial")

ContextT = TypeVar("ContextT", bound=AgentContext)

#: Positional arguments each lifecycle hook receives.
_HOOK_ARITY = {
    "on_run_start": 2,  # (agent_ctx, execution_ctx)
    "on_run_end": 3,  # (agent_ctx, execution_ctx, RunCompletion)
    "on_turn_start": 2,  # (agent_ctx, execution_ctx)
    "on_turn_end": 3,  # (agent_ctx, execution_ctx, TurnCompletion)
    "on_pending_tool_call": 3,  # (agent_ctx, execution_ctx, ToolCall)
    "on_pending_tool_results": 3,  # (agent_ctx, execution_ctx, list[tuple[str, Any]])
    "on_run_cancelled": 2,  # (agent_ctx, execution_ctx)
}


@dataclass
class TurnCompletion(Generic[ContextT]):
    """What one turn produced."""

    is_done: bool
    context: ContextT
    output: Any = None
    pending_tool_calls: list[PendingCall] = field(default_factory=list)
    child_batches: list[SpawnRequest] = field(default_factory=list)


@dataclass
class RunCompletion(Generic[ContextT]):
    """How a run ended: ``status`` is completed, failed or cancelled."""

    status: str
    context: ContextT
    output: Any = None
    error: str | None = None


def _snake_case(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def _check_hook(name: str, hook: Callable[..., Any] | None) -> None:
    if hook is None:
        return
    if not callable(hook):
        raise HookSignatureError(f"{name} must be callable, got {type(hook).__name__}")
    try:
        inspect.signature(hook).bind(*([None] * _HOOK_ARITY[name]))
    except TypeError as err:
        raise HookSignatureError(
            f"{name} must accept {_HOOK_ARITY[name]} positional arguments: {err}"
        ) from None
    except ValueError:  # builtins without a signature: trust them
        return


async def _maybe_await(value: Any) -> Any:
    return await value if inspect.isawaitable(value) else value


class BaseAgent(Generic[ContextT]):
    """An agent: instructions, tools and a model, plus overridable turn steps.

    Subclass it to override ``prepare_messages``, ``completion``, ``tool_action`` or
    ``run_turn``; construct ``Agent`` for the common case.

    Args:
        name: Unique name per orchestrator; defaults to the snake_case class name.
        description: Human-readable description.
        instructions: System prompt, or a callable of the context returning it.
        tools: Plain typed functions or ``FunctionTool`` objects.
        model: A ``Model``, or a callable of the context choosing one.
        model_settings: ``ModelSettings`` (values or callables of the context).
        max_turns: Fail the run if it has no final output after this many turns.
        output_type: A pydantic model; adds a ``final_output`` tool whose validated
            arguments become the run's output.
        context_class: The ``AgentContext`` subclass payloads are validated against.
        request_timeout: Seconds one model request may take.
        on_run_start, on_run_end, on_turn_start, on_turn_end, on_pending_tool_call,
        on_pending_tool_results, on_run_cancelled: Lifecycle hooks (sync or async).

    Raises:
        HookSignatureError: A hook cannot take the arguments Factorial passes.
        ToolDefinitionError: A tool cannot be described to a model.
    """

    def __init__(
        self,
        name: str | None = None,
        description: str | None = None,
        instructions: str | Callable[[ContextT], str] = "",
        tools: Sequence[Callable[..., Any] | FunctionTool] | None = None,
        model: Model | Callable[[ContextT], Model] | None = None,
        model_settings: ModelSettings | None = None,
        max_turns: int | None = None,
        output_type: type[BaseModel] | None = None,
        context_class: type[ContextT] = AgentContext,  # type: ignore[assignment]  # the base default
        request_timeout: float = 120.0,
        on_run_start: Callable[..., Any] | None = None,
        on_run_end: Callable[..., Any] | None = None,
        on_turn_start: Callable[..., Any] | None = None,
        on_turn_end: Callable[..., Any] | None = None,
        on_pending_tool_call: Callable[..., Any] | None = None,
        on_pending_tool_results: Callable[..., Any] | None = None,
        on_run_cancelled: Callable[..., Any] | None = None,
    ) -> None:
        self.name = name or _snake_case(type(self).__name__)
        self.description = description or type(self).__name__
        self.instructions = instructions
        self.tools = tools_by_name(tools or [])
        if output_type is not None and FINAL_OUTPUT_TOOL in self.tools:
            raise UserError(f"a tool may not be named {FINAL_OUTPUT_TOOL!r} with output_type")
        self.model = model
        self.model_settings = model_settings or ModelSettings()
        if max_turns is not None and max_turns < 1:
            raise UserError("max_turns must be at least 1")
        self.max_turns = max_turns
        if output_type is not None and not (
            isinstance(output_type, type) and issubclass(output_type, BaseModel)
        ):
            raise UserError("output_type must be a pydantic BaseModel subclass")
        self.output_type = output_type
        if not (isinstance(context_class, type) and issubclass(context_class, AgentContext)):
            raise UserError("context_class must be a subclass of AgentContext")
        self.context_class = context_class
        self.request_timeout = request_timeout
        hooks = {
            "on_run_start": on_run_start,
            "on_run_end": on_run_end,
            "on_turn_start": on_turn_start,
            "on_turn_end": on_turn_end,
            "on_pending_tool_call": on_pending_tool_call,
            "on_pending_tool_results": on_pending_tool_results,
            "on_run_cancelled": on_run_cancelled,
        }
        for hook_name, hook in hooks.items():
            _check_hook(hook_name, hook)
        self.hooks = hooks

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r})"

    # -- payloads ------------------------------------------------------------------------

    def validate_payload(self, payload: Any) -> ContextT:
        """Return ``payload`` as this agent's context class.

        Raises:
            InvalidPayloadError: The payload does not validate.
        """
        if isinstance(payload, self.context_class):
            return payload
        data = payload.model_dump() if isinstance(payload, BaseModel) else payload
        try:
            return self.context_class.model_validate(data)
        except ValidationError as err:
            raise InvalidPayloadError(
                f"payload for agent {self.name!r} does not validate as "
                f"{self.context_class.__name__}: {err}"
            ) from None

    def create_task(self, owner_id: str, payload: ContextT | dict[str, Any]) -> Task:
        """A new task of this agent for ``orchestrator.enqueue_task(agent=..., task=...)``.

        Raises:
            InvalidIdError: ``owner_id`` is not usable as part of a workflow id.
            InvalidPayloadError: The payload does not validate as ``context_class``.
        """
        return Task(
            id=new_task_id(),
            agent=self.name,
            payload=self.validate_payload(payload),
            metadata=TaskMetadata(
                owner_id=validate_id(owner_id, "owner id"), created_at=datetime.now(UTC)
            ),
        )

    # -- overridable turn steps ----------------------------------------------------------

    def resolve_model(self, agent_ctx: ContextT) -> Model:
        """The model for this turn (the ``model`` argument, or its choice)."""
        from factorial.models import gpt_41_mini

        chosen = (
            self.model(agent_ctx)
            if callable(self.model) and not isinstance(self.model, Model)
            else self.model
        )
        return chosen or gpt_41_mini

    def prepare_messages(self, agent_ctx: ContextT) -> list[dict[str, Any]]:
        """The chat messages for the model: system instructions, then the conversation."""
        instructions = (
            self.instructions(agent_ctx) if callable(self.instructions) else self.instructions
        )
        system = [{"role": "system", "content": instructions}] if instructions else []
        return system + list(agent_ctx.messages)

    def tool_schemas(self, agent_ctx: ContextT) -> list[dict[str, Any]]:
        """OpenAI tool schemas of the tools enabled for this context."""
        schemas = [t.openai_schema() for t in self.tools.values() if t.enabled_for(agent_ctx)]
        if self.output_type is not None:
            schemas.append(
                {
                    "type": "function",
                    "function": {
                        "name": FINAL_OUTPUT_TOOL,
                        "description": "Call this with the final answer to finish the task.",
                        "parameters": self.output_type.model_json_schema(),
                    },
                }
            )
        return schemas

    async def completion(
        self, agent_ctx: ContextT, messages: list[dict[str, Any]]
    ) -> ModelResponse:
        """Ask the model for the next message."""
        execution_ctx = ExecutionContext.current()
        request = ModelRequest(
            messages=messages,
            tools=self.tool_schemas(agent_ctx),
            settings=self.model_settings.resolve(agent_ctx),
            timeout=self.request_timeout,
            task_id=execution_ctx.task_id,
            turn=agent_ctx.turn,
            attempt=agent_ctx.attempt,
        )
        clients = execution_ctx._clients or ModelClients()
        return await self.resolve_model(agent_ctx).complete(request, clients)

    async def tool_action(self, tool_call: ToolCall, agent_ctx: ContextT) -> ToolActionResult:
        """Run one tool call and describe the outcome."""
        return await run_tool_call(self, tool_call, agent_ctx)

    async def run_turn(self, agent_ctx: ContextT) -> TurnCompletion[ContextT]:
        """Run one turn: model call, tool calls, context update."""
        events = ExecutionContext.current().events
        if not agent_ctx.messages and agent_ctx.query:
            agent_ctx.messages.append({"role": "user", "content": agent_ctx.query})
        messages = self.prepare_messages(agent_ctx)
        response = await _published(
            events, "completion", self.completion(agent_ctx, messages), _describe_response
        )
        agent_ctx.messages.append(response.assistant_message())
        if not response.tool_calls:
            return self._text_completion(agent_ctx, response)
        results = await asyncio.gather(
            *(published_tool_action(self, call, agent_ctx) for call in response.tool_calls)
        )
        for result in results:
            if result.pending is None:
                agent_ctx.messages.append(result.message())
        final = next((r.final for r in results if r.final is not None), None)
        pending = [r.pending for r in results if r.pending is not None]
        for result in results:
            if result.pending is not None:
                await self._call_hook("on_pending_tool_call", agent_ctx, result.tool_call)
        agent_ctx.turn += 1
        if final is not None:
            return TurnCompletion(True, agent_ctx, output=final.model_dump(mode="json"))
        children = [request for result in results for request in result.forks]
        return TurnCompletion(False, agent_ctx, pending_tool_calls=pending, child_batches=children)

    def _text_completion(
        self, agent_ctx: ContextT, response: ModelResponse
    ) -> TurnCompletion[ContextT]:
        agent_ctx.turn += 1
        if self.output_type is None:
            return TurnCompletion(True, agent_ctx, output=response.content)
        try:
            value = self.output_type.model_validate_json(response.content or "")
        except ValidationError:
            agent_ctx.messages.append(
                {
                    "role": "user",
                    "content": f"Call the {FINAL_OUTPUT_TOOL} tool with your final answer.",
                }
            )
            return TurnCompletion(False, agent_ctx)
        return TurnCompletion(True, agent_ctx, output=value.model_dump(mode="json"))

    # -- running a turn with hooks and events ---------------------------------------------

    async def execute_turn(
        self,
        agent_ctx: ContextT,
        execution_ctx: ExecutionContext,
        resumed_results: list[tuple[str, Any]] | None = None,
    ) -> TurnCompletion[ContextT]:
        """Run one turn with its hooks and progress events; the unit a worker runs.

        Check ``turns_exhausted`` afterwards: the context is kept either way.
        """
        token = execution_ctx._bind()
        try:
            if resumed_results:
                await self._call_hook("on_pending_tool_results", agent_ctx, resumed_results)
            if agent_ctx.turn == 0:
                await self._call_hook("on_run_start", agent_ctx)
            await self._call_hook("on_turn_start", agent_ctx)
            completion = await _published(
                execution_ctx.events,
                "run_turn",
                self.run_turn(agent_ctx),
                lambda c: {"turn": c.context.turn, "done": c.is_done},
            )
            await self._call_hook("on_turn_end", agent_ctx, completion)
            if completion.is_done:
                await self._call_hook(
                    "on_run_end",
                    agent_ctx,
                    RunCompletion("completed", agent_ctx, output=completion.output),
                )
            return completion
        finally:
            ExecutionContext._unbind(token)

    def turns_exhausted(self, completion: TurnCompletion[ContextT]) -> MaxTurnsExceeded | None:
        """The error to end the run with if ``max_turns`` ran out without a final output."""
        if (
            self.max_turns is None
            or completion.is_done
            or completion.pending_tool_calls
            or completion.child_batches
            or completion.context.turn < self.max_turns
        ):
            return None
        return MaxTurnsExceeded(
            f"agent {self.name!r} reached max_turns={self.max_turns} without a final output"
        )

    async def _call_hook(self, name: str, agent_ctx: ContextT, *extra: Any) -> None:
        hook = self.hooks.get(name)
        if hook is None:
            return
        try:
            await _maybe_await(hook(agent_ctx, ExecutionContext.current(), *extra))
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.exception("lifecycle hook %s of agent %s raised", name, self.name)

    def hooks_outside_turns(self) -> list[str] | None:
        """The hooks the task workflow runs as activities, or None if ``run_hook`` is custom."""
        if type(self).run_hook is not BaseAgent.run_hook:
            return None
        return [name for name in ("on_run_end", "on_run_cancelled") if self.hooks.get(name)]

    async def run_hook(
        self,
        name: str,
        agent_ctx: ContextT,
        execution_ctx: ExecutionContext,
        error: str | None = None,
    ) -> None:
        """Run ``on_run_end`` (for a failed run) or ``on_run_cancelled`` outside a turn."""
        token = execution_ctx._bind()
        try:
            if name == "on_run_end":
                await self._call_hook(
                    name, agent_ctx, RunCompletion("failed", agent_ctx, error=error)
                )
            else:
                await self._call_hook(name, agent_ctx)
        finally:
            ExecutionContext._unbind(token)

    # -- running without Temporal --------------------------------------------------------

    async def run_inline(
        self,
        payload: ContextT | dict[str, Any],
        *,
        owner_id: str = "inline",
        task_id: str = "inline",
        clients: ModelClients | None = None,
        on_event: Callable[[dict[str, Any]], None] | None = None,
    ) -> RunCompletion[ContextT]:
        """Run the turn loop in this process, without Temporal (notebooks, unit tests).

        Args:
            payload: The starting context (or a dict validated against ``context_class``).
            owner_id: Owner id put on events.
            task_id: Task id put on events.
            clients: Model clients; defaults to keys and base URLs from the environment.
            on_event: Called with each event dict.

        Returns:
            The completed run's output and final context.

        Raises:
            InlineRunError: The agent has deferred or forking tools.
            MaxTurnsExceeded: ``max_turns`` turns ran without a final output.
            ModelHTTPError: The model provider failed (inline runs do not retry).
        """
        return await run_inline(
            self, payload, owner_id=owner_id, task_id=task_id, clients=clients, on_event=on_event
        )


class Agent(BaseAgent[AgentContext]):
    """An agent configured entirely by constructor arguments; see ``BaseAgent``."""

    def __init__(self, name: str | None = None, **kwargs: Any) -> None:
        super().__init__(name=name or "agent", **kwargs)


T = TypeVar("T")


async def _published(
    events: EventPublisher | None,
    operation: str,
    work: Awaitable[T],
    describe: Callable[[T], dict[str, Any]],
) -> T:
    """Await ``work`` between ``progress_update_{operation}_started/completed/failed`` events."""
    if events is None:
        return await work
    events.emit(progress_event_type(operation, "started"))
    try:
        result = await work
    except asyncio.CancelledError:
        raise
    except Exception as err:
        events.emit(progress_event_type(operation, "failed"), error=f"{type(err).__name__}: {err}")
        raise
    events.emit(progress_event_type(operation, "completed"), data=describe(result))
    return result


def _describe_response(response: ModelResponse) -> dict[str, Any]:
    return {
        "content": response.content,
        "tool_calls": [c.model_dump() for c in response.tool_calls],
        "usage": response.usage,
    }
