"""Turn-level behaviour on a real server: retries, failures, structured output, hooks."""

from __future__ import annotations

import asyncio
import time

import pytest
from pydantic import BaseModel

from factorial import (
    Agent,
    AgentContext,
    AgentWorkerConfig,
    Orchestrator,
    TaskFailedError,
    TaskStatus,
)
from factorial.testing import Fail, Garbage, ScriptedModel, call_tool, reply
from tests.conftest import BOTH_TURN_MODES, collect_events, has_event

pytestmark = BOTH_TURN_MODES

FAST_RETRY = AgentWorkerConfig(initial_backoff=0.1, max_backoff=0.2, heartbeat_timeout=5)


async def test_model_failing_twice_then_answering_is_retried(
    orchestrator: Orchestrator, unique
) -> None:
    agent = Agent(
        name=unique("flaky"),
        model=ScriptedModel([Fail(status_code=503, times=2, then=reply("recovered"))]),
    )
    orchestrator.register_runner(agent=agent, agent_worker_config=FAST_RETRY)
    await orchestrator.start_workers()
    owner = unique("owner")

    task = await orchestrator.enqueue_task(agent=agent, owner_id=owner, payload={"query": "hi"})

    assert await task.result() == "recovered"
    events = await collect_events(orchestrator, owner, has_event("run_completed"))
    failed = [e for e in events if e["event_type"] == "task_failed"]
    retried = [e for e in events if e["event_type"] == "task_retried"]
    assert [e["attempt"] for e in failed] == [1, 2]
    assert all(e["will_retry"] for e in failed)
    assert "503" in failed[0]["error"]
    assert [e["attempt"] for e in retried] == [2, 3]
    assert sum(e["event_type"] == "progress_update_completion_failed" for e in events) == 2
    data = await orchestrator.get_task_data(task.id)
    assert data is not None and data["context"]["attempt"] == 3


async def test_garbage_from_the_model_is_retried(orchestrator: Orchestrator, unique) -> None:
    agent = Agent(name=unique("garbled"), model=ScriptedModel([Garbage(times=1)]))
    orchestrator.register_runner(agent=agent, agent_worker_config=FAST_RETRY)
    await orchestrator.start_workers()

    task = await orchestrator.enqueue_task(agent=agent, owner_id=unique("o"), payload={})

    assert await task.result() == "ok"


async def test_non_retryable_error_fails_fast(orchestrator: Orchestrator, unique) -> None:
    agent = Agent(
        name=unique("denied"),
        model=ScriptedModel([Fail(status_code=401, times=100, message="bad key")]),
    )
    config = AgentWorkerConfig(initial_backoff=30, max_retries=5)  # a retry would time out
    orchestrator.register_runner(agent=agent, agent_worker_config=config)
    await orchestrator.start_workers()
    owner = unique("owner")
    started = time.monotonic()

    task = await orchestrator.enqueue_task(agent=agent, owner_id=owner, payload={"query": "x"})

    with pytest.raises(TaskFailedError) as info:
        await task.result()
    assert time.monotonic() - started < 20
    assert "bad key" in str(info.value)
    assert await orchestrator.get_task_status(task.id) == TaskStatus.FAILED
    events = await collect_events(orchestrator, owner, has_event("run_failed"))
    assert sum(e["event_type"] == "run_failed" for e in events) == 1
    failed = [e for e in events if e["event_type"] == "task_failed"]
    assert len(failed) == 1 and failed[0]["will_retry"] is False
    assert "task_retried" not in {e["event_type"] for e in events}
    data = await orchestrator.get_task_data(task.id)
    assert data is not None
    assert data["status"] == "failed"
    assert "bad key" in data["error"]


async def test_retries_exhausted_fail_the_task(orchestrator: Orchestrator, unique) -> None:
    agent = Agent(name=unique("down"), model=ScriptedModel([Fail(status_code=500, times=100)]))
    config = AgentWorkerConfig(initial_backoff=0.1, max_backoff=0.1, max_retries=2)
    orchestrator.register_runner(agent=agent, agent_worker_config=config)
    await orchestrator.start_workers()
    owner = unique("owner")

    task = await orchestrator.enqueue_task(agent=agent, owner_id=owner, payload={})

    with pytest.raises(TaskFailedError):
        await task.result()
    events = await collect_events(orchestrator, owner, has_event("run_failed"))
    assert [e["attempt"] for e in events if e["event_type"] == "task_failed"] == [1, 2, 3]


class Answer(BaseModel):
    city: str
    temperature_c: float


def get_weather(city: str) -> str:
    """Look up the weather."""
    return f"{city}: 21.5C"


async def test_structured_output(orchestrator: Orchestrator, unique) -> None:
    agent = Agent(
        name=unique("structured"),
        tools=[get_weather],
        output_type=Answer,
        model=ScriptedModel(
            [
                call_tool("get_weather", city="Lisbon"),
                call_tool("final_output", city="Lisbon", temperature_c="not a number"),
                call_tool("final_output", city="Lisbon", temperature_c=21.5),
            ]
        ),
    )
    orchestrator.register_runner(agent=agent)
    await orchestrator.start_workers()

    task = await orchestrator.enqueue_task(agent=agent, owner_id=unique("o"), payload={})

    assert await task.result() == {"city": "Lisbon", "temperature_c": 21.5}
    data = await orchestrator.get_task_data(task.id)
    assert data is not None
    tool_messages = [m for m in data["context"]["messages"] if m["role"] == "tool"]
    assert "does not validate" in tool_messages[1]["content"]
    schema_names = [t["function"]["name"] for t in agent.tool_schemas(AgentContext())]
    assert schema_names == ["get_weather", "final_output"]


