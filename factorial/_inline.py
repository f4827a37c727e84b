"""``BaseAgent.run_inline``: the turn loop in this process, without Temporal.

The same turns a worker runs (``BaseAgent.execute_turn``), one after another until the run
ends; its end is announced as the task workflow announces it (``events.terminal_events``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from factorial._turn import RunCompletion
from factorial._usage import TokenUsage
from factorial.context import AgentContext, ExecutionContext
from factorial.errors import BudgetExceeded, InlineRunError
from factorial.events import RUN_STARTED, EventPublisher, terminal_events
from factorial.models import ModelClients

if TYPE_CHECKING:
    from factorial.agent import BaseAgent

ContextT = TypeVar("ContextT", bound=AgentContext)


async def run_inline(
    agent: BaseAgent[ContextT],
    payload: ContextT | dict[str, Any],
    *,
    owner_id: str,
    task_id: str,
    clients: ModelClients | None,
    on_event: Callable[[dict[str, Any]], None] | None,
) -> RunCompletion[ContextT]:
    """Run ``agent`` to the end of its run; see ``BaseAgent.run_inline``."""
    kinds = {t.name: t.kind for t in agent.tools.values() if t.kind != "function"}
    if kinds:
        raise InlineRunError(
            f"run_inline cannot run deferred or forking tools ({', '.join(kinds)}); "
            "run the agent on an Orchestrator"
        )
    ctx = agent.validate_payload(payload)
    events = EventPublisher(
        on_event or (lambda _event: None),
        task_id=task_id,
        owner_id=owner_id,
        agent_name=agent.name,
    )
    own_clients = clients is None
    model_clients = clients or ModelClients()
    events.emit(RUN_STARTED)
    usage = TokenUsage()
    try:
        while True:
            execution_ctx = ExecutionContext(
                task_id=task_id,
                owner_id=owner_id,
                agent_name=agent.name,
                iterations=ctx.turn,
                events=events,
                _clients=model_clients,
            )
            completion = await agent.execute_turn(ctx, execution_ctx)
            ctx = completion.context
            exhausted = agent.turns_exhausted(completion)
            if exhausted is not None:
                raise exhausted
            if completion.is_done:
                ctx.output = completion.output
                for event_type, fields in terminal_events(
                    "completed", turn=ctx.turn, output=completion.output
                ):
                    events.emit(event_type, **fields)
                return RunCompletion("completed", ctx, output=completion.output)
            usage += completion.usage or TokenUsage()
            spent = agent.budget.error(usage, ctx.turn) if agent.budget else None
            if spent is not None:
                raise BudgetExceeded(task_id, spent)
    except Exception as err:
        error = err.error if isinstance(err, BudgetExceeded) else f"{type(err).__name__}: {err}"
        for event_type, fields in terminal_events("failed", error=error):
            events.emit(event_type, **fields)
        raise
    finally:
        if own_clients:
            await model_clients.aclose()
