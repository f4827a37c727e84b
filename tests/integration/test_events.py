"""The owner event stream: isolation, filters, resuming, custom events."""

from __future__ import annotations

import asyncio
from typing import Any

from factorial import Agent, AgentEvent, ExecutionContext, Orchestrator
from factorial.testing import ScriptedModel, call_tool, reply
from tests.conftest import collect_events, has_event


async def report(note: str, execution_ctx: ExecutionContext) -> tuple[str, dict[str, Any]]:
    """Record a note and publish a custom event."""
    assert execution_ctx.events is not None
    await execution_ctx.events.publish_event(
        AgentEvent(
            event_type="note_taken",
            task_id=execution_ctx.task_id,
            owner_id=execution_ctx.owner_id,
            agent_name=execution_ctx.agent_name,
            note=note,
        )
    )
    return "noted", {"note": note, "length": len(note)}


def make_agent(name: str) -> Agent:
    return Agent(
        name=name,
        tools=[report],
        model=ScriptedModel([call_tool("report", note="hello"), reply("done")]),
    )


async def test_owners_never_see_each_others_events(orchestrator: Orchestrator, unique) -> None:
    agent = make_agent(unique("reporter"))
    orchestrator.register_runner(agent=agent)
    await orchestrator.start_workers()
    alice, bob = unique("alice"), unique("bob")
    task_a = await orchestrator.enqueue_task(agent=agent, owner_id=alice, payload={})
    task_b = await orchestrator.enqueue_task(agent=agent, owner_id=bob, payload={})
    await asyncio.gather(task_a.result(), task_b.result())

    events_a, events_b = await asyncio.gather(
        collect_events(orchestrator, alice, has_event("run_completed")),
        collect_events(orchestrator, bob, has_event("run_completed")),
    )

    assert {e["owner_id"] for e in events_a} == {alice}
    assert {e["task_id"] for e in events_a} == {task_a.id}
    assert {e["owner_id"] for e in events_b} == {bob}
    custom = [e for e in events_a if e["event_type"] == "note_taken"]
    assert [e["note"] for e in custom] == ["hello"]
    tool_done = next(
        e for e in events_a if e["event_type"] == "progress_update_tool_action_completed"
    )
    assert tool_done["data"]["result"] == {"note": "hello", "length": 5}


async def test_filters_and_resume_from_offset(orchestrator: Orchestrator, unique) -> None:
    agent = make_agent(unique("reporter"))
    orchestrator.register_runner(agent=agent)
    await orchestrator.start_workers()
    owner = unique("owner")
    first = await orchestrator.enqueue_task(agent=agent, owner_id=owner, payload={})
    second = await orchestrator.enqueue_task(agent=agent, owner_id=owner, payload={})
    await asyncio.gather(first.result(), second.result())

    everything = await collect_events(orchestrator, owner, has_event("run_completed", 2))
    offsets = [e["offset"] for e in everything]
    assert offsets == sorted(offsets) and len(set(offsets)) == len(offsets)

    only_second = await collect_events(
        orchestrator, owner, has_event("run_completed"), task_ids=[second.id]
    )
    assert {e["task_id"] for e in only_second} == {second.id}

    terminal = await collect_events(
        orchestrator,
        owner,
        has_event("run_completed", 2),
        event_types=["run_started", "run_completed"],
    )
    assert [e["event_type"] for e in terminal].count("run_started") == 2
    assert {e["event_type"] for e in terminal} == {"run_started", "run_completed"}

    progress = await collect_events(
        orchestrator, owner, lambda events: len(events) >= 4, event_pattern=r"progress_update_.*"
    )
    assert all(e["event_type"].startswith("progress_update_") for e in progress)

    # Resume after the fifth event: exactly the rest, no gap, no repeat.
    cut = everything[4]["offset"]
    rest = await collect_events(
        orchestrator,
        owner,
        has_event("run_completed", 2 - _count_before(everything, cut)),
        from_offset=cut + 1,
    )
    assert [e["offset"] for e in rest] == offsets[5:]


def _count_before(events: list[dict[str, Any]], offset: int) -> int:
    return sum(e["event_type"] == "run_completed" and e["offset"] <= offset for e in events)


async def test_live_subscriber_sees_events_as_they_happen(
    orchestrator: Orchestrator, unique
) -> None:
    from factorial.testing import Reply

    agent = Agent(
        name=unique("live"),
        model=ScriptedModel([Reply(content="slow answer", delay=1.0)]),
    )
    orchestrator.register_runner(agent=agent)
    await orchestrator.start_workers()
    owner = unique("owner")
    subscription = asyncio.create_task(
        collect_events(orchestrator, owner, has_event("run_completed"))
    )
    await asyncio.sleep(0.5)
    task = await orchestrator.enqueue_task(agent=agent, owner_id=owner, payload={})

    events = await subscription
    assert [e["event_type"] for e in events][-1] == "run_completed"
    assert events[0]["event_type"] == "run_started"
    assert {e["task_id"] for e in events} == {task.id}
