"""Batches: the seed's samples, progress, failures, cancellation, chunked trees."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from factorial import (
    Agent,
    AgentContext,
    AgentWorkerConfig,
    BatchNotFoundError,
    InvalidPayloadError,
    Orchestrator,
    TaskStatus,
    UserError,
)
from factorial.models import ModelRequest
from factorial.testing import Fail, Reply, ScriptedModel, call_tool, reply
from tests.conftest import BOTH_TURN_MODES, collect_events, has_event
from tests.ledger import EventLedger

QUICK = AgentWorkerConfig(initial_backoff=0.1, max_backoff=0.2, heartbeat_timeout=5)


def noop() -> str:
    """Do nothing."""
    return "ok"


def turns_by_query(request: ModelRequest) -> Reply:
    """Finish after as many turns as the query's number says ("3" -> three turns)."""
    first_user = next(m for m in request.messages if m["role"] == "user")
    wanted = int(first_user["content"])
    if request.turn + 1 >= wanted:
        return reply(f"done after {wanted}")
    return call_tool("noop")


def staggered_turns_by_query(request: ModelRequest) -> Reply:
    """Like ``turns_by_query``, each turn of task "n" taking 0.3 n s: no two tasks finish a
    turn at the same moment, so each finished turn can move the bar on its own."""
    answer = turns_by_query(request)
    first_user = next(m for m in request.messages if m["role"] == "user")
    return answer.model_copy(update={"delay": 0.3 * int(first_user["content"])})


async def run_to_completion(
    orch: Orchestrator, agent: Agent, owner: str, payloads: list[dict[str, Any]]
) -> Any:
    """Enqueue a batch and wait for it to complete; every task ends once, progress 100."""
    async with EventLedger(orch, owner) as ledger:
        batch = await orch.enqueue_batch(agent=agent, owner_id=owner, payloads=payloads)
        await ledger.wait_for_tasks(batch.task_ids)
        await ledger.wait_until(
            lambda events: any(e["event_type"] == "batch_completed" for e in events), 60
        )
    ledger.assert_exactly_once(batch.task_ids, batch_ids=[batch.id], expected="completed")
    assert ledger.of_type("batch_completed")[0]["progress"] == 100.0
    return batch


async def signals_received(client: Any, workflow_id: str, signal_name: str) -> list[Any]:
    """The ``signal_name`` signals in a workflow's history (their event attributes)."""
    found = []
    async for event in client.get_workflow_handle(workflow_id).fetch_history_events():
        if event.HasField("workflow_execution_signaled_event_attributes"):
            signaled = event.workflow_execution_signaled_event_attributes
            if signaled.signal_name == signal_name:
                found.append(signaled)
    return found


async def batch_events(orch: Orchestrator, owner: str, batch_id: str, final: str) -> list[dict]:
    events = await collect_events(
        orch,
        owner,
        has_event(final),
        event_types=["batch_progress", "batch_completed", "batch_cancelled"],
    )
    return [e for e in events if e["batch_id"] == batch_id]


async def test_seed_enqueue_many_and_stream_batch(
    temporal_server, unique, capsys: pytest.CaptureFixture[str]
) -> None:
    # The seed's code, as written, with the `...` filled in.
    agent = Agent(name=unique("seed_agent"), model=ScriptedModel([reply("answer")]))
    orchestrator = Orchestrator(temporal_address=temporal_server.address)
    orchestrator.register_runner(agent=agent)

    async def enqueue_many(queries: list[str], user_id: str) -> str:
        payloads = [AgentContext(query=q) for q in queries]
        batch = await orchestrator.enqueue_batch(agent=agent, owner_id=user_id, payloads=payloads)
        return batch.id

    async def stream_batch(batch_id: str, owner_id: str):
        async for evt in orchestrator.subscribe_to_updates(
            owner_id=owner_id,
            event_types=["batch_progress", "batch_completed", "batch_cancelled"],
        ):
            if evt.get("batch_id") == batch_id:
                print(evt)

    user = unique("user123")
    try:
        await orchestrator.start_workers()
        batch_id = await enqueue_many(["a", "b", "c"], user)
        streaming = asyncio.create_task(stream_batch(batch_id=batch_id, owner_id=user))
        printed = ""
        async with asyncio.timeout(60):
            while "'event_type': 'batch_completed'" not in printed:
                await asyncio.sleep(0.2)
                printed += capsys.readouterr().out
        streaming.cancel()
        assert "'event_type': 'batch_completed'" in printed
        assert "'progress': 100.0" in printed

        updated = await orchestrator.cancel_batch(batch_id)  # already completed: unchanged
        assert updated.metadata.status == "completed"
    finally:
        await orchestrator.close()


