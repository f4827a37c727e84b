"""Sub-agents: forking tools spawn child tasks and get their results back."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from temporalio.client import WorkflowExecutionStatus

from factorial import (
    Agent,
    AgentContext,
    AgentWorkerConfig,
    ExecutionContext,
    Orchestrator,
    TaskCancelledError,
    TaskStatus,
    deferred_tool,
    forking_tool,
)
from factorial.models import ModelRequest
from factorial.testing import Fail, Reply, ScriptedModel, call_tool, reply
from tests.conftest import BOTH_TURN_MODES
from tests.ledger import EventLedger

pytestmark = BOTH_TURN_MODES

QUICK = AgentWorkerConfig(initial_backoff=0.1, max_backoff=0.2, heartbeat_timeout=5)


def first_user_message(request: ModelRequest) -> str:
    return next(m for m in request.messages if m["role"] == "user")["content"]


def last_message(request: ModelRequest) -> str:
    return request.messages[-1]["content"]


# -- the seed's sample, verbatim (search_agent defined first) ----------------------------

search_agent = Agent(
    name="seed_search_agent",
    model=ScriptedModel(lambda request: reply(f"found: {first_user_message(request)}")),
)


@forking_tool(timeout=600)
async def fanout_research(
    queries: list[str],
    agent_ctx: AgentContext,
    execution_ctx: ExecutionContext,
) -> list[str]:
    """Spawn one subagent per query, concurrently, as a single batch."""
    payloads = [AgentContext(query=q) for q in queries]
    batch = await execution_ctx.spawn_child_tasks(search_agent, payloads)

    return batch.task_ids


def researcher_script(request: ModelRequest) -> Reply:
    if request.turn == 0:
        return call_tool("fanout_research", queries=["alpha", "beta", "gamma"])
    return reply(last_message(request))


@pytest.fixture
async def research(orchestrator: Orchestrator, unique) -> AsyncIterator[tuple[Orchestrator, Agent]]:
    researcher = Agent(
        name=unique("researcher"),
        tools=[fanout_research],
        model=ScriptedModel(researcher_script),
    )
    orchestrator.register_runner(agent=researcher, agent_worker_config=QUICK)
    orchestrator.register_runner(agent=search_agent, agent_worker_config=QUICK)
    await orchestrator.start_workers()
    yield orchestrator, researcher


async def test_seed_forking_sample(research: tuple[Orchestrator, Agent], unique) -> None:
    orchestrator, researcher = research
    owner = unique("owner")

    task = await orchestrator.enqueue_task(agent=researcher, owner_id=owner, payload={})
    output = await asyncio.wait_for(task.result(), 60)

    batch_id = f"{task.id}-t0-call00-0"
    children = [f"{batch_id}-{i}" for i in range(3)]
    assert output == "\n".join(
        ["<sub_task_results>"]
        + [
            f'<sub_task_result sub_task_id="{child}">found: {query}</sub_task_result>'
            for child, query in zip(children, ["alpha", "beta", "gamma"], strict=True)
        ]
        + ["</sub_task_results>"]
    )
    batch = await orchestrator.get_batch(batch_id)
    assert batch.metadata.parent_id == task.id
    assert batch.metadata.status == "completed" and batch.task_ids == children
    data = await orchestrator.get_task_data(task.id)
    assert data is not None
    tool_message = next(m for m in data["context"]["messages"] if m["role"] == "tool")
    assert tool_message["content"] == f"Started 3 sub-tasks: {', '.join(children)}"
    for child in children:
        child_data = await orchestrator.get_task_data(child)
        assert child_data is not None
        assert child_data["parent_task_id"] == task.id and child_data["batch_id"] == batch_id
    async with EventLedger(orchestrator, owner) as ledger:
        await ledger.wait_for_tasks([task.id, *children])
        await ledger.settle(1.0)
    ledger.assert_exactly_once([task.id, *children], batch_ids=[batch_id], expected="completed")
    [ended] = ledger.of_type("batch_completed")
    assert ended["batch_id"] == batch_id and ended["parent_task_id"] == task.id


async def test_failed_and_cancelled_children_are_reported_as_errors(
    orchestrator: Orchestrator, unique
) -> None:
    def worker_script(request: ModelRequest) -> Reply | Fail:
        query = first_user_message(request)
        if query == "fail":
            return Fail(status_code=400, times=99, message="bad request")
        if query == "slow":
            return Reply(content="never", delay=60)
        return reply(f"ok {query}")

    helper = Agent(name=unique("helper"), model=ScriptedModel(worker_script))

    @forking_tool(timeout=600)
    async def delegate(execution_ctx: ExecutionContext) -> tuple[str, list[str]]:
        """Delegate three jobs."""
        batch = await execution_ctx.spawn_child_tasks(
            helper, [{"query": q} for q in ("fine", "fail", "slow")]
        )
        return "delegated", batch.task_ids

    boss = Agent(
        name=unique("boss"),
        tools=[delegate],
        model=ScriptedModel(
            lambda r: call_tool("delegate") if r.turn == 0 else reply(last_message(r))
        ),
    )
    for agent in (boss, helper):
        orchestrator.register_runner(agent=agent, agent_worker_config=QUICK)
    await orchestrator.start_workers()
    task = await orchestrator.enqueue_task(agent=boss, owner_id=unique("o"), payload={})
    slow = f"{task.id}-t0-call00-0-2"

    async with asyncio.timeout(30):
        while True:
            if await orchestrator.get_task_status(task.id) == TaskStatus.PENDING_CHILD_TASKS:
                try:
                    if await orchestrator.get_task_status(slow) == TaskStatus.PROCESSING:
                        break
                except Exception:
                    pass
            await asyncio.sleep(0.1)
    await orchestrator.cancel_task(slow)

    output = await asyncio.wait_for(task.result(), 60)
    lines = output.splitlines()
    assert lines[1].endswith(">ok fine</sub_task_result>")
    assert lines[2].startswith(f'<sub_task_error sub_task_id="{task.id}-t0-call00-0-1">')
    assert "bad request" in lines[2]
    assert lines[3] == f'<sub_task_error sub_task_id="{slow}">cancelled</sub_task_error>'
    data = await orchestrator.get_task_data(task.id)
    assert data is not None
    assert [m for m in data["context"]["messages"] if m["role"] == "tool"][0]["content"] == (
        "delegated"
    )


async def test_wrong_return_shape_is_an_error_for_the_model(
    orchestrator: Orchestrator, unique
) -> None:
    helper = Agent(name=unique("unused_helper"), model=ScriptedModel([reply("x")]))

    @forking_tool(timeout=60)
    async def sloppy(execution_ctx: ExecutionContext) -> str:
        """Spawn and return the wrong thing."""
        await execution_ctx.spawn_child_tasks(helper, [{"query": "q"}])
        return "not ids"

    agent = Agent(
        name=unique("sloppy_parent"),
        tools=[sloppy],
        model=ScriptedModel(lambda r: call_tool("sloppy") if r.turn == 0 else reply("gave up")),
    )
    for a in (agent, helper):
        orchestrator.register_runner(agent=a)
    await orchestrator.start_workers()

    task = await orchestrator.enqueue_task(agent=agent, owner_id=unique("o"), payload={})

    assert await asyncio.wait_for(task.result(), 60) == "gave up"
    data = await orchestrator.get_task_data(task.id)
    assert data is not None
    tool_message = next(m for m in data["context"]["messages"] if m["role"] == "tool")
    assert "must return the child task ids" in tool_message["content"]
    from factorial import BatchNotFoundError

    with pytest.raises(BatchNotFoundError):
        await orchestrator.get_batch(f"{task.id}-t0-call00-0")


async def test_cancelling_the_parent_cancels_three_levels(
    orchestrator: Orchestrator, unique
) -> None:
    @deferred_tool(timeout=3600)
    def wait_forever() -> str:
        """Wait for something that never comes."""
        return "waiting"

    leaf = Agent(
        name=unique("level3"),
        tools=[wait_forever],
        model=ScriptedModel([call_tool("wait_forever")]),
    )

    def forker(child: Agent):
        @forking_tool(timeout=3600)
        async def fork(execution_ctx: ExecutionContext) -> list[str]:
            """Fork two children."""
            batch = await execution_ctx.spawn_child_tasks(child, [{"query": "a"}, {"query": "b"}])
            return batch.task_ids

        return fork

    middle = Agent(
        name=unique("level2"), tools=[forker(leaf)], model=ScriptedModel([call_tool("fork")])
    )
    top = Agent(
        name=unique("level1"), tools=[forker(middle)], model=ScriptedModel([call_tool("fork")])
    )
    for agent in (top, middle, leaf):
        orchestrator.register_runner(agent=agent, agent_worker_config=QUICK)
    await orchestrator.start_workers()
    owner = unique("o")
    ledger = await EventLedger(orchestrator, owner).__aenter__()
    task = await orchestrator.enqueue_task(agent=top, owner_id=owner, payload={})
    level2 = [f"{task.id}-t0-call00-0-{i}" for i in range(2)]
    level3 = [f"{parent}-t0-call00-0-{i}" for parent in level2 for i in range(2)]

    async def all_waiting() -> bool:
        for task_id in level3:
            try:
                if await orchestrator.get_task_status(task_id) != TaskStatus.PENDING_TOOL_RESULTS:
                    return False
            except Exception:
                return False
        return True

    async with asyncio.timeout(60):
        while not await all_waiting():
            await asyncio.sleep(0.2)

    await orchestrator.cancel_task(task.id)

    with pytest.raises(TaskCancelledError):
        await asyncio.wait_for(task.result(), 60)
    client = await orchestrator.client()
    descendants = (
        level2
        + level3
        + [f"{task.id}-t0-call00-0"]
        + [f"{parent}-t0-call00-0" for parent in level2]
    )
    for workflow_id in descendants:
        description = await client.get_workflow_handle(workflow_id).describe()
        assert description.status == WorkflowExecutionStatus.CANCELED, workflow_id
    tasks = [task.id, *level2, *level3]
    try:
        await ledger.wait_for_tasks(tasks)
        await ledger.settle()
    finally:
        await ledger.stop()
    batches = [f"{task.id}-t0-call00-0"] + [f"{parent}-t0-call00-0" for parent in level2]
    ledger.assert_exactly_once(tasks, batch_ids=batches, expected="cancelled")


async def test_spawn_child_task_and_structured_child_outputs(
    orchestrator: Orchestrator, unique
) -> None:
    from pydantic import BaseModel

    class Fact(BaseModel):
        topic: str
        stars: int

    child = Agent(
        name=unique("fact_finder"),
        output_type=Fact,
        model=ScriptedModel(
            lambda r: call_tool("final_output", topic=first_user_message(r), stars=5)
        ),
    )

    @forking_tool(timeout=600)
    async def two_singles(execution_ctx: ExecutionContext) -> tuple[str, list[str]]:
        """Spawn two children one by one."""
        first = await execution_ctx.spawn_child_task(child, {"query": "owls"})
        second = await execution_ctx.spawn_child_task(child, AgentContext(query="bats"))
        return f"asked {first} and {second}", [first, second]

    parent = Agent(
        name=unique("single_spawner"),
        tools=[two_singles],
        model=ScriptedModel(
            lambda r: call_tool("two_singles") if r.turn == 0 else reply(last_message(r))
        ),
    )
    for agent in (parent, child):
        orchestrator.register_runner(agent=agent, agent_worker_config=QUICK)
    await orchestrator.start_workers()

    task = await orchestrator.enqueue_task(agent=parent, owner_id=unique("o"), payload={})
    output = await asyncio.wait_for(task.result(), 60)

    owls, bats = '{"stars": 5, "topic": "owls"}', '{"stars": 5, "topic": "bats"}'
    first, second = f"{task.id}-t0-call00-0-0", f"{task.id}-t0-call00-1-0"
    assert output.splitlines() == [
        "<sub_task_results>",
        f'<sub_task_result sub_task_id="{first}">{owls}</sub_task_result>',
        f'<sub_task_result sub_task_id="{second}">{bats}</sub_task_result>',
        "</sub_task_results>",
    ]


async def test_cancelling_during_the_forking_turn_starts_no_children(
    orchestrator: Orchestrator, unique
) -> None:
    child = Agent(name=unique("never_started"), model=ScriptedModel([reply("x")]))
    spawned: list[str] = []

    @forking_tool(timeout=600)
    async def spawn_then_dawdle(execution_ctx: ExecutionContext) -> list[str]:
        """Spawn, then take a long time to return."""
        batch = await execution_ctx.spawn_child_tasks(child, [{"query": "a"}])
        spawned.append(batch.id)
        await asyncio.sleep(60)
        return batch.task_ids

    parent = Agent(
        name=unique("dawdler"),
        tools=[spawn_then_dawdle],
        model=ScriptedModel([call_tool("spawn_then_dawdle")]),
    )
    for agent in (parent, child):
        orchestrator.register_runner(agent=agent, agent_worker_config=QUICK)
    await orchestrator.start_workers()
    task = await orchestrator.enqueue_task(agent=parent, owner_id=unique("o"), payload={})
    async with asyncio.timeout(30):
        while not spawned:
            await asyncio.sleep(0.1)

    await orchestrator.cancel_task(task.id)

    with pytest.raises(TaskCancelledError):
        await asyncio.wait_for(task.result(), 30)
    from factorial import BatchNotFoundError

    with pytest.raises(BatchNotFoundError):
        await orchestrator.get_batch(spawned[0])
