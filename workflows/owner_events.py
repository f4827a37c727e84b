"""``OwnerEventsWorkflow``: one workflow per owner hosting its durable event stream.

Publishers (turn activities, task and batch workflows) append events with the
``temporalio.contrib.workflow_streams`` publish signal; subscribers long-poll it, or read it by
query, with offsets (see ``factorial.workflows._stream`` for the bounds on both).

Retention (``EventStreamConfig``): the run trims itself to the newest ``max_events``; at
continue-as-new, and when it closes, it also drops what passes ``max_bytes`` or ``max_age``.
Everything else is carried into the next run with the publishers' dedup state, so offsets stay
monotonic. It continues as new when Temporal suggests it, after ``MAX_EVENTS_PER_RUN`` events,
``MAX_POLLS_PER_RUN`` long-polls (Temporal allows 2,000 updates per run) or ``MAX_RUN_BYTES``
of history.

Idle: with no publish and no poll for ``idle_timeout`` (checked twice per period) the run
completes, returning its retained state; ``factorial._streams.open_stream`` restarts it from
that result when someone publishes or subscribes again.
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from temporalio import workflow

from factorial.workflows._stream import BoundedStream

with workflow.unsafe.imports_passed_through():
    from temporalio.api.common.v1 import Payload
    from temporalio.contrib.workflow_streams import WorkflowStreamState

    from factorial._wire import EVENTS_WORKFLOW, EventsInput
    from factorial.events import EventStreamConfig

#: Continue-as-new after this many events in one run even if Temporal does not suggest it yet.
MAX_EVENTS_PER_RUN = 10_000
#: ...or this many long-polls (each one is an update; Temporal refuses the 2,001st of a run).
MAX_POLLS_PER_RUN = 1_500
#: ...or this much history.
MAX_RUN_BYTES = 8 * 1024 * 1024
#: Dedup state of a publisher idle this long is dropped at continue-as-new; it must exceed
#: the longest a publisher retries one flush (two minutes, see ``factorial.activities.publishing``).
PUBLISHER_TTL = timedelta(minutes=10)
#: Runs started before idle streams could close keep running until they continue as new.
IDLE_CLOSE_PATCH = "owner-stream-idle-close"


@workflow.defn(name=EVENTS_WORKFLOW)
class OwnerEventsWorkflow:
    """Hosts one owner's event stream."""

    @workflow.init
    def __init__(self, inp: EventsInput) -> None:
        state = inp.stream_state
        if state is not None:
            state = retain(state, inp.config, workflow.now())
        self._base = state.base_offset if state is not None else 0
        self.stream = BoundedStream(prior_state=state)

    @workflow.run
    async def run(self, inp: EventsInput) -> EventsInput:
        start = self.stream.end_offset()
        trimmer = asyncio.create_task(self._trim(inp.config.max_events))
        try:
            if not workflow.patched(IDLE_CLOSE_PATCH):
                await workflow.wait_condition(lambda: self._roll_needed(start))
                await self._continue_as_new(inp)
            await self._run_until_idle(inp, start)
        finally:
            trimmer.cancel()
        return await self._close(inp)

    async def _run_until_idle(self, inp: EventsInput, start: int) -> None:
        """Continue as new when due; return once the stream has been idle a whole period."""
        quiet_checks = 0
        while quiet_checks < 2:
            mark = self._activity()
            try:
                await workflow.wait_condition(
                    lambda: self._roll_needed(start), timeout=inp.config.idle_timeout / 2
                )
            except TimeoutError:
                busy = self._activity() != mark or self.stream.long_polls > 0
                quiet_checks = 0 if busy else quiet_checks + 1
                continue
            await self._continue_as_new(inp)

    def _activity(self) -> tuple[int, int]:
        return self.stream.end_offset(), self.stream.long_polls_total

    def _roll_needed(self, start: int) -> bool:
        info = workflow.info()
        return (
            info.is_continue_as_new_suggested()
            or self.stream.end_offset() - start >= MAX_EVENTS_PER_RUN
            or self.stream.long_polls_total >= MAX_POLLS_PER_RUN
            or info.get_current_history_size() >= MAX_RUN_BYTES
        )

    async def _trim(self, max_events: int) -> None:
        """Keep at most about ``max_events`` events in memory (10% slack between trims)."""
        slack = max(1, max_events // 10)
        while True:
            await workflow.wait_condition(
                lambda: self.stream.end_offset() - self._base > max_events + slack
            )
            self._base = self.stream.end_offset() - max_events
            self.stream.truncate(self._base)

    async def _final_state(self, inp: EventsInput) -> WorkflowStreamState:
        self.stream.detach_pollers()
        await workflow.wait_condition(workflow.all_handlers_finished)
        return retain(
            self.stream.get_state(publisher_ttl=PUBLISHER_TTL), inp.config, workflow.now()
        )

    async def _continue_as_new(self, inp: EventsInput) -> None:
        state = await self._final_state(inp)
        workflow.continue_as_new(inp.model_copy(update={"stream_state": state}))

    async def _close(self, inp: EventsInput) -> EventsInput:
        return inp.model_copy(update={"stream_state": await self._final_state(inp)})


def retain(
    state: WorkflowStreamState, config: EventStreamConfig, now: datetime
) -> WorkflowStreamState:
    """``state`` with only its newest events within ``config``'s count, bytes and age."""
    log = state.log[-config.max_events :]
    keep, size = 0, 0
    for item in reversed(log):
        size += len(item.data) + len(item.topic)
        if size > config.max_bytes:
            break
        keep += 1
    log = log[len(log) - keep :]
    log = log[_first_younger_than(log, now - config.max_age) :]
    return WorkflowStreamState(
        log=log,
        base_offset=state.base_offset + len(state.log) - len(log),
        publishers=state.publishers,
    )


def _first_younger_than(log: Sequence[Any], cutoff: datetime) -> int:
    """Index of the first event stamped at or after ``cutoff`` (events are in time order)."""
    low, high = 0, len(log)
    while low < high:
        middle = (low + high) // 2
        stamp = _timestamp(log[middle].data)
        if stamp is not None and stamp < cutoff:
            low = middle + 1
        else:
            high = middle
    return low


def _timestamp(data: str) -> datetime | None:
    """The ``timestamp`` of one stored event, or None if it has none that parses."""
    payload = Payload()
    payload.ParseFromString(base64.b64decode(data))
    if payload.metadata.get("encoding") != b"json/plain":
        return None
    try:
        stamp = datetime.fromisoformat(json.loads(payload.data)["timestamp"])
    except (KeyError, TypeError, ValueError):
        return None
    return stamp if stamp.tzinfo is not None else None
