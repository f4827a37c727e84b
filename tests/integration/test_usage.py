"""Token usage: per turn in the turn's events, per task with its sub-agents, per batch, cost."""

from __future__ import annotations

import pytest

from factorial import (
    Agent,
    AgentContext,
    ExecutionContext,
    Orchestrator,
    TokenUsage,
    forking_tool,
)
from factorial.models import ModelRequest
from factorial.testing import Fail, Reply, ScriptedModel
from tests.conftest import collect_events, has_event


def used(prompt: int, completion: int) -> TokenUsage:
    return TokenUsage(prompt_tokens=prompt, completion_tokens=completion)


def noop() -> str:
    """Do nothing."""
    return "ok"


async def test_turn_events_and_task_data_carry_tokens_and_cost(
    orchestrator: Orchestrator, unique
) -> None:
    # 2 per million prompt tokens, 10 per million completion tokens.
    model = ScriptedModel(
        [
            Reply(tool_calls=[{"name": "noop"}], usage=used(1000, 100)),
            Reply(content="done", usage={"prompt_tokens": 3000, "completion_tokens": 200}),
        ]
    ).with_prices(prompt=2.0, completion=10.0)
    agent = Agent(name=unique("usage_priced"), tools=[noop], model=model)
    orchestrator.register_runner(agent=agent)
    await orchestrator.start_workers()
    owner = unique("usage_owner")
    task = await orchestrator.enqueue_task(agent=agent, owner_id=owner, payload={"query": "go"})
    events = await collect_events(orchestrator, owner, has_event("run_completed"))

    turns = [e for e in events if e["event_type"] == "progress_update_run_turn_completed"]
    assert [e["data"]["usage"] for e in turns] == [
        {"prompt_tokens": 1000, "completion_tokens": 100, "total_tokens": 1100, "cost": 0.003},
        {"prompt_tokens": 3000, "completion_tokens": 200, "total_tokens": 3200, "cost": 0.008},
    ]
    calls = [e for e in events if e["event_type"] == "progress_update_completion_completed"]
    assert [e["data"]["usage"]["prompt_tokens"] for e in calls] == [1000, 3000]
    [ended] = [e for e in events if e["event_type"] == "run_completed"]
    assert ended["usage"]["total_tokens"] == 4300
    assert ended["usage"]["cost"] == pytest.approx(0.011)

    data = await orchestrator.get_task_data(task.id)
    assert data is not None
    usage = TokenUsage.model_validate(data["usage"])
    assert (usage.prompt_tokens, usage.completion_tokens, usage.total_tokens) == (4000, 300, 4300)
    assert usage.cost == pytest.approx(0.011)


def _query(request: ModelRequest) -> str:
    return str(next(m for m in request.messages if m["role"] == "user")["content"])


async def test_task_usage_includes_sub_agents_at_any_depth(
    orchestrator: Orchestrator, unique
) -> None:
    # top forks one "mid" task, which forks two "leaf" tasks; every model call is priced
    # and counted: top 2 calls, mid 2 calls, each leaf 1 call.
    leaf = Agent(
        name=unique("usage_leaf"),
        model=ScriptedModel([Reply(content="leaf done", usage=used(5, 1))]),
    )

    @forking_tool(timeout=600)
    async def spawn_leaves(execution_ctx: ExecutionContext) -> list[str]:
        """Two leaf tasks."""
        batch = await execution_ctx.spawn_child_tasks(leaf, [AgentContext(query="l")] * 2)
        return batch.task_ids

    mid = Agent(
        name=unique("usage_mid"),
        tools=[spawn_leaves],
        model=ScriptedModel(
            [
                Reply(tool_calls=[{"name": "spawn_leaves"}], usage=used(50, 10)),
                Reply(content="mid done", usage=used(60, 10)),
            ]
        ),
    )

    @forking_tool(timeout=600)
    async def spawn_mid(execution_ctx: ExecutionContext) -> list[str]:
        """One mid task."""
        batch = await execution_ctx.spawn_child_tasks(mid, [AgentContext(query="m")])
        return batch.task_ids

    top = Agent(
        name=unique("usage_top"),
        tools=[spawn_mid],
        model=ScriptedModel(
            [
                Reply(tool_calls=[{"name": "spawn_mid"}], usage=used(500, 100)),
                Reply(content="top done", usage=used(600, 100)),
            ]
        ),
    )
    for agent in (top, mid, leaf):
        orchestrator.register_runner(agent=agent)
    await orchestrator.start_workers()
    task = await orchestrator.enqueue_task(agent=top, owner_id=unique("usage_owner"), payload={})
    assert await task.result() == "top done"

    data = await orchestrator.get_task_data(task.id)
    assert data is not None
    assert data["usage"]["prompt_tokens"] == 500 + 600 + 50 + 60 + 2 * 5
    assert data["usage"]["completion_tokens"] == 100 + 100 + 10 + 10 + 2 * 1
    assert data["usage"]["cost"] is None  # no model has prices


def _by_query(request: ModelRequest) -> Reply | Fail:
    """ "ok": one turn; "bad": a turn, then an error that is not retried."""
    if _query(request) == "ok":
        return Reply(content="fine", usage=used(10, 2))
    if request.turn == 0:
        return Reply(tool_calls=[{"name": "noop"}], usage=used(7, 1))
    return Fail(status_code=400, times=99, message="bad request")


async def test_batch_totals_count_failed_tasks_and_come_with_batch_events(
    orchestrator: Orchestrator, unique
) -> None:
    model = ScriptedModel(_by_query).with_prices(prompt=1.0, completion=1.0)
    agent = Agent(name=unique("usage_batch"), tools=[noop], model=model)
    orchestrator.register_runner(agent=agent)
    await orchestrator.start_workers()
    owner = unique("usage_owner")
    payloads = [{"query": "ok"}, {"query": "bad"}, {"query": "ok"}]
    batch = await orchestrator.enqueue_batch(agent=agent, owner_id=owner, payloads=payloads)
    events = await collect_events(orchestrator, owner, has_event("batch_completed"))

    [done] = [e for e in events if e["event_type"] == "batch_completed"]
    assert done["outcomes"] == {"completed": 2, "failed": 1, "cancelled": 0}
    assert done["usage"]["prompt_tokens"] == 10 + 7 + 10
    assert done["usage"]["completion_tokens"] == 2 + 1 + 2
    assert done["usage"]["cost"] == pytest.approx(32 / 1_000_000)
    [failed] = [e for e in events if e["event_type"] == "run_failed"]
    assert failed["usage"]["prompt_tokens"] == 7
    progress = [e for e in events if e["event_type"] == "batch_progress"]
    assert all("outcomes" in e and "usage" in e for e in progress)

    found = await orchestrator.get_batch(batch.id)
    meta = found.metadata
    assert (meta.completed, meta.failed, meta.cancelled) == (2, 1, 0)
    assert (meta.usage.prompt_tokens, meta.usage.completion_tokens) == (27, 5)
    assert meta.usage.cost == pytest.approx(32 / 1_000_000)
