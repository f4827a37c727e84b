"""Running a model's tool calls within a turn: what ``BaseAgent.tool_action`` does.

One call is looked up among the agent's tools and invoked; a deferred tool's call becomes a
``PendingCall``, a forking tool's spawn requests ride on its result, and ``final_output``
(an agent with ``output_type``) records the run's structured output. ``published`` wraps a
call in its ``progress_update_tool_action_*`` events.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ValidationError

from factorial import _metrics, _tracing
from factorial._policies import join_count
from factorial._spawn import Fork, SpawnRequest, current_fork, fork_slot, parse_fork_return
from factorial.context import AgentContext, ExecutionContext
from factorial.events import progress_event_type
from factorial.models import ToolCall
from factorial.tools import FunctionTool

if TYPE_CHECKING:
    from factorial.agent import BaseAgent

FINAL_OUTPUT_TOOL = "final_output"


def final_output_schema(output_type: type[BaseModel]) -> dict[str, Any]:
    """The schema of the ``final_output`` tool an agent with ``output_type`` gets."""
    return {
        "type": "function",
        "function": {
            "name": FINAL_OUTPUT_TOOL,
            "description": "Call this with the final answer to finish the task.",
            "parameters": output_type.model_json_schema(),
        },
    }


@dataclass
class PendingCall:
    """A deferred tool call the task now waits on."""

    tool_call_id: str
    tool_name: str
    timeout: float


@dataclass
class ToolActionResult:
    """The outcome of one tool call within a turn."""

    tool_call: ToolCall
    display: str
    is_error: bool = False
    data: Any = None
    pending: PendingCall | None = None
    final: BaseModel | None = None
    forks: list[SpawnRequest] = field(default_factory=list)

    def message(self) -> dict[str, Any]:
        """The tool message the model sees."""
        return {"role": "tool", "tool_call_id": self.tool_call.id, "content": self.display}


async def run_tool_call(
    agent: BaseAgent[Any], tool_call: ToolCall, agent_ctx: AgentContext
) -> ToolActionResult:
    """Run one tool call of ``agent`` and describe the outcome."""
    execution_ctx = ExecutionContext.current()
    if tool_call.name == FINAL_OUTPUT_TOOL and agent.output_type is not None:
        return _final_output(agent.output_type, tool_call)
    tool = agent.tools.get(tool_call.name)
    if tool is None or not tool.enabled_for(agent_ctx):
        return ToolActionResult(tool_call, f"Error: unknown tool {tool_call.name!r}", True)
    if tool.kind == "forking":
        return await _fork(tool, tool_call, agent_ctx, execution_ctx)
    outcome = await tool.invoke(
        tool_call.arguments, agent_ctx=agent_ctx, execution_ctx=execution_ctx
    )
    pending = None
    if tool.kind == "deferred" and not outcome.is_error:
        pending = PendingCall(tool_call.id, tool.name, float(tool.timeout or 0))
    return ToolActionResult(
        tool_call, outcome.display, outcome.is_error, data=outcome.data, pending=pending
    )


async def published(
    agent: BaseAgent[Any], tool_call: ToolCall, agent_ctx: AgentContext
) -> ToolActionResult:
    """``agent.tool_action`` between its ``progress_update_tool_action_*`` events."""
    events = ExecutionContext.current().events
    if events is not None:
        events.emit(
            progress_event_type("tool_action", "started"),
            data={
                "tool_call_id": tool_call.id,
                "tool_name": tool_call.name,
                "arguments": tool_call.arguments,
            },
        )
    result = await _observed_tool_action(agent, tool_call, agent_ctx)
    if events is not None:
        phase = "failed" if result.is_error else "completed"
        events.emit(
            progress_event_type("tool_action", phase),
            data={
                "tool_call_id": tool_call.id,
                "tool_name": tool_call.name,
                "result": result.data if result.data is not None else result.display,
            },
            **({"error": result.display} if result.is_error else {}),
        )
    return result


async def _observed_tool_action(
    agent: BaseAgent[Any], tool_call: ToolCall, agent_ctx: AgentContext
) -> ToolActionResult:
    """``agent.tool_action`` in a ``factorial.tool_call`` span, with its metrics."""
    known = tool_call.name in agent.tools or tool_call.name == FINAL_OUTPUT_TOOL
    tool = tool_call.name if known else _metrics.UNKNOWN_TOOL
    with _tracing.span(
        _tracing.TOOL_CALL_SPAN,
        agent=agent.name,
        task_id=ExecutionContext.current().task_id,
        turn=agent_ctx.turn,
        tool=tool_call.name,
        tool_call_id=tool_call.id,
    ) as span:
        try:
            result = await agent.tool_action(tool_call, agent_ctx)
        except Exception:
            _metrics.record_tool_call(agent.name, tool, is_error=True)
            raise
        span.set_attribute("is_error", result.is_error)
    _metrics.record_tool_call(agent.name, tool, is_error=result.is_error)
    return result


async def _fork(
    tool: FunctionTool,
    tool_call: ToolCall,
    agent_ctx: AgentContext,
    execution_ctx: ExecutionContext,
) -> ToolActionResult:
    """Run a forking tool; its spawn requests are kept only if it returns their ids."""
    fork = Fork(
        task_id=execution_ctx.task_id,
        owner_id=execution_ctx.owner_id,
        slot=fork_slot(agent_ctx.turn, tool_call.id),
        tool_call_id=tool_call.id,
        timeout=float(tool.timeout or 0),
        join=join_count(tool.join),
    )
    token = current_fork.set(fork)
    try:
        outcome = await tool.invoke(
            tool_call.arguments, agent_ctx=agent_ctx, execution_ctx=execution_ctx
        )
    finally:
        current_fork.reset(token)
    if outcome.is_error:
        return ToolActionResult(tool_call, outcome.display, True)
    try:
        message, ids = parse_fork_return(outcome.raw, fork.task_ids)
    except ValueError as err:
        return ToolActionResult(tool_call, f"Error: {err}", True)
    display = message or f"Started {len(ids)} sub-tasks: {', '.join(ids)}"
    return ToolActionResult(tool_call, display, data=ids, forks=fork.requests)


def _final_output(output_type: type[BaseModel], tool_call: ToolCall) -> ToolActionResult:
    try:
        value = output_type.model_validate_json(tool_call.arguments or "{}")
    except ValidationError as err:
        return ToolActionResult(tool_call, f"Error: final_output does not validate: {err}", True)
    return ToolActionResult(tool_call, "Final output recorded.", False, final=value)
