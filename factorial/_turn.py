"""One turn of an agent: what ``BaseAgent.run_turn`` and ``BaseAgent.execute_turn`` do.

``run_turn`` asks the model, runs its tool calls concurrently and updates the context;
``execute_turn`` wraps that in the lifecycle hooks and the ``progress_update_*`` events.
``run_hook`` runs the hooks the task workflow calls outside a turn (``BaseAgent.run_hook``).
``TurnCompletion`` (what a turn produced) and ``RunCompletion`` (how a run ended) are
re-exported by ``factorial.agent``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from pydantic import ValidationError

from factorial import _metrics, _tracing
from factorial._hooks import call_hook
from factorial._spawn import SpawnRequest
from factorial._tool_actions import FINAL_OUTPUT_TOOL, PendingCall
from factorial._tool_actions import published as published_tool_action
from factorial._usage import TokenUsage
from factorial.context import AgentContext, ExecutionContext
from factorial.events import EventPublisher, progress_event_type
from factorial.models import ModelResponse

if TYPE_CHECKING:
    from factorial.agent import BaseAgent

ContextT = TypeVar("ContextT", bound=AgentContext)
T = TypeVar("T")


@dataclass
class TurnCompletion(Generic[ContextT]):
    """What one turn produced."""

    is_done: bool
    context: ContextT
    output: Any = None
    pending_tool_calls: list[PendingCall] = field(default_factory=list)
    child_batches: list[SpawnRequest] = field(default_factory=list)
    #: The tokens (and cost) of the turn's model call, if the model reported them.
    usage: TokenUsage | None = None


@dataclass
class RunCompletion(Generic[ContextT]):
    """How a run ended: ``status`` is completed, failed or cancelled."""

    status: str
    context: ContextT
    output: Any = None
    error: str | None = None


async def run_turn(agent: BaseAgent[ContextT], agent_ctx: ContextT) -> TurnCompletion[ContextT]:
    """Model call, tool calls, context update; see ``BaseAgent.run_turn``."""
    events = ExecutionContext.current().events
    if not agent_ctx.messages and agent_ctx.query:
        agent_ctx.messages.append({"role": "user", "content": agent_ctx.query})
    messages = agent.prepare_messages(agent_ctx)
    model = agent.resolve_model(agent_ctx).for_attempt(agent_ctx.attempt)
    response = await published(
        events,
        "completion",
        _observed_completion(agent, agent_ctx, messages),
        _describe_response,
        started={"model": model.name},
    )
    agent_ctx.messages.append(response.assistant_message())
    if not response.tool_calls:
        completion = _text_completion(agent, agent_ctx, response)
        completion.usage = response.usage
        return completion
    results = await asyncio.gather(
        *(published_tool_action(agent, call, agent_ctx) for call in response.tool_calls)
    )
    for result in results:
        if result.pending is None:
            agent_ctx.messages.append(result.message())
    final = next((r.final for r in results if r.final is not None), None)
    pending = [r.pending for r in results if r.pending is not None]
    for result in results:
        if result.pending is not None:
            await call_hook(agent, "on_pending_tool_call", agent_ctx, result.tool_call)
    agent_ctx.turn += 1
    if final is not None:
        output = final.model_dump(mode="json")
        return TurnCompletion(True, agent_ctx, output=output, usage=response.usage)
    children = [request for result in results for request in result.forks]
    return TurnCompletion(
        False, agent_ctx, pending_tool_calls=pending, child_batches=children, usage=response.usage
    )


async def _observed_completion(
    agent: BaseAgent[ContextT], agent_ctx: ContextT, messages: list[dict[str, Any]]
) -> ModelResponse:
    """``agent.completion`` in a ``factorial.model_call`` span, with its metrics."""
    task_id = ExecutionContext.current().task_id
    started = time.monotonic()
    outcome = "failed"
    usage = None
    try:
        with _tracing.span(
            _tracing.MODEL_CALL_SPAN, agent=agent.name, task_id=task_id, turn=agent_ctx.turn
        ) as span:
            response = await agent.completion(agent_ctx, messages)
            usage = response.usage
            if usage is not None:
                span.set_attribute("input_tokens", usage.prompt_tokens)
                span.set_attribute("output_tokens", usage.completion_tokens)
        outcome = "succeeded"
        return response
    except asyncio.CancelledError:
        outcome = "cancelled"
        raise
    finally:
        _metrics.record_model_call(agent.name, time.monotonic() - started, usage, outcome)


def _text_completion(
    agent: BaseAgent[ContextT], agent_ctx: ContextT, response: ModelResponse
) -> TurnCompletion[ContextT]:
    agent_ctx.turn += 1
    if agent.output_type is None:
        return TurnCompletion(True, agent_ctx, output=response.content)
    try:
        value = agent.output_type.model_validate_json(response.content or "")
    except ValidationError:
        agent_ctx.messages.append(
            {
                "role": "user",
                "content": f"Call the {FINAL_OUTPUT_TOOL} tool with your final answer.",
            }
        )
        return TurnCompletion(False, agent_ctx)
    return TurnCompletion(True, agent_ctx, output=value.model_dump(mode="json"))


async def execute_turn(
    agent: BaseAgent[ContextT],
    agent_ctx: ContextT,
    execution_ctx: ExecutionContext,
    resumed_results: list[tuple[str, Any]] | None,
) -> TurnCompletion[ContextT]:
    """``agent.run_turn`` with its hooks and progress events; see ``BaseAgent.execute_turn``."""
    token = execution_ctx._bind()
    try:
        if resumed_results:
            await call_hook(agent, "on_pending_tool_results", agent_ctx, resumed_results)
        if agent_ctx.turn == 0:
            await call_hook(agent, "on_run_start", agent_ctx)
        await call_hook(agent, "on_turn_start", agent_ctx)
        completion = await published(
            execution_ctx.events,
            "run_turn",
            agent.run_turn(agent_ctx),
            _describe_turn,
        )
        await call_hook(agent, "on_turn_end", agent_ctx, completion)
        if completion.is_done:
            await call_hook(
                agent,
                "on_run_end",
                agent_ctx,
                RunCompletion("completed", agent_ctx, output=completion.output),
            )
        return completion
    finally:
        ExecutionContext._unbind(token)


async def run_hook(
    agent: BaseAgent[ContextT],
    name: str,
    agent_ctx: ContextT,
    execution_ctx: ExecutionContext,
    error: str | None,
) -> None:
    """``on_run_end`` (for a failed run) or ``on_run_cancelled``; see ``BaseAgent.run_hook``."""
    token = execution_ctx._bind()
    try:
        if name == "on_run_end":
            await call_hook(agent, name, agent_ctx, RunCompletion("failed", agent_ctx, error=error))
        else:
            await call_hook(agent, name, agent_ctx)
    finally:
        ExecutionContext._unbind(token)


async def published(
    events: EventPublisher | None,
    operation: str,
    work: Awaitable[T],
    describe: Callable[[T], dict[str, Any]],
    *,
    started: dict[str, Any] | None = None,
) -> T:
    """Await ``work`` between ``progress_update_{operation}_started/completed/failed`` events.

    ``started`` is the ``data`` of the started event, if any.
    """
    if events is None:
        return await work
    events.emit(progress_event_type(operation, "started"), **({"data": started} if started else {}))
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
        "model": response.model,
        "content": response.content,
        "tool_calls": [c.model_dump() for c in response.tool_calls],
        "usage": _usage_fields(response.usage),
    }


def _describe_turn(completion: TurnCompletion[Any]) -> dict[str, Any]:
    return {
        "turn": completion.context.turn,
        "done": completion.is_done,
        "usage": _usage_fields(completion.usage),
    }


def _usage_fields(usage: TokenUsage | None) -> dict[str, Any] | None:
    """``prompt_tokens``, ``completion_tokens``, ``total_tokens`` and ``cost``, or None."""
    return usage.model_dump(mode="json") if usage is not None else None
