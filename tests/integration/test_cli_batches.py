"""``factorial batch watch|results|retry-failed|list|status --json`` on a real dev server."""

from __future__ import annotations

import asyncio
import json
import subprocess

from factorial import Agent, Orchestrator, deferred_tool
from factorial.cli._common import ExitCode
from factorial.models import ModelRequest
from factorial.testing import Fail, ScriptedModel, Step, call_tool, reply
from tests.integration.cli_runner import as_json, cli, eventually, ok
from tests.integration.test_cli import FACTORIAL, cli_env


class Flaky:
    """A script whose ``boom`` queries fail (HTTP 400, not retried) until ``fixed``."""

    def __init__(self) -> None:
        self.fixed = False

    def __call__(self, request: ModelRequest) -> Step:
        query = request.messages[-1]["content"]
        if "boom" in query and not self.fixed:
            return Fail(status_code=400, times=99, message=f"bad request for {query}")
        return reply(f"done {query}")


async def test_watch_results_and_retry_failed(orchestrator: Orchestrator, unique, tmp_path) -> None:
    script = Flaky()
    agent = Agent(name=unique("cli_flaky"), model=ScriptedModel(script))
    orchestrator.register_runner(agent=agent)
    await orchestrator.start_workers()
    address = ("--address", orchestrator.temporal_address)
    owner = unique("cli_owner")
    queries = ["ok-0", "boom-1", "ok-2"]
    batch = await orchestrator.enqueue_batch(agent, owner, [{"query": q} for q in queries])

    # Watch ends with the batch; exit code 4: it ended, and one task failed.
    watched = await cli("batch", "watch", batch.id, "--interval", "0.2", *address)
    assert watched.exit_code == ExitCode.TASKS_FAILED, (watched.stdout, watched.stderr)
    final = f"batch {batch.id} completed: 3/3 tasks ended: 2 completed, 1 failed, 0 cancelled"
    assert watched.stdout.splitlines()[-1] == final
    status = as_json(await cli("batch", "status", batch.id, "--json", *address))
    assert status["id"] == batch.id
    assert status["metadata"]["failed"] == 1 and status["metadata"]["completed"] == 2

    lines = ok(await cli("batch", "results", batch.id, *address)).splitlines()
    results = [json.loads(line) for line in lines]
    assert [r["task_id"] for r in results] == batch.task_ids
    assert [r["status"] for r in results] == ["completed", "failed", "completed"]
    assert results[0]["output"] == "done ok-0" and results[0]["error"] is None
    assert "bad request for boom-1" in results[1]["error"] and results[1]["output"] is None
    exported = tmp_path / "results.jsonl"
    written = await cli("batch", "results", batch.id, "--output", str(exported), *address)
    assert ok(written) == ""
    assert f"3 results of batch {batch.id} written to {exported}" in written.stderr
    assert [json.loads(line) for line in exported.read_text().splitlines()] == results

    script.fixed = True
    retried = await cli("batch", "retry-failed", batch.id, *address)
    new_id = ok(retried).strip()
    assert new_id.startswith("batch-") and new_id != batch.id
    assert f"retrying 1 failed tasks of {batch.id}" in retried.stderr
    again = await cli("batch", "watch", new_id, "--interval", "0.2", *address)
    assert again.exit_code == ExitCode.OK, (again.stdout, again.stderr)
    new = await orchestrator.get_batch(new_id)
    assert new.metadata.retry_of == batch.id
    assert new.metadata.owner_id == owner and new.metadata.total_tasks == 1
    assert await orchestrator.get_task_result(new.task_ids[0]) == "done boom-1"
    assert f"retry of: {batch.id}" in ok(await cli("batch", "status", new_id, *address))

    nothing = await cli("batch", "retry-failed", new_id, *address)
    assert ok(nothing) == ""
    assert f"no failed tasks in batch {new_id}: nothing to retry" in nothing.stderr

    async def listing(*filters: str) -> list[dict]:
        return as_json(await cli("batch", "list", "--owner", owner, *filters, "--json", *address))

    rows = await eventually(listing, lambda rows: len(rows) == 2)
    assert {row["id"]: row["retry_of"] for row in rows} == {batch.id: None, new_id: batch.id}
    assert all(row["agent"] == agent.name and row["status"] == "completed" for row in rows)
    assert await listing("--status", "active") == []
    assert len(await listing("--limit", "1")) == 1
    table = ok(await cli("batch", "list", "--owner", owner, *address))
    assert new_id in table and batch.id in table


@deferred_tool(timeout=3600)
def wait_forever() -> str:
    """Wait for a result that never comes."""
    return "waiting"


