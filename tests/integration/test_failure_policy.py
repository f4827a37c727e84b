"""A batch's failure policy: once too many tasks have failed, the rest are cancelled and the
batch ends ``failed`` with the reason; by default a failure never stops a batch."""

from __future__ import annotations

import asyncio

import pytest

from factorial import (
    Agent,
    AgentWorkerConfig,
    Batch,
    Budget,
    FailurePolicy,
    Orchestrator,
    UserError,
)
from factorial.models import ModelRequest
from factorial.testing import Fail, Reply, ScriptedModel, reply
from factorial.workflows._policy import FAILURE_PATCH
from factorial.workflows.batch import BUDGET_PATCH
from tests.conftest import BOTH_TURN_MODES
from tests.integration.test_replay import patch_ids, replay
from tests.ledger import EventLedger

pytestmark = BOTH_TURN_MODES

QUICK = AgentWorkerConfig(initial_backoff=0.1, max_backoff=0.2, heartbeat_timeout=5)


def script(request: ModelRequest) -> Reply | Fail:
    """``fail`` fails for good (HTTP 400); ``slow`` would take two minutes; others answer."""
    query = next(m for m in request.messages if m["role"] == "user")["content"]
    if query == "fail":
        return Fail(status_code=400, times=99, message="bad request")
    if query == "slow":
        return Reply(content="too late", delay=120)
    return reply(f"ok {query}")


async def run_batch(
    orchestrator: Orchestrator,
    unique,
    queries: list[str],
    policy: FailurePolicy | None,
    budget: Budget | None = None,
) -> tuple[Batch, EventLedger]:
    """Run a batch of one task per query until its end event; the batch as it ended."""
    agent = Agent(name=unique("worker"), model=ScriptedModel(script))
    orchestrator.register_runner(agent=agent, agent_worker_config=QUICK)
    await orchestrator.start_workers()
    owner = unique("owner")
    async with EventLedger(orchestrator, owner) as ledger:
        batch = await orchestrator.enqueue_batch(
            agent, owner, [{"query": q} for q in queries], on_failure=policy, budget=budget
        )
        ends = ("batch_completed", "batch_failed", "batch_cancelled")
        await ledger.wait_until(lambda events: any(e["event_type"] in ends for e in events), 90)
        await ledger.settle(1.0)
    ledger.assert_exactly_once(batch.task_ids, batch_ids=[batch.id])
    return await orchestrator.get_batch(batch.id), ledger


async def test_max_failed_across_leaves_cancels_the_rest(
    orchestrator: Orchestrator, unique
) -> None:
    orchestrator.batch_chunk_size = 2  # three leaves: [fail, fail], [fail, slow], [slow, slow]
    queries = ["fail", "fail", "fail", "slow", "slow", "slow"]
    batch, ledger = await run_batch(orchestrator, unique, queries, FailurePolicy(max_failed=2))

    reason = "3 tasks failed, more than max_failed=2"
    meta = batch.metadata
    assert (meta.status, meta.reason) == ("failed", reason)
    assert (meta.completed, meta.failed, meta.cancelled) == (0, 3, 3)
    [ended] = ledger.of_type("batch_failed")
    assert ended["reason"] == reason and ended["status"] == "failed"
    assert ended["outcomes"] == {"completed": 0, "failed": 3, "cancelled": 3}
    outcomes = ledger.outcomes()
    assert [outcomes[t] for t in batch.task_ids] == ["failed"] * 3 + ["cancelled"] * 3
    assert not ledger.of_type("run_completed", "batch_completed")
    assert all(e["reason"] == reason for e in ledger.of_type("run_cancelled"))
    # Every task has ended: no task completes after the batch failed.
    client = await orchestrator.client()
    for task_id in batch.task_ids:
        description = await client.get_workflow_handle(task_id).describe()
        assert description.close_time is not None, task_id
    for workflow_id in (batch.id, f"{batch.id}-part1"):  # root and leaf histories replay
        history = await client.get_workflow_handle(workflow_id).fetch_history()
        await replay(history)
    root = await client.get_workflow_handle(batch.id).fetch_history()
    assert FAILURE_PATCH in patch_ids(root)


async def test_max_failed_ratio(orchestrator: Orchestrator, unique) -> None:
    queries = ["fail", "slow", "slow", "slow"]
    batch, ledger = await run_batch(
        orchestrator, unique, queries, FailurePolicy(max_failed_ratio=0.2)
    )

    reason = "1 of 4 tasks failed, more than max_failed_ratio=0.2"
    assert (batch.metadata.status, batch.metadata.reason) == ("failed", reason)
    assert (batch.metadata.failed, batch.metadata.cancelled) == (1, 3)
    [ended] = ledger.of_type("batch_failed")
    assert ended["reason"] == reason
    assert [e["reason"] for e in ledger.of_type("run_cancelled")] == [reason] * 3
    async with asyncio.timeout(30):  # visibility lags the batch's end a little
        while True:
            listed = await orchestrator.list_batches(owner_id=ended["owner_id"], status="failed")
            if [info.id for info in listed] == [batch.id]:
                break
            await asyncio.sleep(0.2)


async def test_a_budgeted_batch_stopped_by_its_policy_keeps_the_policys_reason(
    orchestrator: Orchestrator, unique
) -> None:
    # The budget is far from spent: the failure policy stops the batch (through the budgeted
    # batch's watch), and batch_failed's reason is the policy's, not a budget's.
    budget = Budget(tokens=1_000_000)
    queries = ["fail", "slow", "slow"]
    batch, ledger = await run_batch(
        orchestrator, unique, queries, FailurePolicy(max_failed=0), budget
    )

    reason = "1 task failed, more than max_failed=0"
    assert (batch.metadata.status, batch.metadata.reason) == ("failed", reason)
    assert (batch.metadata.failed, batch.metadata.cancelled) == (1, 2)
    [ended] = ledger.of_type("batch_failed")
    assert ended["reason"] == reason
    assert [e["reason"] for e in ledger.of_type("run_cancelled")] == [reason] * 2
    history = await (await orchestrator.client()).get_workflow_handle(batch.id).fetch_history()
    await replay(history)
    assert {FAILURE_PATCH, BUDGET_PATCH} <= set(patch_ids(history))


async def test_by_default_failures_never_stop_a_batch(orchestrator: Orchestrator, unique) -> None:
    orchestrator.batch_chunk_size = 2
    batch, ledger = await run_batch(orchestrator, unique, ["fail", "a", "fail", "b"], None)

    meta = batch.metadata
    assert (meta.status, meta.reason) == ("completed", None)
    assert (meta.completed, meta.failed, meta.cancelled) == (2, 2, 0)
    assert len(ledger.of_type("batch_completed")) == 1 and not ledger.of_type("batch_failed")


async def test_a_policy_within_its_tolerance_completes(orchestrator: Orchestrator, unique) -> None:
    batch, _ = await run_batch(
        orchestrator, unique, ["fail", "a", "b"], FailurePolicy(max_failed=1)
    )

    assert (batch.metadata.status, batch.metadata.failed, batch.metadata.completed) == (
        "completed",
        1,
        2,
    )


async def test_on_failure_must_be_a_failure_policy(orchestrator: Orchestrator, unique) -> None:
    agent = Agent(name=unique("worker"), model=ScriptedModel(script))
    orchestrator.register_runner(agent=agent)
    with pytest.raises(UserError, match="on_failure must be a FailurePolicy"):
        await orchestrator.enqueue_batch(agent, "o", [{"query": "a"}], on_failure=2)  # type: ignore[arg-type]