@BOTH_TURN_MODES
async def test_progress_with_max_turns(orchestrator: Orchestrator, unique) -> None:
    agent = Agent(
        name=unique("stepper"),
        tools=[noop],
        max_turns=3,
        model=ScriptedModel(staggered_turns_by_query),
    )
    orchestrator.register_runner(agent=agent, agent_worker_config=QUICK)
    await orchestrator.start_workers()
    owner = unique("owner")

    batch = await orchestrator.enqueue_batch(
        agent=agent, owner_id=owner, payloads=[{"query": "1"}, {"query": "2"}, {"query": "3"}]
    )
    assert batch.metadata.max_progress == 9
    assert batch.metadata.total_tasks == 3
    assert batch.remaining_task_ids == batch.task_ids and batch.progress == 0

    events = await batch_events(orchestrator, owner, batch.id, "batch_completed")
    progress = [e["progress"] for e in events if e["event_type"] == "batch_progress"]
    assert progress == sorted(progress) and progress[-1] == 100.0
    # Every finished turn moves the bar: 9 units, so at least a few distinct steps.
    assert len(set(progress)) >= 4
    assert all(round(p * 9 / 100) == pytest.approx(p * 9 / 100, abs=0.01) for p in progress)
    completed = [e for e in events if e["event_type"] == "batch_completed"]
    assert len(completed) == 1
    assert completed[0]["completed_tasks"] == 3 and completed[0]["status"] == "completed"
    for event in events:
        assert {
            "batch_id",
            "owner_id",
            "progress",
            "completed_tasks",
            "total_tasks",
            "status",
            "timestamp",
        } <= event.keys()
    final = await orchestrator.get_batch(batch.id)
    assert final.progress == 100.0 and final.remaining_task_ids == []
    assert final.metadata.status == "completed"
    outputs = [await orchestrator.get_task_result(t) for t in final.task_ids]
    assert outputs == ["done after 1", "done after 2", "done after 3"]


@BOTH_TURN_MODES
async def test_progress_per_task_without_max_turns(orchestrator: Orchestrator, unique) -> None:
    agent = Agent(name=unique("plain"), model=ScriptedModel([reply("ok")]))
    orchestrator.register_runner(agent=agent, agent_worker_config=QUICK)
    await orchestrator.start_workers()
    owner = unique("owner")

    batch = await orchestrator.enqueue_batch(agent=agent, owner_id=owner, payloads=[{}] * 3)

    events = await batch_events(orchestrator, owner, batch.id, "batch_completed")
    progress = [e["progress"] for e in events if e["event_type"] == "batch_progress"]
    assert set(progress) <= {0.0, 33.33, 66.67, 100.0} and progress[-1] == 100.0
    assert progress == sorted(progress)
    assert batch.metadata.max_progress == 3