async def test_watch_a_cancelled_batch(orchestrator: Orchestrator, unique) -> None:
    agent = Agent(
        name=unique("cli_waiting"),
        tools=[wait_forever],
        model=ScriptedModel([call_tool("wait_forever")]),
        max_turns=2,  # so a task's first turn moves the batch's progress
    )
    orchestrator.register_runner(agent=agent)
    await orchestrator.start_workers()
    address = ("--address", orchestrator.temporal_address)
    batch = await orchestrator.enqueue_batch(agent, unique("cli_owner"), [{"query": "a"}] * 2)

    running = await cli("batch", "retry-failed", batch.id, *address)
    assert running.exit_code == ExitCode.ERROR
    assert f"batch {batch.id} is still running" in running.stderr

    # A process of its own: typer's runner swaps sys.stdout, one command at a time.
    watching = await asyncio.create_subprocess_exec(
        FACTORIAL,
        *("batch", "watch", batch.id, "--interval", "0.2", *address),
        env=cli_env(),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        await eventually(lambda: orchestrator.get_batch(batch.id), lambda b: b.progress > 0)
        assert watching.returncode is None
        cancelled = as_json(await cli("batch", "cancel", batch.id, "--json", *address))
        assert cancelled["metadata"]["status"] == "cancelled"
        out, err = await asyncio.wait_for(watching.communicate(), 60)
    finally:
        if watching.returncode is None:
            watching.kill()
            await watching.wait()
    assert watching.returncode == ExitCode.CANCELLED, (out, err)
    assert f"batch {batch.id} cancelled: " in out.decode()

    # An ended batch, and no worker left: watch shows it and exits, with the same code.
    await orchestrator.stop_workers()
    after = await asyncio.wait_for(cli("batch", "watch", batch.id, *address), 60)
    assert after.exit_code == ExitCode.CANCELLED
    exported = ok(await cli("batch", "results", batch.id, *address))
    results = [json.loads(line) for line in exported.splitlines()]
    assert [r["status"] for r in results] == ["cancelled", "cancelled"]


async def test_unknown_batch(orchestrator: Orchestrator) -> None:
    address = ("--address", orchestrator.temporal_address)
    for command in ("watch", "results", "retry-failed"):
        result = await cli("batch", command, "batch-doesnotexist", *address)
        assert result.exit_code == ExitCode.ERROR
        assert result.stderr.strip() == "error: no batch with id 'batch-doesnotexist'"


async def test_retry_failed_of_a_batch_split_into_leaves(
    orchestrator: Orchestrator, temporal_server, unique
) -> None:
    script = Flaky()
    agent = Agent(name=unique("cli_leaves"), model=ScriptedModel(script))
    orchestrator.register_runner(agent=agent)
    await orchestrator.start_workers()
    address = ("--address", orchestrator.temporal_address)
    # Enqueued in leaves of two tasks (three leaves and a root); the fixture's workers run them.
    splitter = Orchestrator(temporal_address=temporal_server.address, batch_chunk_size=2)
    splitter.register_runner(agent=agent)
    queries = ["ok-0", "boom-1", "ok-2", "ok-3", "boom-4"]
    try:
        batch = await splitter.enqueue_batch(
            agent, unique("cli_owner"), [{"query": q} for q in queries]
        )
    finally:
        await splitter.close()
    watched = await cli("batch", "watch", batch.id, "--interval", "0.2", *address)
    assert watched.exit_code == ExitCode.TASKS_FAILED, (watched.stdout, watched.stderr)

    script.fixed = True
    new = as_json(await cli("batch", "retry-failed", batch.id, "--json", *address))
    assert new["metadata"]["retry_of"] == batch.id
    assert new["metadata"]["total_tasks"] == 2
    again = await cli("batch", "watch", new["id"], "--interval", "0.2", *address)
    assert again.exit_code == ExitCode.OK, (again.stdout, again.stderr)
    outputs = [await orchestrator.get_task_result(task_id) for task_id in new["task_ids"]]
    assert outputs == ["done boom-1", "done boom-4"]


async def test_a_batch_terminated_by_hand_reads_as_cancelled(
    orchestrator: Orchestrator, unique
) -> None:
    # No worker ever runs here: the batch never starts a task, then it is terminated.
    agent = Agent(name=unique("cli_never"), model=ScriptedModel([reply("never")]))
    orchestrator.register_runner(agent=agent)
    address = ("--address", orchestrator.temporal_address)
    owner = unique("cli_owner")
    batch = await orchestrator.enqueue_batch(agent, owner, [{"query": "a"}, {"query": "b"}])
    client = await orchestrator.client()
    await client.get_workflow_handle(batch.id).terminate("by hand")

    watched = await asyncio.wait_for(cli("batch", "watch", batch.id, *address), 60)
    assert watched.exit_code == ExitCode.CANCELLED, (watched.stdout, watched.stderr)
    exported = ok(await cli("batch", "results", batch.id, *address))
    assert [json.loads(line)["status"] for line in exported.splitlines()] == ["cancelled"] * 2
    rows = await eventually(
        lambda: orchestrator.list_batches(owner_id=owner), lambda rows: len(rows) == 1
    )
    assert rows[0].status == "cancelled" and rows[0].closed_at is not None
    assert (await orchestrator.get_batch(batch.id)).metadata.status == "cancelled"
