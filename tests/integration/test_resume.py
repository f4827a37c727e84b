"""Resuming an ended task on a real Temporal server: a new linked run, the old conversation."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from factorial import (
    Agent,
    AgentNotRegisteredError,
    AgentWorkerConfig,
    InvalidPayloadError,
    Orchestrator,
    TaskFailedError,
    TaskNotFoundError,
    TaskStateError,
    TaskStatus,
)
from factorial._model_types import ModelRequest
from factorial.testing import Fail, Reply, ScriptedModel, call_tool
from tests.conftest import BOTH_TURN_MODES, collect_events

pytestmark = BOTH_TURN_MODES


def lookup(city: str) -> str:
    """Look a city up."""
    return f"{city} is sunny"


def ended(task_id: str) -> Any:
    """``until`` predicate: ``task_id`` has announced its end."""
    ends = ("run_completed", "run_failed")
    return lambda events: any(e["event_type"] in ends and e["task_id"] == task_id for e in events)


def conversation(messages: list[dict[str, Any]]) -> list[tuple[str, Any]]:
    """The (role, content) pairs of a request's messages, without the system prompt."""
    return [(m["role"], m.get("content")) for m in messages if m["role"] != "system"]


async def test_resume_a_completed_task_without_a_worker_for_it(
    orchestrator: Orchestrator, unique: Any
) -> None:
    requests: list[ModelRequest] = []

    def answer(request: ModelRequest) -> Reply:
        requests.append(request)
        return Reply(content=f"answer to {request.messages[-1]['content']}")

    agent = Agent(name=unique("resumed"), instructions="Answer.", model=ScriptedModel(answer))
    orchestrator.register_runner(agent=agent)
    await orchestrator.start_workers()
    owner = unique("owner")
    first = await orchestrator.enqueue_task(agent, owner_id=owner, payload={"query": "hi"})
    assert await first.result() == "answer to hi"
    await orchestrator.stop_workers()

    # No worker runs: the old conversation is read from the ended run's history.
    second = await orchestrator.resume_task(first.id, [{"role": "user", "content": "and then?"}])
    assert second.id != first.id and second.id.startswith(f"{first.id}.resumed.")
    assert second.metadata.resumed_from == first.id and second.metadata.owner_id == owner
    await orchestrator.start_workers()
    assert await second.result() == "answer to and then?"
    assert conversation(requests[-1].messages) == [
        ("user", "hi"),
        ("assistant", "answer to hi"),
        ("user", "and then?"),
    ]
    assert requests[-1].task_id == second.id and requests[-1].turn == 0

    events = await collect_events(orchestrator, owner, ended(second.id))
    events = [e for e in events if e.get("task_id") == second.id]
    types = [e["event_type"] for e in events]
    assert types[0] == "run_started" and types[-2:] == ["agent_output", "run_completed"]
    assert all(e["owner_id"] == owner and e["agent_name"] == agent.name for e in events)
    data = await orchestrator.get_task_data(second.id)
    assert data is not None and data["resumed_from"] == first.id and data["turn"] == 1

    # A resumed task resumes too; the id stays derived from the first one.
    third = await second.resume([{"role": "user", "content": "last"}])
    assert third.id.startswith(f"{first.id}.resumed.") and third.id.count(".resumed.") == 1
    assert await third.result() == "answer to last"
    assert [c for r, c in conversation(requests[-1].messages) if r == "user"] == [
        "hi",
        "and then?",
        "last",
    ]
    assert (await orchestrator.get_task_data(first.id) or {})["resumed_from"] is None


async def test_resume_a_failed_task(orchestrator: Orchestrator, unique: Any) -> None:
    requests: list[ModelRequest] = []

    def answer(request: ModelRequest) -> Reply | Fail:
        requests.append(request)
        if request.messages[-1]["content"] == "try again":
            return Reply(content="fine now")
        if request.turn == 0:
            return call_tool("lookup", city="Oslo")
        return Fail(status_code=400, times=99, message="bad request")

    agent = Agent(
        name=unique("failing"),
        instructions="Answer.",
        tools=[lookup],
        model=ScriptedModel(answer),
    )
    orchestrator.register_runner(agent=agent)
    await orchestrator.start_workers()
    owner = unique("owner")
    first = await orchestrator.enqueue_task(agent, owner_id=owner, payload={"query": "weather?"})
    failed = await collect_events(orchestrator, owner, ended(first.id))
    failed = [e for e in failed if e.get("task_id") == first.id]
    assert failed[-1]["event_type"] == "run_failed"

    second = await orchestrator.resume_task(first.id, [{"role": "user", "content": "try again"}])
    assert await second.result() == "fine now"
    # The conversation up to the failed turn: the query, the tool call and its result.
    assert conversation(requests[-1].messages) == [
        ("user", "weather?"),
        ("assistant", None),
        ("tool", "Oslo is sunny"),
        ("user", "try again"),
    ]
    events = await collect_events(orchestrator, owner, ended(second.id))
    events = [e for e in events if e.get("task_id") == second.id]
    assert [e["event_type"] for e in events][:: len(events) - 1] == ["run_started", "run_completed"]


