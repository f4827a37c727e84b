"""Controlling running tasks: cancellation, steering and deferred tools."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest

from factorial import (
    Agent,
    AgentContext,
    AgentWorkerConfig,
    ExecutionContext,
    Orchestrator,
    TaskCancelledError,
    TaskStatus,
    deferred_tool,
)
from factorial.models import ModelRequest
from factorial.testing import Reply, ScriptedModel, call_tool, reply
from tests.conftest import BOTH_TURN_MODES, collect_events, has_event

pytestmark = BOTH_TURN_MODES

QUICK = AgentWorkerConfig(heartbeat_timeout=5, initial_backoff=0.1)


async def wait_until(check: Callable[[], Awaitable[bool]], timeout: float = 30.0) -> None:
    """Poll ``check`` until it is true."""
    async with asyncio.timeout(timeout):
        while not await check():
            await asyncio.sleep(0.1)


async def test_cancel_mid_turn(orchestrator: Orchestrator, unique) -> None:
    cancelled_hook: list[int] = []
    turn_started = asyncio.Event()

    def on_turn_start(ctx: AgentContext, execution_ctx: ExecutionContext) -> None:
        turn_started.set()

    agent = Agent(
        name=unique("slow"),
        model=ScriptedModel([Reply(content="too late", delay=60)]),
        on_turn_start=on_turn_start,
        on_run_cancelled=lambda ctx, execution_ctx: cancelled_hook.append(ctx.turn),
    )
    orchestrator.register_runner(agent=agent, agent_worker_config=QUICK)
    await orchestrator.start_workers()
    owner = unique("owner")
    task = await orchestrator.enqueue_task(agent=agent, owner_id=owner, payload={"query": "x"})
    await asyncio.wait_for(turn_started.wait(), 30)
    assert await orchestrator.get_task_status(task.id) == TaskStatus.PROCESSING

    await orchestrator.cancel_task(task.id)

    with pytest.raises(TaskCancelledError):
        await asyncio.wait_for(task.result(), 30)
    assert await orchestrator.get_task_status(task.id) == TaskStatus.CANCELLED
    assert cancelled_hook == [0]
    events = await collect_events(orchestrator, owner, has_event("run_cancelled"))
    types = [e["event_type"] for e in events]
    assert types.count("run_cancelled") == 1
    assert "run_completed" not in types
    data = await orchestrator.get_task_data(task.id)
    assert data is not None and data["status"] == "cancelled"
    await orchestrator.cancel_task(task.id)  # cancelling an ended task does nothing


async def test_cancel_interrupts_the_running_turn(orchestrator: Orchestrator, unique) -> None:
    """A cancel stops the turn that runs, regular or local, rather than letting it finish.

    A local turn's workflow task hears of the cancel only when the turn ends (or at its
    heartbeat, 8 s in): the turn itself watches for it. This one would answer after 5 s.
    """
    turn_started = asyncio.Event()
    agent = Agent(
        name=unique("interrupted"),
        model=ScriptedModel([Reply(content="finished anyway", delay=5)]),
        on_turn_start=lambda ctx, execution_ctx: turn_started.set(),
    )
    orchestrator.register_runner(agent=agent, agent_worker_config=QUICK)
    await orchestrator.start_workers()
    owner = unique("owner")
    task = await orchestrator.enqueue_task(agent=agent, owner_id=owner, payload={"query": "x"})
    await asyncio.wait_for(turn_started.wait(), 30)
    await orchestrator.cancel_task(task.id)

    with pytest.raises(TaskCancelledError):
        await asyncio.wait_for(task.result(), 30)
    events = await collect_events(orchestrator, owner, has_event("run_cancelled"))
    types = [e["event_type"] for e in events]
    assert "progress_update_completion_started" in types
    assert "progress_update_completion_completed" not in types, types
    assert types.count("run_cancelled") == 1 and "run_completed" not in types
    data = await orchestrator.get_task_data(task.id)
    assert data is not None and data["status"] == "cancelled" and data["turn"] == 0


async def test_cancel_during_short_turns_is_not_lost(orchestrator: Orchestrator, unique) -> None:
    """A cancel whose turn finishes before the heartbeat carries it still ends the task."""

    def noop() -> str:
        """Do nothing."""
        return "ok"

    agent = Agent(
        name=unique("brisk"),
        tools=[noop],
        model=ScriptedModel(lambda request: call_tool("noop").model_copy(update={"delay": 0.3})),
    )
    orchestrator.register_runner(agent=agent, agent_worker_config=QUICK)
    await orchestrator.start_workers()
    task = await orchestrator.enqueue_task(agent=agent, owner_id=unique("o"), payload={})

    async def running() -> bool:
        return await orchestrator.get_task_status(task.id) == TaskStatus.PROCESSING

    await wait_until(running)
    await orchestrator.cancel_task(task.id)

    with pytest.raises(TaskCancelledError):
        await asyncio.wait_for(task.result(), 30)


async def test_steering_is_applied_at_the_next_turn(orchestrator: Orchestrator, unique) -> None:
    turn_started = asyncio.Event()

    def second_turn(request: ModelRequest) -> Reply:
        if request.turn == 0:
            turn_started.set()
            return call_tool("noop").model_copy(update={"delay": 1.5})
        last_user = [m for m in request.messages if m["role"] == "user"][-1]
        return reply(f"heard: {last_user['content']}")

    def noop() -> str:
        """Do nothing."""
        return "ok"

    agent = Agent(name=unique("steered"), tools=[noop], model=ScriptedModel(second_turn))
    orchestrator.register_runner(agent=agent, agent_worker_config=QUICK)
    await orchestrator.start_workers()
    owner = unique("owner")
    task = await orchestrator.enqueue_task(agent=agent, owner_id=owner, payload={"query": "go"})
    await asyncio.wait_for(turn_started.wait(), 30)

    await orchestrator.steer_task(task.id, [{"role": "user", "content": "use French"}])

    assert await task.result() == "heard: use French"
    events = await collect_events(orchestrator, owner, has_event("run_completed"))
    applied = [e for e in events if e["event_type"] == "run_steering_applied"]
    assert len(applied) == 1 and applied[0]["message_count"] == 1


async def test_deferred_tool_completed(orchestrator: Orchestrator, unique) -> None:
    requested: list[str] = []

    @deferred_tool(timeout=300)
    def request_approval(item: str) -> str:
        """Ask a human to approve an item."""
        requested.append(item)
        return "approval requested"

    agent = Agent(
        name=unique("approver"),
        tools=[request_approval],
        model=ScriptedModel(
            [call_tool("request_approval", item="laptop"), reply("approved, ordering")]
        ),
    )
    orchestrator.register_runner(agent=agent, agent_worker_config=QUICK)
    await orchestrator.start_workers()
    owner = unique("owner")
    task = await orchestrator.enqueue_task(agent=agent, owner_id=owner, payload={})

    async def pending() -> bool:
        return await orchestrator.get_task_status(task.id) == TaskStatus.PENDING_TOOL_RESULTS

    await wait_until(pending)
    data = await orchestrator.get_task_data(task.id)
    assert data is not None
    [call_id] = data["pending_tool_call_ids"]
    assert requested == ["laptop"]

    assert await orchestrator.complete_deferred_tool(task.id, "call_unknown", "yes") is False
    assert await orchestrator.complete_deferred_tool(task.id, call_id, {"approved": True}) is True
    assert await orchestrator.complete_deferred_tool(task.id, call_id, "again") is False

    assert await task.result() == "approved, ordering"
    data = await orchestrator.get_task_data(task.id)
    assert data is not None
    tool_messages = [m for m in data["context"]["messages"] if m["role"] == "tool"]
    assert tool_messages == [
        {"role": "tool", "tool_call_id": call_id, "content": '{"approved": true}'}
    ]
    assert await orchestrator.complete_deferred_tool(task.id, call_id, "late") is False
    events = await collect_events(orchestrator, owner, has_event("run_completed"))
    pending_events = [e for e in events if e["event_type"] == "task_pending_tool_call_results"]
    assert [e["tool_call_ids"] for e in pending_events] == [[call_id]]


async def test_cancel_while_waiting_for_a_deferred_tool(orchestrator: Orchestrator, unique) -> None:
    @deferred_tool(timeout=3600)
    def wait_for_human() -> str:
        """Wait for a human."""
        return "waiting"

    agent = Agent(
        name=unique("waiter"),
        tools=[wait_for_human],
        model=ScriptedModel([call_tool("wait_for_human")]),
    )
    orchestrator.register_runner(agent=agent, agent_worker_config=QUICK)
    await orchestrator.start_workers()
    task = await orchestrator.enqueue_task(agent=agent, owner_id=unique("o"), payload={})

    async def pending() -> bool:
        return await orchestrator.get_task_status(task.id) == TaskStatus.PENDING_TOOL_RESULTS

    await wait_until(pending)
    await task.cancel()

    with pytest.raises(TaskCancelledError):
        await asyncio.wait_for(task.result(), 30)
