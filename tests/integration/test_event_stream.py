"""The owner's stream under load: retention, many subscribers far behind."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from temporalio.client import WorkflowExecutionStatus
from temporalio.service import RPCError, RPCStatusCode

from factorial import (
    Agent,
    AgentWorkerConfig,
    EventsExpiredError,
    EventStreamConfig,
    ExecutionContext,
    Orchestrator,
)
from factorial._ids import events_workflow_id
from factorial.testing import ScriptedModel, call_tool, reply
from tests.conftest import has_event
from tests.ledger import EventLedger

QUICK = AgentWorkerConfig(initial_backoff=0.1, max_backoff=0.2, heartbeat_timeout=5)
REPO_ROOT = Path(__file__).resolve().parents[2]


async def flood(count: int, size: int, execution_ctx: ExecutionContext) -> str:
    """Publish ``count`` custom events of about ``size`` bytes each."""
    assert execution_ctx.events is not None
    for i in range(count):
        await execution_ctx.events.publish_event({"event_type": "flood", "i": i, "pad": "x" * size})
    return "flooded"


def flooder(name: str, count: int, size: int) -> Agent:
    return Agent(
        name=name,
        tools=[flood],
        model=ScriptedModel([call_tool("flood", count=count, size=size), reply("done")]),
    )


async def read_from(
    orchestrator: Orchestrator, owner: str, from_offset: int, last_task: str
) -> tuple[list[dict[str, Any]], BaseException | None]:
    """Events from ``from_offset`` until ``last_task`` completed, and the error if one ended it."""
    events: list[dict[str, Any]] = []
    try:
        async with asyncio.timeout(60):
            async for event in orchestrator.subscribe_to_updates(owner, from_offset=from_offset):
                events.append(event)
                if event["event_type"] == "run_completed" and event["task_id"] == last_task:
                    return events, None
    except Exception as err:  # noqa: BLE001 - the caller inspects it
        return events, err
    raise AssertionError("unreachable")


async def test_resume_from_an_offset_no_longer_retained_never_skips(
    orchestrator: Orchestrator, unique
) -> None:
    """12,000 events while nobody listens, then a resume from the start: all, or a typed error."""
    agent = flooder(unique("flooder"), count=1_000, size=100)
    orchestrator.register_runner(agent=agent, agent_worker_config=QUICK)
    await orchestrator.start_workers()
    owner = unique("owner")
    first = await orchestrator.enqueue_task(agent=agent, owner_id=owner, payload={})
    await first.result()
    async with EventLedger(orchestrator, owner) as ledger:
        await ledger.wait_for_tasks([first.id])
    start = ledger.events[0]["offset"] + 1

    tasks = [
        await orchestrator.enqueue_task(agent=agent, owner_id=owner, payload={}) for _ in range(12)
    ]
    await asyncio.gather(*(t.result() for t in tasks))
    events, error = await read_from(orchestrator, owner, start, tasks[-1].id)

    # 12,000 events are more than the stream retains (10,000, 1 MiB): a typed error, no skip.
    assert isinstance(error, EventsExpiredError), (repr(error), [e["offset"] for e in events][:5])
    assert not events, "events were delivered before the expired offset was reported"
    assert error.requested_offset == start and error.oldest_offset > start
    rest, error = await read_from(orchestrator, owner, error.oldest_offset, tasks[-1].id)
    assert error is None
    offsets = [e["offset"] for e in rest]
    assert offsets == list(range(offsets[0], offsets[0] + len(offsets)))


async def test_a_subscriber_back_after_a_batch_misses_nothing(temporal_server, unique) -> None:
    """Paused for a whole 200-task batch, then resumed after its last event seen: all of it."""
    orchestrator = Orchestrator(temporal_address=temporal_server.address, batch_chunk_size=50)
    agent = Agent(name=unique("pausing"), model=ScriptedModel([reply("done")]))
    orchestrator.register_runner(agent=agent, agent_worker_config=QUICK)
    owner = unique("owner")
    try:
        await orchestrator.start_workers()
        warmup = await orchestrator.enqueue_task(agent=agent, owner_id=owner, payload={})
        async with EventLedger(orchestrator, owner) as before:
            await before.wait_for_tasks([warmup.id])
        last_seen = before.events[-1]["offset"]
        batch = await orchestrator.enqueue_batch(agent=agent, owner_id=owner, payloads=[{}] * 200)
        handle = (await orchestrator.client()).get_workflow_handle(batch.id)
        await asyncio.wait_for(handle.result(), 120)

        async with EventLedger(orchestrator, owner, from_offset=last_seen + 1) as after:
            await after.wait_for_tasks(batch.task_ids)
            await after.wait_until(has_event("batch_completed"))
        after.assert_exactly_once(batch.task_ids, batch_ids=[batch.id], expected="completed")
    finally:
        await orchestrator.close()


async def big_note(execution_ctx: ExecutionContext) -> str:
    """Publish one custom event of about 8 KB."""
    assert execution_ctx.events is not None
    await execution_ctx.events.publish_event({"event_type": "big_note", "pad": "y" * 8_000})
    return "noted"


def start_subscribers(
    address: str, owner: str, batch_id: str, out_dir: Path, per_process: int
) -> subprocess.Popen[bytes]:
    """One process of ``per_process`` independent subscriptions (see ``subscriber_app``)."""
    with open(out_dir / "stderr.log", "ab") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "tests.integration.subscriber_app"]
            + [address, owner, batch_id, str(out_dir), str(per_process)],
            cwd=REPO_ROOT,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=log,
            start_new_session=True,
        )


def read_subscribers(out_dir: Path) -> dict[str, list[dict[str, Any]]]:
    """What each subscription wrote, by file name."""
    return {
        path.name: [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
        for path in sorted(out_dir.glob("*.jsonl"))
    }


@pytest.mark.timeout(300)
async def test_fifty_subscribers_far_behind(temporal_server, unique, tmp_path: Path) -> None:
    """Fifty independent subscriptions join late; each gets everything once; the stream lives."""
    orchestrator = Orchestrator(temporal_address=temporal_server.address, batch_chunk_size=50)
    agent = Agent(
        name=unique("noter"),
        tools=[big_note],
        model=ScriptedModel([call_tool("big_note"), reply("done")]),
    )
    orchestrator.register_runner(agent=agent, agent_worker_config=QUICK)
    owner = unique("owner")
    processes: list[subprocess.Popen[bytes]] = []
    try:
        await orchestrator.start_workers()
        async with EventLedger(orchestrator, owner) as ledger:
            batch = await orchestrator.enqueue_batch(
                agent=agent, owner_id=owner, payloads=[{}] * 100
            )
            await ledger.wait_until(lambda e: len(ledger.ended_tasks()) >= 60, timeout=90)
            for _ in range(5):  # join late, ~0.8 MB behind: 10 subscriptions per process
                processes.append(
                    start_subscribers(temporal_server.address, owner, batch.id, tmp_path, 10)
                )
            codes = await asyncio.gather(*(asyncio.to_thread(p.wait, 300) for p in processes))
            await ledger.wait_until(has_event("batch_completed"))
        ledger.assert_exactly_once(batch.task_ids, batch_ids=[batch.id], expected="completed")
        outputs = read_subscribers(tmp_path)
        assert len(outputs) == 50
        for name, events in outputs.items():
            assert "error" not in events[-1], f"{name}: {events[-1]}"
            assert [e["offset"] for e in events] == list(range(len(events))), name
            ends = [e["task_id"] for e in events if e["event_type"] == "run_completed"]
            assert sorted(ends) == sorted(batch.task_ids), name
        assert codes == [0] * 5, codes
        client = await orchestrator.client()
        stream_runs = [
            d async for d in client.list_workflows(f'WorkflowId="{events_workflow_id(owner)}"')
        ]
        assert all(
            d.status in (WorkflowExecutionStatus.RUNNING, WorkflowExecutionStatus.CONTINUED_AS_NEW)
            for d in stream_runs
        ), [d.status for d in stream_runs]
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
            process.wait(timeout=10)
        await orchestrator.close()


async def _stream_status(orchestrator: Orchestrator, owner: str) -> Any:
    client = await orchestrator.client()
    try:
        return await client.get_workflow_handle(events_workflow_id(owner)).describe()
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            return None
        raise


async def test_subscribing_to_an_owner_with_no_events_starts_nothing(
    orchestrator: Orchestrator, unique
) -> None:
    agent = Agent(name=unique("late"), model=ScriptedModel([reply("hello")]))
    orchestrator.register_runner(agent=agent, agent_worker_config=QUICK)
    await orchestrator.start_workers()
    owner = unique("nobody_yet")
    async with EventLedger(orchestrator, owner) as ledger:
        await asyncio.sleep(2.0)
        assert await _stream_status(orchestrator, owner) is None  # still nothing created
        task = await orchestrator.enqueue_task(agent=agent, owner_id=owner, payload={})
        await ledger.wait_for_tasks([task.id])  # the first publisher starts it; we follow
    ledger.assert_exactly_once([task.id], expected="completed")


async def test_an_idle_stream_closes_and_restarts_where_it_stopped(temporal_server, unique) -> None:
    quick_close = EventStreamConfig(idle_timeout=timedelta(seconds=2))
    orchestrator = Orchestrator(temporal_address=temporal_server.address, event_stream=quick_close)
    agent = Agent(name=unique("napper"), model=ScriptedModel([reply("zzz")]))
    orchestrator.register_runner(agent=agent, agent_worker_config=QUICK)
    owner = unique("owner")
    try:
        await orchestrator.start_workers()
        first = await orchestrator.enqueue_task(agent=agent, owner_id=owner, payload={})
        await first.result()
        first_run = (await _stream_status(orchestrator, owner)).run_id
        async with asyncio.timeout(30):  # no publisher, no subscriber: it closes
            while (await _stream_status(orchestrator, owner)).status != (
                WorkflowExecutionStatus.COMPLETED
            ):
                await asyncio.sleep(0.25)

        second = await orchestrator.enqueue_task(agent=agent, owner_id=owner, payload={})
        await second.result()
        restarted = await _stream_status(orchestrator, owner)
        assert restarted.run_id != first_run

        async with EventLedger(orchestrator, owner) as ledger:
            await ledger.wait_for_tasks([first.id, second.id])
        ledger.assert_exactly_once([first.id, second.id], expected="completed")
        assert ledger.events[0]["offset"] == 0  # the first run's events came along
    finally:
        await orchestrator.close()