@BOTH_TURN_MODES
async def test_failed_and_cancelled_tasks_still_complete_the_batch(
    orchestrator: Orchestrator, unique
) -> None:
    def script(request: ModelRequest) -> Reply | Fail:
        query = next(m for m in request.messages if m["role"] == "user")["content"]
        if query == "fail":
            return Fail(status_code=400, times=99, message="refused")
        if query == "slow":
            return Reply(content="never", delay=60)
        return reply("fine")

    agent = Agent(name=unique("mixed"), model=ScriptedModel(script))
    orchestrator.register_runner(agent=agent, agent_worker_config=QUICK)
    await orchestrator.start_workers()
    owner = unique("owner")
    queries = ["ok", "fail", "slow", "ok"]
    batch = await orchestrator.enqueue_batch(
        agent=agent, owner_id=owner, payloads=[{"query": q} for q in queries]
    )
    slow_task = batch.task_ids[2]

    async with asyncio.timeout(30):
        while await _status_or_none(orchestrator, slow_task) != TaskStatus.PROCESSING:
            await asyncio.sleep(0.1)
    during = await orchestrator.get_batch(batch.id)
    assert during.metadata.status == "active"
    assert slow_task in during.remaining_task_ids
    await orchestrator.cancel_task(slow_task)

    events = await batch_events(orchestrator, owner, batch.id, "batch_completed")
    assert events[-1]["event_type"] == "batch_completed"
    assert events[-1]["progress"] == 100.0 and events[-1]["completed_tasks"] == 4
    statuses = [await orchestrator.get_task_status(t) for t in batch.task_ids]
    assert statuses == [
        TaskStatus.COMPLETED,
        TaskStatus.FAILED,
        TaskStatus.CANCELLED,
        TaskStatus.COMPLETED,
    ]
    after = await orchestrator.get_batch(batch.id)
    assert after.metadata.status == "completed" and after.progress == 100.0
    counts = (after.metadata.completed, after.metadata.failed, after.metadata.cancelled)
    assert counts == (2, 1, 1)
    ends = {"run_completed", "run_failed", "run_cancelled"}
    terminal = await collect_events(
        orchestrator,
        owner,
        lambda events: sum(e["event_type"] in ends for e in events) >= 4,
        event_types=["agent_output", "run_completed", "run_failed", "run_cancelled"],
        task_ids=batch.task_ids,
    )
    by_task = {t: [e for e in terminal if e["task_id"] == t] for t in batch.task_ids}
    for task_id in (batch.task_ids[0], batch.task_ids[3]):
        output, completed = by_task[task_id]
        assert (output["event_type"], output["data"], output["turn"]) == ("agent_output", "fine", 1)
        assert completed["event_type"] == "run_completed" and completed["agent_name"] == agent.name
    [failed] = by_task[batch.task_ids[1]]
    assert failed["event_type"] == "run_failed" and "refused" in failed["error"]
    [cancelled] = by_task[batch.task_ids[2]]
    assert cancelled["event_type"] == "run_cancelled"


@BOTH_TURN_MODES
async def test_cancel_batch_mid_run(orchestrator: Orchestrator, unique) -> None:
    agent = Agent(name=unique("sleepy"), model=ScriptedModel([Reply(content="zzz", delay=60)]))
    orchestrator.register_runner(agent=agent, agent_worker_config=QUICK)
    await orchestrator.start_workers()
    owner = unique("owner")
    batch = await orchestrator.enqueue_batch(agent=agent, owner_id=owner, payloads=[{}] * 4)
    async with asyncio.timeout(30):
        while await _status_or_none(orchestrator, batch.task_ids[0]) != TaskStatus.PROCESSING:
            await asyncio.sleep(0.1)

    updated = await orchestrator.cancel_batch(batch.id)

    assert updated.metadata.status == "cancelled"
    assert updated.remaining_task_ids == []
    for task_id in batch.task_ids:
        assert await orchestrator.get_task_status(task_id) == TaskStatus.CANCELLED
    events = await batch_events(orchestrator, owner, batch.id, "batch_cancelled")
    assert sum(e["event_type"] == "batch_cancelled" for e in events) == 1
    assert "batch_completed" not in {e["event_type"] for e in events}
    again = await orchestrator.cancel_batch(batch.id)
    assert again.metadata.status == "cancelled"
    async with EventLedger(orchestrator, owner) as ledger:
        await ledger.wait_for_tasks(batch.task_ids)
        await ledger.settle(1.0)
    ledger.assert_exactly_once(batch.task_ids, batch_ids=[batch.id], expected="cancelled")


