"""The README's guarantees, event by event: exactly-once terminal events and what a cancel means."""

from __future__ import annotations

import asyncio
import time
from datetime import datetime

from temporalio.client import WorkflowExecutionStatus
from temporalio.service import RPCError, RPCStatusCode

from factorial import Agent, AgentWorkerConfig, Orchestrator
from factorial._batches import MAX_STARTING
from factorial.testing import Reply, ScriptedModel, call_tool, reply
from tests.conftest import has_event
from tests.ledger import EventLedger

QUICK = AgentWorkerConfig(initial_backoff=0.1, max_backoff=0.2, heartbeat_timeout=5)


def noop() -> str:
    """Do nothing."""
    return "ok"


async def test_multi_part_batch_announces_every_task_once(temporal_server, unique) -> None:
    """A batch of four sub-batches, no fault: every task's end reaches the stream, once."""
    orchestrator = Orchestrator(temporal_address=temporal_server.address, batch_chunk_size=10)
    agent = Agent(name=unique("parts"), model=ScriptedModel([reply("done")]))
    orchestrator.register_runner(agent=agent, agent_worker_config=QUICK)
    owner = unique("owner")
    try:
        await orchestrator.start_workers()
        async with EventLedger(orchestrator, owner) as ledger:
            batch = await orchestrator.enqueue_batch(
                agent=agent, owner_id=owner, payloads=[{}] * 40
            )
            await ledger.wait_for_tasks(batch.task_ids, timeout=90)
            await ledger.wait_until(has_event("batch_completed"))
            await ledger.settle()
        ledger.assert_exactly_once(batch.task_ids, batch_ids=[batch.id], expected="completed")
        assert all(e["data"] == "done" for e in ledger.of_type("agent_output"))
    finally:
        await orchestrator.close()


async def _exists(orchestrator: Orchestrator, workflow_id: str) -> WorkflowExecutionStatus | None:
    """The workflow's status, or None if it was never started."""
    client = await orchestrator.client()
    try:
        return (await client.get_workflow_handle(workflow_id).describe()).status
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            return None
        raise


async def test_cancel_batch_means_stopped(temporal_server, unique) -> None:
    """Right after enqueue: once cancel_batch returns nothing of the batch runs or begins."""
    orchestrator = Orchestrator(temporal_address=temporal_server.address, batch_chunk_size=100)
    agent = Agent(
        name=unique("cancelme"),
        tools=[noop],
        model=ScriptedModel([call_tool("noop"), Reply(content="late", delay=20)]),
    )
    orchestrator.register_runner(agent=agent, agent_worker_config=QUICK)
    owner = unique("owner")
    try:
        await orchestrator.start_workers()
        async with EventLedger(orchestrator, owner) as ledger:
            batch = await orchestrator.enqueue_batch(
                agent=agent, owner_id=owner, payloads=[{}] * 300
            )
            await asyncio.sleep(1.0)
            updated = await asyncio.wait_for(orchestrator.cancel_batch(batch.id), 60)
            returned_at = time.time()
            assert updated.metadata.status == "cancelled"

            statuses = {t: await _exists(orchestrator, t) for t in batch.task_ids}
            running = [t for t, s in statuses.items() if s == WorkflowExecutionStatus.RUNNING]
            assert not running, f"{len(running)} tasks still run after cancel_batch returned"
            begun = [t for t, s in statuses.items() if s is not None]
            never = [t for t, s in statuses.items() if s is None]
            assert begun, "no task had begun; the test did not exercise running tasks"

            await ledger.wait_for_tasks(begun, timeout=30)
            await ledger.wait_until(has_event("batch_cancelled"))
            await ledger.settle(3.0)
            for task_id in never:  # a task that never began never begins
                assert await _exists(orchestrator, task_id) is None, task_id
        ledger.assert_exactly_once(begun, batch_ids=[batch.id])
        outcomes = ledger.outcomes()
        assert set(outcomes.values()) <= {"cancelled", "completed"}, set(outcomes.values())
        late_turns = [
            e
            for e in ledger.of_type("progress_update_run_turn_started")
            if datetime.fromisoformat(e["timestamp"]).timestamp() > returned_at
        ]
        assert not late_turns, f"{len(late_turns)} turns began after cancel_batch returned"
    finally:
        await orchestrator.close()


async def test_a_leaf_keeps_at_most_its_bound_of_starts_in_flight(orchestrator, unique) -> None:
    """A start cannot be withdrawn once sent, so a leaf sends only a few at a time."""
    agent = Agent(name=unique("starts"), model=ScriptedModel([reply("done")]))
    orchestrator.register_runner(agent=agent, agent_worker_config=QUICK)
    await orchestrator.start_workers()
    batch = await orchestrator.enqueue_batch(
        agent=agent, owner_id=unique("owner"), payloads=[{}] * (3 * MAX_STARTING)
    )
    client = await orchestrator.client()
    await client.get_workflow_handle(batch.id).result()
    in_flight = most = 0
    async for event in client.get_workflow_handle(batch.id).fetch_history_events():
        kind = event.WhichOneof("attributes")
        if kind == "start_child_workflow_execution_initiated_event_attributes":
            in_flight += 1
        elif kind in (
            "child_workflow_execution_started_event_attributes",
            "start_child_workflow_execution_failed_event_attributes",
        ):
            in_flight -= 1
        most = max(most, in_flight)
    assert most == MAX_STARTING
