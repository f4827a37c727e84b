"""A worker's flushes to one owner's stream are spaced: turns that end close together share
one signal, every event still arrives once and in order, and each flush returns only once its
events are confirmed."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from temporalio.api.enums.v1 import EventType

from factorial import Agent, Orchestrator
from factorial._ids import events_workflow_id
from factorial._wire import STREAM_PUBLISH_SIGNAL
from factorial.activities.publishing import FLUSH_SPACING, EventStreams
from factorial.testing import ScriptedModel, reply
from tests.conftest import collect_events, has_event


async def _publish_signals(orchestrator: Orchestrator, owner: str) -> int:
    """How many publish signals the owner's stream workflow received."""
    client = await orchestrator.client()
    history = await client.get_workflow_handle(events_workflow_id(owner)).fetch_history()
    return sum(
        event.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED
        and event.workflow_execution_signaled_event_attributes.signal_name == STREAM_PUBLISH_SIGNAL
        for event in history.events
    )


async def test_flushes_close_together_share_one_signal(
    orchestrator: Orchestrator, unique: Callable[[str], str]
) -> None:
    orchestrator.register_runner(Agent(name=unique("idle"), model=ScriptedModel([reply("x")])))
    await orchestrator.start_workers()  # runs the owners' stream workflows
    owner = unique("owner")
    streams = EventStreams(await orchestrator.client(), orchestrator.event_stream)
    publish = streams.publisher(owner)
    confirmed: list[int] = []

    async def turn(i: int, delay: float) -> None:
        await asyncio.sleep(delay)
        publish({"event_type": "flushed", "owner_id": owner, "i": i})
        await streams.flush(owner)
        confirmed.append(i)

    await turn(0, 0)  # starts the owner's stream
    await asyncio.sleep(FLUSH_SPACING)
    # An idle owner's flush goes at once; the five that follow it 10 ms apart, all within the
    # spacing, share the next signal.
    step = FLUSH_SPACING / 10
    await asyncio.gather(*(turn(i, (i - 1) * step) for i in range(1, 7)))

    assert sorted(confirmed) == list(range(7))
    assert await _publish_signals(orchestrator, owner) == 3
    events = await collect_events(orchestrator, owner, has_event("flushed", 7), from_offset=0)
    assert [e["i"] for e in events if e["event_type"] == "flushed"] == list(range(7))