async def test_resume_refuses_running_cancelled_unknown_and_bad_input(
    orchestrator: Orchestrator, unique: Any, temporal_server: Any
) -> None:
    release = asyncio.Event()

    async def answer(request: ModelRequest) -> Reply:
        await release.wait()
        return Reply(content="done")

    agent = Agent(name=unique("slow"), instructions="Answer.", model=ScriptedModel(answer))
    orchestrator.register_runner(agent=agent)
    await orchestrator.start_workers()
    owner = unique("owner")
    running = await orchestrator.enqueue_task(agent, owner_id=owner, payload={"query": "q"})
    cancelled = await orchestrator.enqueue_task(agent, owner_id=owner, payload={"query": "q"})
    more = [{"role": "user", "content": "more"}]

    with pytest.raises(TaskStateError, match="still running"):
        await orchestrator.resume_task(running.id, more)
    with pytest.raises(InvalidPayloadError, match="role"):
        await orchestrator.resume_task(running.id, [{"content": "no role"}])
    with pytest.raises(InvalidPayloadError):
        await orchestrator.resume_task(running.id, [])
    with pytest.raises(TaskNotFoundError):
        await orchestrator.resume_task(unique("task-missing"), more)

    await orchestrator.cancel_task(cancelled.id)
    await collect_events(orchestrator, owner, lambda ev: ev[-1]["event_type"] == "run_cancelled")
    with pytest.raises(TaskStateError, match="ended canceled"):
        await orchestrator.resume_task(cancelled.id, more)
    release.set()
    assert await running.result() == "done"

    # An orchestrator that does not know the task's agent cannot start its next run.
    stranger = Orchestrator(temporal_address=temporal_server.address)
    try:
        with pytest.raises(AgentNotRegisteredError, match=agent.name):
            await stranger.resume_task(running.id, more)
    finally:
        await stranger.close()


async def test_idempotent_and_resumed_across_continue_as_new(
    orchestrator: Orchestrator, unique: Any
) -> None:
    requests: list[ModelRequest] = []

    def answer(request: ModelRequest) -> Reply | Fail:
        requests.append(request)
        if request.messages[-1]["content"] == "go on":
            return Reply(content="went on")
        if request.turn < 8:
            return call_tool("lookup", city=f"city {request.turn}")
        return Fail(status_code=400, times=99, message="bad request")

    agent = Agent(name=unique("chatty"), tools=[lookup], model=ScriptedModel(answer))
    config = AgentWorkerConfig(continue_as_new_bytes=4096)
    orchestrator.register_runner(agent=agent, agent_worker_config=config)
    await orchestrator.start_workers()
    owner = unique("owner")

    def enqueue() -> Any:
        return orchestrator.enqueue_task(
            agent, owner_id=owner, payload={"query": "go"}, idempotency_key="long"
        )

    task = await enqueue()
    with pytest.raises(TaskFailedError):
        await task.result()
    client = await orchestrator.client()
    latest = await client.get_workflow_handle(task.id).fetch_history()
    started = latest.events[0].workflow_execution_started_event_attributes
    assert started.continued_execution_run_id, "the task should have continued as new"

    again = await enqueue()  # its memo (the key's record) went on with it
    assert again.id == task.id and again.status == TaskStatus.FAILED
    assert again.metadata.created_at == task.metadata.created_at
    assert len(requests) == 9

    resumed = await orchestrator.resume_task(task.id, [{"role": "user", "content": "go on"}])
    assert await resumed.result() == "went on"
    said = conversation(requests[-1].messages)
    assert [c for r, c in said if r == "tool"] == [f"city {i} is sunny" for i in range(8)]
    assert said[0] == ("user", "go") and said[-1] == ("user", "go on")
