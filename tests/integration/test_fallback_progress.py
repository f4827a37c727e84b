"""Fallback models, ``task_pending_child_task_results`` and ``@publish_progress`` on a server.

A retried turn moves to the next model of ``fallback_models`` and its events say which; a
task that parks on its sub-agents announces their ids once; ``@publish_progress`` on a
tool and on an agent method publishes its three events through the turn's stream. Each
test runs in both turn modes.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from temporalio.api.enums.v1 import EventType

from factorial import (
    Agent,
    AgentContext,
    AgentWorkerConfig,
    ExecutionContext,
    Orchestrator,
    fallback_models,
    forking_tool,
    publish_progress,
)
from factorial.errors import ModelHTTPError
from factorial.models import ModelRequest, ModelResponse, TokenUsage
from factorial.testing import Fail, Reply, ScriptedModel, call_tool, reply
from factorial.workflows._children import PENDING_CHILDREN_EVENT_PATCH
from tests.conftest import BOTH_TURN_MODES, collect_events, has_event
from tests.integration.test_replay import replay

pytestmark = BOTH_TURN_MODES

QUICK = AgentWorkerConfig(initial_backoff=0.1, max_backoff=0.2, heartbeat_timeout=5)
USAGE = TokenUsage(prompt_tokens=1000, completion_tokens=100)


def of_type(events: list[dict[str, Any]], event_type: str) -> list[dict[str, Any]]:
    return [e for e in events if e["event_type"] == event_type]


async def test_a_retried_turn_moves_to_the_secondary_model(
    orchestrator: Orchestrator, unique: Callable[[str], str]
) -> None:
    primary = ScriptedModel([Fail(status_code=503, times=1)], name="primary").with_prices(
        prompt=100.0, completion=100.0
    )
    secondary = ScriptedModel(
        [Reply(content="from secondary", usage=USAGE)], name="secondary"
    ).with_prices(prompt=2.0, completion=10.0)
    agent = Agent(name=unique("fallback"), model=fallback_models(primary, secondary))
    orchestrator.register_runner(agent=agent, agent_worker_config=QUICK)
    await orchestrator.start_workers()
    owner = unique("owner")
    task = await orchestrator.enqueue_task(agent=agent, owner_id=owner, payload={"query": "hi"})

    assert await asyncio.wait_for(task.result(), 60) == "from secondary"
    events = await collect_events(orchestrator, owner, has_event("run_completed"))
    started = of_type(events, "progress_update_completion_started")
    assert [e["data"]["model"] for e in started] == ["primary", "secondary"]
    [failed] = of_type(events, "progress_update_completion_failed")
    assert failed["error"] == "ModelHTTPError: scripted failure"
    [completed] = of_type(events, "progress_update_completion_completed")
    assert completed["data"]["model"] == "secondary"
    assert completed["data"]["usage"]["cost"] == 0.003  # (1000 * 2 + 100 * 10) / 1M
    assert [e["attempt"] for e in of_type(events, "task_retried")] == [2]
    [done] = of_type(events, "run_completed")
    assert done["usage"]["cost"] == 0.003


@forking_tool(timeout=600)
async def split(parts: list[str], execution_ctx: ExecutionContext) -> list[str]:
    """Hand each part to a sub-agent."""
    batch = await execution_ctx.spawn_child_tasks(
        split_worker, [AgentContext(query=p) for p in parts]
    )
    return batch.task_ids


split_worker = Agent(
    name="fallback_split_worker",
    model=ScriptedModel(lambda request: reply(f"did {request.messages[-1]['content']}")),
)


async def test_a_parked_task_announces_its_child_task_ids(
    orchestrator: Orchestrator, unique: Callable[[str], str]
) -> None:
    def script(request: ModelRequest) -> Reply:
        if request.turn == 0:
            return call_tool("split", parts=["a", "b"])
        return reply("all done")

    parent = Agent(name=unique("splitter"), tools=[split], model=ScriptedModel(script))
    orchestrator.register_runner(agent=parent, agent_worker_config=QUICK)
    orchestrator.register_runner(agent=split_worker, agent_worker_config=QUICK)
    await orchestrator.start_workers()
    owner = unique("owner")
    task = await orchestrator.enqueue_task(agent=parent, owner_id=owner, payload={})

    assert await asyncio.wait_for(task.result(), 60) == "all done"
    events = await collect_events(
        orchestrator,
        owner,
        lambda seen: any(
            e["event_type"] == "run_completed" and e["task_id"] == task.id for e in seen
        ),
    )
    batch_id = f"{task.id}-t0-call00-0"
    [parked] = of_type(events, "task_pending_child_task_results")
    assert parked["task_id"] == task.id
    assert parked["child_task_ids"] == [f"{batch_id}-0", f"{batch_id}-1"]
    assert parked["batch_ids"] == [batch_id]
    children_ended = [e for e in of_type(events, "run_completed") if e["task_id"] != task.id]
    assert sorted(e["task_id"] for e in children_ended) == parked["child_task_ids"]
    # The event is a patched command: its history records the patch and replays.
    history = await (await orchestrator.client()).get_workflow_handle(task.id).fetch_history()
    markers = [
        e.SerializeToString()
        for e in history.events
        if e.event_type == EventType.EVENT_TYPE_MARKER_RECORDED
    ]
    assert any(PENDING_CHILDREN_EVENT_PATCH.encode() in data for data in markers), markers
    await replay(history)


@publish_progress
def lookup(key: str) -> dict[str, str]:
    """Look a key up."""
    if key == "missing":
        raise KeyError(key)
    return {"key": key, "value": key.upper()}


class PlanningAgent(Agent):
    """An agent whose ``completion`` publishes its own progress (and fails once)."""

    @publish_progress(name="plan")
    async def completion(
        self, agent_ctx: AgentContext, messages: list[dict[str, Any]]
    ) -> ModelResponse:
        if agent_ctx.turn == 2 and agent_ctx.attempt == 1:
            raise ModelHTTPError("planner overloaded", status_code=503)
        return await super().completion(agent_ctx, messages)


async def test_publish_progress_on_a_tool_and_an_agent_method(
    orchestrator: Orchestrator, unique: Callable[[str], str]
) -> None:
    agent = PlanningAgent(
        name=unique("planner"),
        tools=[lookup],
        model=ScriptedModel(
            [call_tool("lookup", key="a"), call_tool("lookup", key="missing"), reply("done")]
        ),
    )
    orchestrator.register_runner(agent=agent, agent_worker_config=QUICK)
    await orchestrator.start_workers()
    owner = unique("owner")
    task = await orchestrator.enqueue_task(agent=agent, owner_id=owner, payload={"query": "go"})

    assert await asyncio.wait_for(task.result(), 60) == "done"
    events = await collect_events(orchestrator, owner, has_event("run_completed"))
    custom = [
        e
        for e in events
        if e["event_type"].startswith(("progress_update_lookup_", "progress_update_plan_"))
    ]
    assert [e["event_type"] for e in custom] == [
        "progress_update_plan_started",
        "progress_update_plan_completed",
        "progress_update_lookup_started",
        "progress_update_lookup_completed",
        "progress_update_plan_started",
        "progress_update_plan_completed",
        "progress_update_lookup_started",
        "progress_update_lookup_failed",
        "progress_update_plan_started",
        "progress_update_plan_failed",  # attempt 1 of turn 2
        "progress_update_plan_started",
        "progress_update_plan_completed",
    ]
    assert all(e["task_id"] == task.id for e in custom)
    assert custom[3]["data"] == {"key": "a", "value": "A"}
    assert custom[7]["error"] == "KeyError: 'missing'"
    assert custom[1]["data"]["tool_calls"][0]["name"] == "lookup"  # the ModelResponse, as JSON
    assert custom[9]["error"] == "ModelHTTPError: planner overloaded"
    assert custom[11]["data"]["content"] == "done"