async def test_chunked_batch_larger_than_one_leaf(temporal_server, unique) -> None:
    orchestrator = Orchestrator(temporal_address=temporal_server.address, batch_chunk_size=3)
    agent = Agent(
        name=unique("chunky"),
        tools=[noop],
        max_turns=2,
        model=ScriptedModel([call_tool("noop"), reply("fin")]),
    )
    orchestrator.register_runner(agent=agent, agent_worker_config=QUICK)
    try:
        await orchestrator.start_workers()
        owner = unique("owner")
        batch = await orchestrator.enqueue_batch(agent=agent, owner_id=owner, payloads=[{}] * 10)
        assert len(batch.task_ids) == 10 and batch.metadata.max_progress == 20

        events = await batch_events(orchestrator, owner, batch.id, "batch_completed")
        progress = [e["progress"] for e in events]
        assert progress == sorted(progress) and progress[-1] == 100.0
        assert events[-1]["completed_tasks"] == 10
        async with EventLedger(orchestrator, owner) as ledger:
            await ledger.wait_for_tasks(batch.task_ids)
        ledger.assert_exactly_once(batch.task_ids, batch_ids=[batch.id], expected="completed")
        final = await orchestrator.get_batch(batch.id)
        assert final.metadata.status == "completed" and final.remaining_task_ids == []
        client = await orchestrator.client()
        leaves = [
            d async for d in client.list_workflows(f'WorkflowId STARTS_WITH "{batch.id}-part"')
        ]
        assert len(leaves) in (0, 4)  # visibility may lag; when listed, there are four leaves
        for task_id in batch.task_ids:
            assert await orchestrator.get_task_result(task_id) == "fin"
    finally:
        await orchestrator.close()


async def test_bad_batches_create_nothing(orchestrator: Orchestrator, unique) -> None:
    class Strict(AgentContext):
        n: int

    agent = Agent(name=unique("strict"), context_class=Strict, model=ScriptedModel([reply("x")]))
    orchestrator.register_runner(agent=agent)
    owner = unique("owner")
    with pytest.raises(InvalidPayloadError, match="at least one"):
        await orchestrator.enqueue_batch(agent=agent, owner_id=owner, payloads=[])
    with pytest.raises(InvalidPayloadError, match="payload 1"):
        await orchestrator.enqueue_batch(agent=agent, owner_id=owner, payloads=[{"n": 1}, {}])
    from tests.integration.test_bad_input import assert_nothing_created

    await assert_nothing_created(orchestrator, owner)
    tiny_leaves = Orchestrator(client=await orchestrator.client(), batch_chunk_size=1)
    tiny_leaves.register_runner(agent=agent)
    with pytest.raises(UserError, match="leaves"):
        await tiny_leaves.enqueue_batch(agent=agent, owner_id=owner, payloads=[{"n": 1}] * 1001)
    await assert_nothing_created(orchestrator, owner)
    with pytest.raises(BatchNotFoundError):
        await orchestrator.get_batch("batch-missing")
    with pytest.raises(BatchNotFoundError):
        await orchestrator.cancel_batch("batch-missing")


async def _status_or_none(orch: Orchestrator, task_id: str) -> Any:
    from factorial import TaskNotFoundError

    try:
        return await orch.get_task_status(task_id)
    except TaskNotFoundError:
        return None


async def test_batch_is_findable_by_search_attributes(orchestrator: Orchestrator, unique) -> None:
    agent = Agent(name=unique("findable"), model=ScriptedModel([reply("ok")]))
    orchestrator.register_runner(agent=agent, agent_worker_config=QUICK)
    await orchestrator.start_workers()
    owner = unique("owner")
    batch = await orchestrator.enqueue_batch(agent=agent, owner_id=owner, payloads=[{}] * 3)
    await batch_events(orchestrator, owner, batch.id, "batch_completed")
    client = await orchestrator.client()

    query = f'FactorialBatchId="{batch.id}"'
    async with asyncio.timeout(30):  # visibility is eventually consistent
        while (await client.count_workflows(query)).count < 4:
            await asyncio.sleep(0.2)
    found = {d.id: d async for d in client.list_workflows(query)}
    assert set(found) == {batch.id, *batch.task_ids}
    done = f'{query} AND FactorialStatus="completed" AND FactorialOwnerId="{owner}"'
    async with asyncio.timeout(30):
        while (await client.count_workflows(done)).count < 4:
            await asyncio.sleep(0.2)
    description = await client.get_workflow_handle(batch.id).describe()
    assert await description.static_summary() == f"batch of 3 {agent.name} tasks for {owner}"
    task_description = await client.get_workflow_handle(batch.task_ids[0]).describe()
    assert await task_description.static_summary() == f"{agent.name} task 0 of batch {batch.id}"


