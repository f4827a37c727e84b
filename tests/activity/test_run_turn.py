"""The ``run_turn`` activity alone, in ``temporalio.testing.ActivityEnvironment``.

Between the unit tier (agents, tools, models without Temporal) and the real-server tier
(whole tasks on a dev server): one turn with the scripted model, no workflow around it. Its
events still go to the owner's real stream, through the session dev server's client.
"""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from temporalio.client import Client
from temporalio.exceptions import ApplicationError, CancelledError
from temporalio.testing import ActivityEnvironment

from factorial import Agent, Orchestrator, TokenUsage
from factorial._wire import FailureType, TurnInput, TurnOutput
from factorial.activities.turn import AgentActivities
from factorial.devserver import DevServer
from factorial.models import ModelClients
from factorial.testing import Fail, Garbage, Reply, ScriptedModel, call_tool, reply


def add(a: int, b: int) -> int:
    """Add two numbers.

    Args:
        a: The first number.
        b: The second number.
    """
    return a + b


@pytest.fixture
async def orchestrator(temporal_server: DevServer) -> AsyncIterator[Orchestrator]:
    """Connected to the session server, with the workers of the owners' event streams only:
    the turn activity runs in the test, not in a worker."""
    orchestrator = Orchestrator(temporal_address=temporal_server.address)
    try:
        await orchestrator.start_workers()
        yield orchestrator
    finally:
        await orchestrator.close()


def _environment(client: Client, attempt: int = 1) -> ActivityEnvironment:
    env = ActivityEnvironment(client=client)
    env.info = dataclasses.replace(env.info, attempt=attempt, activity_type="run_turn")
    return env


def _input(agent: Agent, owner: str, context: dict[str, Any] | None = None) -> TurnInput:
    payload = context or {"query": "What is 2 + 3?"}
    return TurnInput(
        task_id=f"task-{owner}", owner_id=owner, agent_name=agent.name, context=payload
    )


async def _turn(
    orchestrator: Orchestrator, agent: Agent, owner: str, attempt: int = 1
) -> TurnOutput:
    activities = AgentActivities({agent.name: agent}, ModelClients())
    env = _environment(await orchestrator.client(), attempt)
    output: TurnOutput = await env.run(activities.run_turn, _input(agent, owner))
    return output


async def _events(orchestrator: Orchestrator, owner: str, count: int) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []

    async def read() -> None:
        async for event in orchestrator.subscribe_to_updates(owner, from_offset=0):
            events.append(event)
            if len(events) == count:
                return

    await asyncio.wait_for(read(), 30)
    return events


async def test_a_turn_calls_the_model_runs_the_tool_and_publishes_its_events(
    orchestrator: Orchestrator,
) -> None:
    owner = f"owner-{uuid.uuid4().hex[:8]}"
    agent = Agent(name="adder", tools=[add], model=ScriptedModel([call_tool("add", a=2, b=3)]))
    out = await _turn(orchestrator, agent, owner)
    assert not out.done and out.failure is None
    assert out.context["turn"] == 1
    roles = [m["role"] for m in out.context["messages"]]
    assert roles == ["user", "assistant", "tool"]
    assert out.context["messages"][-1]["content"] == "5"
    kinds = [e["event_type"] for e in await _events(orchestrator, owner, 7)]
    assert kinds == [
        "run_started",  # the first turn starts the run
        "progress_update_run_turn_started",
        "progress_update_completion_started",
        "progress_update_completion_completed",
        "progress_update_tool_action_started",
        "progress_update_tool_action_completed",
        "progress_update_run_turn_completed",
    ]


async def test_a_final_reply_ends_the_run(orchestrator: Orchestrator) -> None:
    model = ScriptedModel(
        [Reply(content="five", usage={"prompt_tokens": 8, "completion_tokens": 1})]
    )
    agent = Agent(name="answerer", model=model.with_prices(prompt=1.0, completion=2.0))
    out = await _turn(orchestrator, agent, f"owner-{uuid.uuid4().hex[:8]}")
    assert out.done and out.output == "five"
    # The turn's tokens, priced, go back to the workflow, which sums them.
    assert out.usage == TokenUsage(prompt_tokens=8, completion_tokens=1, cost=10 / 1_000_000)


async def test_a_rate_limited_model_is_a_retryable_model_http_error(
    orchestrator: Orchestrator,
) -> None:
    agent = Agent(
        name="limited", model=ScriptedModel([Fail(status_code=429, retry_after=7, times=1)])
    )
    with pytest.raises(ApplicationError) as failed:
        await _turn(orchestrator, agent, f"owner-{uuid.uuid4().hex[:8]}")
    err = failed.value
    assert err.type == FailureType.MODEL_HTTP and not err.non_retryable
    assert err.next_retry_delay is not None and err.next_retry_delay.total_seconds() == 7
    # The second attempt gets past the scripted failure.
    out = await _turn(orchestrator, agent, f"owner-{uuid.uuid4().hex[:8]}", attempt=2)
    assert out.done and out.output == "ok"


async def test_a_client_error_of_the_model_is_not_retried(orchestrator: Orchestrator) -> None:
    agent = Agent(name="refused", model=ScriptedModel([Fail(status_code=400)]))
    with pytest.raises(ApplicationError) as failed:
        await _turn(orchestrator, agent, f"owner-{uuid.uuid4().hex[:8]}")
    assert failed.value.type == FailureType.MODEL_HTTP and failed.value.non_retryable


async def test_garbage_from_the_model_is_a_retryable_behavior_error(
    orchestrator: Orchestrator,
) -> None:
    agent = Agent(name="garbled", model=ScriptedModel([Garbage(times=1)]))
    with pytest.raises(ApplicationError) as failed:
        await _turn(orchestrator, agent, f"owner-{uuid.uuid4().hex[:8]}")
    assert failed.value.type == "ModelBehaviorError" and not failed.value.non_retryable


async def test_an_agent_this_worker_does_not_have_is_not_retried(
    orchestrator: Orchestrator,
) -> None:
    known = Agent(name="known", model=ScriptedModel([reply("hi")]))
    activities = AgentActivities({known.name: known}, ModelClients())
    env = _environment(await orchestrator.client())
    stranger = Agent(name="stranger", model=ScriptedModel([reply("hi")]))
    with pytest.raises(ApplicationError) as failed:
        await env.run(activities.run_turn, _input(stranger, "owner-x"))
    assert failed.value.type == FailureType.AGENT_NOT_REGISTERED and failed.value.non_retryable


async def test_a_cancelled_turn_stops_its_model_call(orchestrator: Orchestrator) -> None:
    agent = Agent(name="slow", model=ScriptedModel([reply("late", delay=60)]))
    activities = AgentActivities({agent.name: agent}, ModelClients())
    env = _environment(await orchestrator.client())
    turn = asyncio.create_task(
        env.run(activities.run_turn, _input(agent, f"owner-{uuid.uuid4().hex[:8]}"))
    )
    await asyncio.sleep(1.0)
    env.cancel()
    with pytest.raises((asyncio.CancelledError, CancelledError)):
        await asyncio.wait_for(turn, 10)