async def test_max_turns_fails_the_task(orchestrator: Orchestrator, unique) -> None:
    agent = Agent(
        name=unique("looper"),
        tools=[get_weather],
        max_turns=2,
        model=ScriptedModel(lambda request: call_tool("get_weather", city="Paris")),
    )
    orchestrator.register_runner(agent=agent)
    await orchestrator.start_workers()

    task = await orchestrator.enqueue_task(agent=agent, owner_id=unique("o"), payload={})

    with pytest.raises(TaskFailedError, match="max_turns=2"):
        await task.result()
    data = await orchestrator.get_task_data(task.id)
    assert data is not None and data["turn"] == 2


async def test_tools_raising_and_parallel_calls(orchestrator: Orchestrator, unique) -> None:
    running = 0
    peak = 0

    async def slow_lookup(key: str) -> str:
        """Look something up slowly."""
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        await asyncio.sleep(0.3)
        running -= 1
        return key.upper()

    def broken(x: int) -> int:
        """Always fails."""
        raise RuntimeError("disk on fire")

    from factorial.testing import Call, Reply

    agent = Agent(
        name=unique("parallel"),
        tools=[slow_lookup, broken],
        model=ScriptedModel(
            [
                Reply(
                    tool_calls=[
                        Call(name="slow_lookup", arguments={"key": "a"}),
                        Call(name="slow_lookup", arguments={"key": "b"}),
                        Call(name="broken", arguments={"x": 1}),
                        Call(name="nope", arguments={}),
                    ]
                ),
                reply("done"),
            ]
        ),
    )
    orchestrator.register_runner(agent=agent)
    await orchestrator.start_workers()
    owner = unique("owner")

    task = await orchestrator.enqueue_task(agent=agent, owner_id=owner, payload={})

    assert await task.result() == "done"
    assert peak == 2
    data = await orchestrator.get_task_data(task.id)
    assert data is not None
    contents = [m["content"] for m in data["context"]["messages"] if m["role"] == "tool"]
    assert contents[:2] == ["A", "B"]
    assert "RuntimeError: disk on fire" in contents[2]
    assert "unknown tool 'nope'" in contents[3]
    events = await collect_events(orchestrator, owner, has_event("run_completed"))
    assert sum(e["event_type"] == "progress_update_tool_action_failed" for e in events) == 2


async def test_lifecycle_hooks_run(orchestrator: Orchestrator, unique) -> None:
    calls: list[tuple[str, int]] = []

    def record(name: str):
        def hook(ctx: AgentContext, execution_ctx, *rest) -> None:
            calls.append((name, ctx.turn))

        return hook

    async def on_run_end(ctx: AgentContext, execution_ctx, completion) -> None:
        calls.append((f"on_run_end:{completion.status}:{completion.output}", ctx.turn))

    agent = Agent(
        name=unique("hooked"),
        tools=[get_weather],
        model=ScriptedModel([call_tool("get_weather", city="Oslo"), reply("cold")]),
        on_run_start=record("on_run_start"),
        on_turn_start=record("on_turn_start"),
        on_turn_end=record("on_turn_end"),
        on_run_end=on_run_end,
    )
    orchestrator.register_runner(agent=agent)
    await orchestrator.start_workers()

    task = await orchestrator.enqueue_task(agent=agent, owner_id=unique("o"), payload={})
    await task.result()

    assert calls == [
        ("on_run_start", 0),
        ("on_turn_start", 0),
        ("on_turn_end", 1),
        ("on_turn_start", 1),
        ("on_turn_end", 2),
        ("on_run_end:completed:cold", 2),
    ]


async def test_long_conversations_continue_as_new(orchestrator: Orchestrator, unique) -> None:
    agent = Agent(
        name=unique("chatty"),
        tools=[get_weather],
        model=ScriptedModel(
            lambda request: (
                call_tool("get_weather", city=f"city {request.turn}")
                if request.turn < 8
                else reply("that was a lot of weather")
            )
        ),
    )
    config = AgentWorkerConfig(continue_as_new_bytes=4096)
    orchestrator.register_runner(agent=agent, agent_worker_config=config)
    await orchestrator.start_workers()
    owner = unique("owner")

    task = await orchestrator.enqueue_task(agent=agent, owner_id=owner, payload={"query": "go"})

    assert await task.result() == "that was a lot of weather"
    client = await orchestrator.client()
    latest = await client.get_workflow_handle(task.id).fetch_history()
    started = latest.events[0].workflow_execution_started_event_attributes
    assert started.continued_execution_run_id, "the task should have continued as new"
    data = await orchestrator.get_task_data(task.id)
    assert data is not None and data["turn"] == 9
    assert len([m for m in data["context"]["messages"] if m["role"] == "tool"]) == 8
    events = await collect_events(orchestrator, owner, has_event("run_completed"))
    types = [e["event_type"] for e in events]
    assert types.count("run_started") == 1 and types.count("run_completed") == 1