async def test_root_hears_a_bounded_number_of_leaf_reports(
    temporal_server, unique, monkeypatch
) -> None:
    """However long a batch runs, its root hears a bounded number of progress reports from
    its leaves (``factorial._batches._report_step``), plus one final report per leaf."""
    from factorial import _batches
    from factorial import _wire as wire

    monkeypatch.setattr(_batches, "MAX_ROOT_REPORTS", 2)
    monkeypatch.setattr(_batches, "MIN_LEAF_REPORTS", 1)
    orchestrator = Orchestrator(
        temporal_address=temporal_server.address, batch_chunk_size=10, max_running_tasks=4
    )
    slow_tool = call_tool("noop").model_copy(update={"delay": 0.3})
    agent = Agent(
        name=unique("reports"),
        tools=[noop],
        max_turns=2,
        model=ScriptedModel(lambda request: slow_tool if request.turn == 0 else reply("fin")),
    )
    orchestrator.register_runner(agent=agent, agent_worker_config=QUICK)
    try:
        await orchestrator.start_workers()
        owner = unique("owner")
        # Two leaves of 10 tasks, two at a time each: each leaf runs for several of its 2 s
        # report intervals, so a time throttle alone would let it report each time.
        batch = await run_to_completion(orchestrator, agent, owner, [{}] * 20)
        client = await orchestrator.client()
        reports = [
            (await client.data_converter.decode(signaled.input.payloads, [wire.LeafReport]))[0]
            for signaled in await signals_received(client, batch.id, wire.LEAF_REPORT_SIGNAL)
        ]
        assert sorted(r.chunk for r in reports if r.final) == [0, 1]
        # 40 units in all, a step of 20: leaf 0 first reports at 10 of its 20 units and
        # leaf 1 at 20 (its end), so at most one progress report each.
        progress = [r for r in reports if not r.final]
        assert len(progress) <= 2, [(r.chunk, r.counts.done_units) for r in progress]
    finally:
        await orchestrator.close()


async def test_leaves_of_a_root_send_their_tasks_turn_reports_together(
    temporal_server, unique
) -> None:
    """A leaf of a root passes progress on every ``report_every`` seconds, so its tasks'
    turn reports wait up to that long to go in one signal (a lone leaf's go at once)."""
    from factorial import _wire as wire

    def spread_turns(request: ModelRequest) -> Reply:
        """Three turns; task "n" takes 0.1 n s a turn, so no two tasks turn together."""
        first_user = next(m for m in request.messages if m["role"] == "user")
        answer = reply("fin") if request.turn >= 2 else call_tool("noop")
        return answer.model_copy(update={"delay": 0.1 * int(first_user["content"])})

    orchestrator = Orchestrator(temporal_address=temporal_server.address, batch_chunk_size=5)
    agent = Agent(
        name=unique("spread"), tools=[noop], max_turns=3, model=ScriptedModel(spread_turns)
    )
    orchestrator.register_runner(agent=agent, agent_worker_config=QUICK)
    try:
        await orchestrator.start_workers()
        owner = unique("owner")
        payloads = [{"query": str(n)} for n in range(1, 11)]
        batch = await run_to_completion(orchestrator, agent, owner, payloads)
        client = await orchestrator.client()
        for chunk in (0, 1):
            leaf_id = wire.leaf_id_of(batch.id, chunk)
            signals = len(await signals_received(client, leaf_id, wire.TASK_TURN_SIGNAL))
            # 15 turns over about 3 s, held up to 2 s (two leaves): a few signals, not 15.
            assert signals <= 4, (chunk, signals)
    finally:
        await orchestrator.close()
