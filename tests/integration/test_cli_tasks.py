"""``factorial task status|list|cancel|steer|complete-tool`` on a real dev server."""

from __future__ import annotations

import asyncio

from factorial import (
    Agent,
    AgentContext,
    AgentWorkerConfig,
    Orchestrator,
    TaskStatus,
    deferred_tool,
)
from factorial.cli._common import ExitCode
from factorial.example_app import build_agents, topics_for
from factorial.models import ModelRequest
from factorial.testing import Fail, Reply, ScriptedModel, call_tool, reply
from tests.integration.cli_runner import as_json, cli, eventually, ok


@deferred_tool(timeout=3600)
def ask_approval() -> str:
    """Ask a human to approve."""
    return "asked"


def approve_then_answer(request: ModelRequest) -> Reply:
    """Turn 0 asks for approval; turn 1 repeats the tool's result."""
    if request.turn == 0:
        return call_tool("ask_approval")
    return reply(f"approval: {request.messages[-1]['content']}")


async def wait_for_status(orchestrator: Orchestrator, task_id: str, status: TaskStatus) -> None:
    await eventually(lambda: orchestrator.get_task_status(task_id), lambda s: s == status)


async def test_status_complete_tool_and_ended_tasks(orchestrator: Orchestrator, unique) -> None:
    agent = Agent(
        name=unique("cli_approve"), tools=[ask_approval], model=ScriptedModel(approve_then_answer)
    )
    orchestrator.register_runner(agent=agent)
    await orchestrator.start_workers()
    address = ("--address", orchestrator.temporal_address)
    owner = unique("cli_owner")
    task = await orchestrator.enqueue_task(agent, owner_id=owner, payload=AgentContext(query="q"))
    await wait_for_status(orchestrator, task.id, TaskStatus.PENDING_TOOL_RESULTS)

    report = as_json(await cli("task", "status", task.id, "--json", *address))
    assert report["id"] == task.id
    assert report["status"] == "pending_tool_results"
    assert report["agent"] == agent.name
    assert report["owner_id"] == owner
    assert report["worker_answered"] is True
    assert report["pending_tool_call_ids"] == ["call_0_0"]
    assert report["started_at"] and report["closed_at"] is None
    text = ok(await cli("task", "status", task.id, *address)).splitlines()
    assert f"task: {task.id}" in text
    assert f"owner: {owner}" in text
    assert "pending tool calls: call_0_0" in text

    wrong = await cli("task", "complete-tool", task.id, "call_nope", "yes", *address)
    assert wrong.exit_code == ExitCode.ERROR
    assert "not waiting for tool call 'call_nope' (pending: call_0_0)" in wrong.stderr

    done = await cli("task", "complete-tool", task.id, "call_0_0", '{"approved": true}', *address)
    assert "result of call_0_0 delivered" in ok(done)
    output = await asyncio.wait_for(task.result(), 60)
    assert output.startswith("approval: ") and '"approved": true' in output

    # Every command that acts on a task says the same of an ended one: exit code 3.
    for command in (
        ("task", "cancel", task.id),
        ("task", "steer", task.id, "more please"),
        ("task", "complete-tool", task.id, "call_0_0", "again"),
    ):
        ended = await cli(*command, *address)
        assert ended.exit_code == ExitCode.ENDED, (command, ended.stdout, ended.stderr)
        assert ended.stderr.strip() == f"error: task {task.id} has already ended (completed)"
        assert "requested" not in ended.stdout

    final = as_json(await cli("task", "status", task.id, "--json", *address))
    assert final["status"] == "completed"
    assert final["output"] == output
    assert final["closed_at"]


async def test_status_without_a_worker_answers_from_the_server(
    orchestrator: Orchestrator, unique
) -> None:
    # Registered to enqueue, but no worker runs: nothing can answer a query.
    agent = Agent(name=unique("cli_idle"), model=ScriptedModel([reply("never")]))
    orchestrator.register_runner(agent=agent)
    address = ("--address", orchestrator.temporal_address)
    owner = unique("cli_owner")
    task = await orchestrator.enqueue_task(agent, owner_id=owner, payload=AgentContext(query="q"))
    try:
        result = await cli("task", "status", task.id, *address)
        lines = ok(result).splitlines()
        assert f"task: {task.id}" in lines
        assert "status: active" in lines
        assert f"agent: {agent.name}" in lines
        assert f"owner: {owner}" in lines
        assert any(line.startswith("started: ") for line in lines)
        assert "no worker answered" in result.stdout
        report = as_json(await cli("task", "status", task.id, "--json", *address))
        assert report["worker_answered"] is False
        assert report["status"] == "active"

        cancel = await cli("task", "cancel", task.id, *address)
        assert f"cancellation requested for {task.id}" in ok(cancel)
    finally:
        client = await orchestrator.client()
        await client.get_workflow_handle(task.id).terminate("test over")


