"""Honest batch status: outcomes and tokens, and answers without a worker (from the memo)."""

from __future__ import annotations

import asyncio

import pytest
from typer.testing import CliRunner

from factorial import Agent, AgentWorkerConfig, Orchestrator, deferred_tool
from factorial import _wire as wire
from factorial.cli import app
from factorial.models import ModelRequest
from factorial.testing import Fail, Reply, ScriptedModel, reply


def batch_status(address: str, batch_id: str) -> list[str]:
    """``factorial batch status ID``'s lines (run in-process, in a thread of its own)."""
    result = CliRunner().invoke(app, ["batch", "status", batch_id, "--address", address])
    assert result.exit_code == 0, result.output
    return result.output.splitlines()


async def test_a_batch_whose_tasks_all_failed_is_visibly_failed(
    orchestrator: Orchestrator, unique
) -> None:
    agent = Agent(
        name=unique("status_failing"),
        model=ScriptedModel([Fail(status_code=400, times=99, message="bad request")]),
    )
    orchestrator.register_runner(agent=agent)
    await orchestrator.start_workers()
    batch = await orchestrator.enqueue_batch(agent, unique("status_owner"), [{"query": "x"}] * 3)
    await (await orchestrator.client()).get_workflow_handle(batch.id).result()
    await orchestrator.stop_workers()  # a completed batch's result needs no worker

    found = await orchestrator.get_batch(batch.id)
    assert found.metadata.status == "completed"
    assert (found.metadata.completed, found.metadata.failed) == (0, 3)
    lines = await asyncio.to_thread(batch_status, orchestrator.temporal_address, batch.id)
    assert "status: completed (all 3 tasks failed)" in lines
    assert "tasks: 3/3 ended (0 completed, 3 failed, 0 cancelled), 0 remaining" in lines
    assert any(line.startswith("tokens: ") for line in lines)


@deferred_tool(timeout=3600)
def wait_for_approval() -> str:
    """Wait for an approval that does not come."""
    return "waiting"


def quick_or_waiting(request: ModelRequest) -> Reply:
    query = next(m for m in request.messages if m["role"] == "user")["content"]
    if query == "quick":
        return Reply(content="done", usage={"prompt_tokens": 40, "completion_tokens": 2})
    return Reply(tool_calls=[{"name": "wait_for_approval"}])


async def memo_counts(orchestrator: Orchestrator, batch_id: str) -> wire.BatchCounts | None:
    """The counters in the batch's memo (what a reader without a worker sees)."""
    description = await (await orchestrator.client()).get_workflow_handle(batch_id).describe()
    summary = await description.memo_value(
        wire.BATCH_SUMMARY_MEMO, None, type_hint=wire.BatchSummary
    )
    return summary.counts if summary is not None else None


@pytest.mark.parametrize("chunk_size", [200, 2], ids=["lone-leaf", "root-of-two-leaves"])
async def test_status_of_running_and_cancelled_batches_without_a_worker(
    orchestrator: Orchestrator, unique, chunk_size: int
) -> None:
    orchestrator.batch_chunk_size = chunk_size
    agent = Agent(
        name=unique("status_waiting"),
        tools=[wait_for_approval],
        model=ScriptedModel(quick_or_waiting),
    )
    orchestrator.register_runner(agent, AgentWorkerConfig(turn_execution="activity"))
    address = orchestrator.temporal_address
    await orchestrator.start_workers()
    payloads = [{"query": "quick"}, {"query": "wait"}, {"query": "wait"}]
    batch = await orchestrator.enqueue_batch(agent, unique("status_owner"), payloads)
    async with asyncio.timeout(60):
        while (counts := await memo_counts(orchestrator, batch.id)) is None or not counts.completed:
            await asyncio.sleep(0.2)
    await orchestrator.stop_workers()

    running = await orchestrator.get_batch(batch.id)
    assert running.metadata.status == "active"
    assert (running.metadata.completed, running.metadata.failed) == (1, 0)
    assert running.metadata.usage.prompt_tokens == 40
    assert running.remaining_task_ids == batch.task_ids[1:]
    lines = await asyncio.to_thread(batch_status, address, batch.id)
    assert "status: active" in lines
    assert "tasks: 1/3 ended (1 completed, 0 failed, 0 cancelled), 2 remaining" in lines
    assert "tokens: 42 (prompt 40, completion 2)" in lines

    await orchestrator.start_workers()
    await orchestrator.cancel_batch(batch.id)
    await orchestrator.stop_workers()

    cancelled = await orchestrator.get_batch(batch.id)
    assert cancelled.metadata.status == "cancelled"
    assert (cancelled.metadata.completed, cancelled.metadata.cancelled) == (1, 2)
    # What `batch watch` and `batch results` read once a batch has ended: the same counts.
    ended = await orchestrator.read_ended_batch(batch.id)
    assert ended.metadata == cancelled.metadata
    assert ended.progress == cancelled.progress
    lines = await asyncio.to_thread(batch_status, address, batch.id)
    assert "status: cancelled" in lines
    assert "progress: cancelled at 33.33% (1 of 3 tasks completed or failed)" in lines
    assert not any("100%" in line for line in lines)


async def test_a_batch_no_worker_has_run_yet_reads_from_its_memo(
    orchestrator: Orchestrator, unique
) -> None:
    agent = Agent(name=unique("status_unserved"), model=ScriptedModel([reply("done")]))
    orchestrator.register_runner(agent=agent)  # no workers started
    batch = await orchestrator.enqueue_batch(agent, unique("status_owner"), [{}] * 2)
    found = await orchestrator.get_batch(batch.id)
    assert found.metadata.status == "active"
    assert found.metadata.total_tasks == 2
    assert found.remaining_task_ids == batch.task_ids
    # Leave nothing for a later test's batch worker to run.
    await (await orchestrator.client()).get_workflow_handle(batch.id).cancel()
