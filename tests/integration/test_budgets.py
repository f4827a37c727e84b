"""Budgets (``factorial.Budget``): a task's, counting its sub-agents, and a whole batch's.

Each stops at a turn boundary with ``BudgetExceeded`` and cancels what runs below it; the
usage so far stays readable. Both turn modes.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from factorial import (
    Agent,
    AgentContext,
    AgentWorkerConfig,
    Budget,
    BudgetExceeded,
    ExecutionContext,
    Orchestrator,
    TokenUsage,
    forking_tool,
)
from factorial.models import ModelRequest
from factorial.testing import Reply, ScriptedModel
from tests.conftest import BOTH_TURN_MODES, collect_events, has_event
from tests.integration.test_replay import replay

pytestmark = BOTH_TURN_MODES


def noop() -> str:
    """Do nothing."""
    return "ok"


def looping(tokens: Callable[[ModelRequest], int]) -> ScriptedModel:
    """A model that calls ``noop`` on every turn, using ``tokens(request)`` tokens."""
    return ScriptedModel(
        lambda request: Reply(
            tool_calls=[{"name": "noop"}],
            usage=TokenUsage(prompt_tokens=tokens(request), completion_tokens=0),
        )
    )


async def test_turns_budget_stops_the_task_at_the_boundary(
    orchestrator: Orchestrator, unique: Callable[[str], str]
) -> None:
    agent = Agent(
        name=unique("budget_turns"),
        tools=[noop],
        model=looping(lambda _: 10),
        budget=Budget(turns=3),
    )
    orchestrator.register_runner(agent=agent)
    await orchestrator.start_workers()
    owner = unique("budget_owner")
    task = await orchestrator.enqueue_task(agent=agent, owner_id=owner, payload={"query": "go"})
    events = await collect_events(orchestrator, owner, has_event("run_failed"))

    with pytest.raises(BudgetExceeded) as raised:
        await task.result()
    assert raised.value.error == "BudgetExceeded: ran 3 turns of a budget of 3"
    [failed] = [e for e in events if e["event_type"] == "run_failed"]
    assert failed["error"] == "BudgetExceeded: ran 3 turns of a budget of 3"
    assert failed["usage"]["total_tokens"] == 30
    turns = [e for e in events if e["event_type"] == "progress_update_run_turn_completed"]
    assert len(turns) == 3
    data = await orchestrator.get_task_data(task.id)
    assert data is not None
    assert (data["status"], data["turn"], data["usage"]["total_tokens"]) == ("failed", 3, 30)


async def test_token_budget_counts_sub_agents_and_cancels_them(
    orchestrator: Orchestrator, unique: Callable[[str], str]
) -> None:
    # The parent uses 100 tokens and forks two children; their batch gets the 900 left.
    # Each child's first turn uses 500 (1,000 together: the batch's budget is spent), later
    # turns 1 each, so neither child reaches 900 on its own: the batch cancels them.
    child = Agent(
        name=unique("budget_child"),
        tools=[noop],
        model=looping(lambda request: 500 if request.turn == 0 else 1),
    )
    spawned: list[str] = []

    @forking_tool(timeout=600)
    async def fork(execution_ctx: ExecutionContext) -> list[str]:
        """Two children."""
        batch = await execution_ctx.spawn_child_tasks(child, [AgentContext(query="c")] * 2)
        spawned.extend(batch.task_ids)
        return batch.task_ids

    parent = Agent(
        name=unique("budget_parent"),
        tools=[fork],
        model=ScriptedModel(
            [Reply(tool_calls=[{"name": "fork"}], usage=TokenUsage(prompt_tokens=100))]
        ),
        budget=Budget(tokens=1000),
    )
    for agent in (parent, child):
        orchestrator.register_runner(agent=agent)
    await orchestrator.start_workers()
    owner = unique("budget_owner")
    task = await orchestrator.enqueue_task(agent=parent, owner_id=owner, payload={})
    events = await collect_events(
        orchestrator,
        owner,
        lambda es: has_event("run_failed")(es) and has_event("batch_failed")(es),
    )

    with pytest.raises(BudgetExceeded) as raised:
        await task.result()
    assert raised.value.error is not None
    assert raised.value.error.startswith("BudgetExceeded: used ")
    data = await orchestrator.get_task_data(task.id)
    assert data is not None
    assert data["status"] == "failed"
    assert data["usage"]["total_tokens"] >= 100 + 2 * 500  # the children's tokens count

    [batch_failed] = [e for e in events if e["event_type"] == "batch_failed"]
    assert batch_failed["reason"].startswith("BudgetExceeded: used ")
    assert batch_failed["status"] == "failed"
    assert batch_failed["outcomes"]["cancelled"] == 2
    cancelled = {e["task_id"] for e in events if e["event_type"] == "run_cancelled"}
    assert cancelled == set(spawned)
    for child_id in spawned:
        child_data = await orchestrator.get_task_data(child_id)
        assert child_data is not None and child_data["status"] == "cancelled"
    child_data = await orchestrator.get_task_data(spawned[0])
    assert child_data is not None
    sub_batch = await orchestrator.get_batch(child_data["batch_id"])
    assert sub_batch.metadata.status == "failed"
    assert sub_batch.metadata.reason == batch_failed["reason"]
    assert sub_batch.metadata.usage.total_tokens >= 1000

    # The budgeted workflows replay as they ran: the parent, its sub-batch and a child.
    client = await orchestrator.client()
    for workflow_id in (task.id, child_data["batch_id"], spawned[0]):
        await replay(await client.get_workflow_handle(workflow_id).fetch_history())


async def test_batch_budget_stops_the_batch_and_cancels_its_tasks(
    orchestrator: Orchestrator, unique: Callable[[str], str]
) -> None:
    agent = Agent(name=unique("budget_batch"), tools=[noop], model=looping(lambda _: 100))
    orchestrator.register_runner(agent=agent)
    await orchestrator.start_workers()
    owner = unique("budget_owner")
    batch = await orchestrator.enqueue_batch(
        agent=agent,
        owner_id=owner,
        payloads=[{"query": str(i)} for i in range(3)],
        budget=Budget(tokens=1000),
    )
    events = await collect_events(orchestrator, owner, has_event("batch_failed"))

    [ended] = [e for e in events if e["event_type"] == "batch_failed"]
    assert ended["reason"].startswith("BudgetExceeded: used ")
    assert ended["outcomes"]["completed"] == 0
    assert ended["outcomes"]["cancelled"] >= 1
    assert ended["usage"]["total_tokens"] >= 1000
    assert not [e for e in events if e["event_type"] in ("batch_completed", "batch_cancelled")]

    found = await orchestrator.get_batch(batch.id)
    meta = found.metadata
    assert (meta.status, meta.reason) == ("failed", ended["reason"])
    assert meta.completed == 0 and meta.failed + meta.cancelled == 3
    assert (await orchestrator.get_batch_info(batch.id)).status == "failed"
    assert meta.usage.total_tokens == ended["usage"]["total_tokens"]
    statuses = {(await orchestrator.get_task_data(t) or {}).get("status") for t in found.task_ids}
    assert "cancelled" in statuses and statuses <= {"cancelled", "failed"}
    client = await orchestrator.client()
    for workflow_id in (batch.id, found.task_ids[0]):
        await replay(await client.get_workflow_handle(workflow_id).fetch_history())


async def test_budget_survives_continue_as_new(
    orchestrator: Orchestrator, unique: Callable[[str], str]
) -> None:
    agent = Agent(
        name=unique("budget_can"),
        tools=[noop],
        model=looping(lambda _: 10),
        budget=Budget(tokens=55),
    )
    # Continue-as-new after every turn: the budget and the usage travel with the task.
    orchestrator.register_runner(
        agent=agent, agent_worker_config=AgentWorkerConfig(continue_as_new_bytes=1024)
    )
    await orchestrator.start_workers()
    task = await orchestrator.enqueue_task(
        agent=agent, owner_id=unique("budget_owner"), payload={"query": "go"}
    )
    with pytest.raises(BudgetExceeded) as raised:
        await task.result()
    assert raised.value.error == "BudgetExceeded: used 60 tokens of a budget of 55"
    data = await orchestrator.get_task_data(task.id)
    assert data is not None
    assert (data["turn"], data["usage"]["total_tokens"]) == (6, 60)
    handle = (await orchestrator.client()).get_workflow_handle(task.id)
    description = await handle.describe()
    assert description.run_id != task_first_run_id(await handle.fetch_history())


def task_first_run_id(history: object) -> str:
    """The first run's id, as the current run's history names it."""
    first = history.events[0]  # type: ignore[attr-defined]
    attrs = first.workflow_execution_started_event_attributes
    return str(attrs.first_execution_run_id)


async def test_batch_budget_of_a_batch_of_several_leaves(
    orchestrator: Orchestrator, unique: Callable[[str], str]
) -> None:
    # Two leaves of two tasks under a root: the root hears the leaves' usage (their reports
    # carry their running tasks' usage) and ends the batch failed.
    orchestrator.batch_chunk_size = 2
    agent = Agent(name=unique("budget_root"), tools=[noop], model=looping(lambda _: 100))
    orchestrator.register_runner(agent=agent)
    await orchestrator.start_workers()
    owner = unique("budget_owner")
    batch = await orchestrator.enqueue_batch(
        agent=agent,
        owner_id=owner,
        payloads=[{"query": str(i)} for i in range(4)],
        budget=Budget(tokens=1000),
    )
    events = await collect_events(orchestrator, owner, has_event("batch_failed"))

    [ended] = [e for e in events if e["event_type"] == "batch_failed"]
    assert ended["batch_id"] == batch.id
    assert ended["reason"].startswith("BudgetExceeded: used ")
    assert ended["outcomes"]["completed"] == 0
    assert ended["outcomes"]["failed"] + ended["outcomes"]["cancelled"] == 4
    assert ended["usage"]["total_tokens"] >= 1000
    found = await orchestrator.get_batch(batch.id)
    assert (found.metadata.status, found.metadata.reason) == ("failed", ended["reason"])
    client = await orchestrator.client()
    for workflow_id in (batch.id, f"{batch.id}-part0"):
        await replay(await client.get_workflow_handle(workflow_id).fetch_history())


async def test_a_budget_reaches_sub_agents_of_sub_agents(
    orchestrator: Orchestrator, unique: Callable[[str], str]
) -> None:
    # top (budget 1,000) forks one mid, which forks two leaves that never finish. The mid's
    # batch gets what top has left, the mid task the same, and the leaves' batch what the mid
    # has left: the grandchildren's batch stops itself and cancels them.
    leaf = Agent(name=unique("budget_leaf"), tools=[noop], model=looping(lambda _: 100))
    leaves: list[str] = []

    @forking_tool(timeout=600)
    async def fork_leaves(execution_ctx: ExecutionContext) -> list[str]:
        """Two leaves."""
        batch = await execution_ctx.spawn_child_tasks(leaf, [AgentContext(query="l")] * 2)
        leaves.extend(batch.task_ids)
        return batch.task_ids

    mid = Agent(
        name=unique("budget_mid"),
        tools=[fork_leaves],
        model=ScriptedModel(
            lambda request: Reply(
                tool_calls=[{"name": "fork_leaves"}], usage=TokenUsage(prompt_tokens=50)
            )
        ),
    )

    @forking_tool(timeout=600)
    async def fork_mid(execution_ctx: ExecutionContext) -> list[str]:
        """One mid."""
        batch = await execution_ctx.spawn_child_tasks(mid, [AgentContext(query="m")])
        return batch.task_ids

    top = Agent(
        name=unique("budget_top"),
        tools=[fork_mid],
        model=ScriptedModel(
            [Reply(tool_calls=[{"name": "fork_mid"}], usage=TokenUsage(prompt_tokens=100))]
        ),
        budget=Budget(tokens=1000),
    )
    for agent in (top, mid, leaf):
        orchestrator.register_runner(agent=agent)
    await orchestrator.start_workers()
    owner = unique("budget_owner")
    task = await orchestrator.enqueue_task(agent=top, owner_id=owner, payload={})
    with pytest.raises(BudgetExceeded):
        await task.result()

    data = await orchestrator.get_task_data(task.id)
    assert data is not None
    assert data["usage"]["total_tokens"] >= 1000  # the grandchildren's tokens count
    assert len(leaves) == 2
    for leaf_id in leaves:
        leaf_data = await orchestrator.get_task_data(leaf_id)
        assert leaf_data is not None and leaf_data["status"] in ("cancelled", "failed")
    statuses = {(await orchestrator.get_task_data(t) or {})["status"] for t in leaves}
    assert "cancelled" in statuses


async def test_cost_budget_stops_a_priced_task(
    orchestrator: Orchestrator, unique: Callable[[str], str]
) -> None:
    # 1,000 per million prompt tokens: each 100-token turn costs 0.1.
    model = looping(lambda _: 100).with_prices(prompt=1000.0, completion=0.0)
    agent = Agent(name=unique("budget_cost"), tools=[noop], model=model, budget=Budget(cost=0.25))
    orchestrator.register_runner(agent=agent)
    await orchestrator.start_workers()
    task = await orchestrator.enqueue_task(
        agent=agent, owner_id=unique("budget_owner"), payload={"query": "go"}
    )
    with pytest.raises(BudgetExceeded) as raised:
        await task.result()
    assert raised.value.error == "BudgetExceeded: spent 0.3 of a budget of 0.25"
    data = await orchestrator.get_task_data(task.id)
    assert data is not None
    assert (data["turn"], data["usage"]["cost"]) == (3, pytest.approx(0.3))