async def test_task_list_filters(orchestrator: Orchestrator, unique) -> None:
    agent = Agent(name=unique("cli_list"), model=ScriptedModel([reply("hi")]))
    other = Agent(name=unique("cli_list_other"), model=ScriptedModel([reply("hi")]))
    for each in (agent, other):
        orchestrator.register_runner(agent=each)
    await orchestrator.start_workers()
    address = ("--address", orchestrator.temporal_address)
    owner = unique("cli_owner")
    batch = await orchestrator.enqueue_batch(agent, owner, [{"query": "a"}, {"query": "b"}])
    single = await orchestrator.enqueue_task(other, owner_id=owner, payload={"query": "c"})
    for task_id in (*batch.task_ids, single.id):
        await orchestrator.get_task_result(task_id)

    async def listing(*filters: str) -> list[dict]:
        return as_json(await cli("task", "list", *filters, "--json", *address))

    everything = await eventually(
        lambda: listing("--owner", owner, "--status", "completed"), lambda rows: len(rows) == 3
    )
    assert {row["id"] for row in everything} == {*batch.task_ids, single.id}
    assert all(row["owner_id"] == owner for row in everything)
    by_batch = await listing("--batch", batch.id)
    assert sorted(row["id"] for row in by_batch) == sorted(batch.task_ids)
    assert all(row["batch_id"] == batch.id for row in by_batch)
    by_agent = await listing("--owner", owner, "--agent", other.name)
    assert [(row["id"], row["agent"]) for row in by_agent] == [(single.id, other.name)]
    assert len(await listing("--owner", owner, "--limit", "1")) == 1
    assert await listing("--owner", owner, "--status", "failed") == []

    table = ok(await cli("task", "list", "--owner", owner, "--agent", other.name, *address))
    assert single.id in table and "completed" in table
    nothing = ok(await cli("task", "list", "--owner", unique("nobody"), *address))
    assert nothing.strip() == "no tasks found"
    for status in ("sleeping", "processing"):
        bad = await cli("task", "list", "--status", status, *address)
        assert bad.exit_code == ExitCode.ERROR
        assert f"cannot list tasks by status {status!r}; use one of: active," in bad.stderr


async def test_task_list_of_a_tasks_sub_agents(orchestrator: Orchestrator, unique) -> None:
    research, search = build_agents()  # the scripted example agents: research fans out
    for each in (research, search):
        orchestrator.register_runner(agent=each)
    await orchestrator.start_workers()
    address = ("--address", orchestrator.temporal_address)
    query = "Why run agents on Temporal?"
    owner = unique("cli_owner")
    task = await orchestrator.enqueue_task(research, owner_id=owner, payload={"query": query})
    await asyncio.wait_for(task.result(), 120)

    rows = await eventually(
        lambda: cli("task", "list", "--parent", task.id, "--json", *address),
        lambda result: len(as_json(result)) == len(topics_for(query)),
    )
    children = as_json(rows)
    assert {row["agent"] for row in children} == {search.name}
    assert {row["parent_task_id"] for row in children} == {task.id}
    assert all(row["status"] == "completed" and row["owner_id"] == owner for row in children)


async def test_status_of_a_turn_waiting_for_its_retry(orchestrator: Orchestrator, unique) -> None:
    # Regular-activity turns that fail with a 503: the retry waits a minute in backoff.
    agent = Agent(
        name=unique("cli_backoff"),
        model=ScriptedModel([Fail(status_code=503, times=99)]),
    )
    config = AgentWorkerConfig(turn_execution="activity", max_retries=3, initial_backoff=60)
    orchestrator.register_runner(agent=agent, agent_worker_config=config)
    await orchestrator.start_workers()
    address = ("--address", orchestrator.temporal_address)
    task = await orchestrator.enqueue_task(agent, owner_id=unique("cli_owner"), payload={})
    try:
        await wait_for_status(orchestrator, task.id, TaskStatus.BACKOFF)
        report = as_json(await cli("task", "status", task.id, "--json", *address))
        assert report["status"] == "backoff"
        assert report["attempt"] == 2
        assert "attempt: 2" in ok(await cli("task", "status", task.id, *address)).splitlines()
    finally:
        await orchestrator.cancel_task(task.id)
