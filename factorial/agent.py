"""Agents: declarative configuration plus the one-turn contract.

An agent never imports Temporal. ``BaseAgent.execute_turn`` runs exactly one turn (prepare
messages, call the model, run the tools, update the context); a worker runs it inside the
``run_turn`` activity and ``run_inline`` runs the same loop in-process.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ValidationError

from factorial import _turn
from factorial._budget import Budget, checked_budget
from factorial._chunks import streamed_completion
from factorial._hooks import check_hook
from factorial._ids import new_task_id, validate_id
from factorial._inline import run_inline
from factorial._tool_actions import (
    FINAL_OUTPUT_TOOL,
    ToolActionResult,
    final_output_schema,
    run_tool_call,
)
from factorial._turn import RunCompletion, TurnCompletion
from factorial.context import AgentContext, ExecutionContext
from factorial.errors import InvalidPayloadError, MaxTurnsExceeded, UserError
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

#: The public names. ``RunCompletion`` and ``TurnCompletion`` are defined with the turn
#: (``factorial._turn``), the hooks' checks and calls in ``factorial._hooks``.
__all__ = [
    "Agent",
    "BaseAgent",
    "RunCompletion",
    "TurnCompletion",
]

ContextT = TypeVar("ContextT", bound=AgentContext)


def _snake_case(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def _check_types(output_type: Any, context_class: Any) -> None:
    if output_type is not None and not (
        isinstance(output_type, type) and issubclass(output_type, BaseModel)
    ):
        raise UserError("output_type must be a pydantic BaseModel subclass")
    if not (isinstance(context_class, type) and issubclass(context_class, AgentContext)):
        raise UserError("context_class must be a subclass of AgentContext")


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
        budget: What each of its tasks may spend, sub-agents included; a task that spends
            it fails with ``BudgetExceeded`` at a turn boundary (``factorial._budget``).
        output_type: A pydantic model; adds a ``final_output`` tool whose validated
            arguments become the run's output.
        context_class: The ``AgentContext`` subclass payloads are validated against.
        request_timeout: Seconds one model request may take.
        stream: Stream the model's answer, published as ``progress_update_completion_chunk``.
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
        budget: Budget | None = None,
        output_type: type[BaseModel] | None = None,
        context_class: type[ContextT] = AgentContext,  # type: ignore[assignment]  # the base default
        request_timeout: float = 120.0,
        stream: bool = False,
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
        self.budget = checked_budget(budget)
        _check_types(output_type, context_class)
        self.output_type = output_type
        self.context_class = context_class
        self.request_timeout = request_timeout
        self.stream = stream
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
            check_hook(hook_name, hook)
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
            schemas.append(final_output_schema(self.output_type))
        return schemas

    async def completion(
        self, agent_ctx: ContextT, messages: list[dict[str, Any]]
    ) -> ModelResponse:
        """Ask the model for the next message; its usage priced at the model's prices.

        The model is ``resolve_model``'s choice for this attempt of the turn
        (``Model.for_attempt``: a ``fallback_models`` picks by ``agent_ctx.attempt``).
        """
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
        model = self.resolve_model(agent_ctx).for_attempt(agent_ctx.attempt)
        if self.stream:
            response = await streamed_completion(model, request, clients, execution_ctx.events)
        else:
            response = await model.complete(request, clients)
        if response.usage is not None:
            response.usage = model.priced(response.usage)
        response.model = model.name
        return response

    async def tool_action(self, tool_call: ToolCall, agent_ctx: ContextT) -> ToolActionResult:
        """Run one tool call and describe the outcome."""
        return await run_tool_call(self, tool_call, agent_ctx)

    async def run_turn(self, agent_ctx: ContextT) -> TurnCompletion[ContextT]:
        """Run one turn: model call, tool calls, context update."""
        return await _turn.run_turn(self, agent_ctx)

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
        return await _turn.execute_turn(self, agent_ctx, execution_ctx, resumed_results)

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
        await _turn.run_hook(self, name, agent_ctx, execution_ctx, error)

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
            BudgetExceeded: The agent's budget was spent before a final output.
            ModelHTTPError: The model provider failed (inline runs do not retry).
        """
        return await run_inline(
            self, payload, owner_id=owner_id, task_id=task_id, clients=clients, on_event=on_event
        )


class Agent(BaseAgent[AgentContext]):
    """An agent configured entirely by constructor arguments; see ``BaseAgent``."""

    def __init__(self, name: str | None = None, **kwargs: Any) -> None:
        super().__init__(name=name or "agent", **kwargs)
