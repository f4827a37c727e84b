"""Publishing from activities: events to owner streams, turn counts to batches.

Both are *group-committed*: every turn running in this worker process adds to one buffer per
target workflow, and whoever flushes sends everything buffered in one signal, so a hundred
concurrent turns of one owner cost about one signal (and one workflow task) instead of a
hundred. A turn still waits until its own items are confirmed before it returns, so its
events land before anything its workflow publishes afterwards.

Events go through ``WorkflowStreamClient`` (its batching, retries and per-publisher dedup);
a turn that is retried publishes its own events again, as they happened again.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Generic, TypeVar

from temporalio.client import Client
from temporalio.common import WorkflowIDConflictPolicy
from temporalio.contrib.workflow_streams import WorkflowStreamClient
from temporalio.service import RPCError, RPCStatusCode

from factorial._ids import events_workflow_id
from factorial._wire import (
    EVENTS_WORKFLOW,
    TASK_TURN_SIGNAL,
    EventsInput,
    TaskTurnReport,
    TaskTurnReports,
)
from factorial.events import EVENTS_TOPIC

EVENTS_TASK_QUEUE = "factorial-events"
_MAX_STREAMS = 1_000

T = TypeVar("T")


async def ensure_events_workflow(client: Client, owner_id: str) -> None:
    """Start the owner's event-stream workflow unless it is already running."""
    await client.start_workflow(
        EVENTS_WORKFLOW,
        EventsInput(owner_id=owner_id),
        id=events_workflow_id(owner_id),
        task_queue=EVENTS_TASK_QUEUE,
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        static_summary=f"Factorial event stream of owner {owner_id}",
    )


class EventStreams:
    """One shared stream client per owner in this process (least recently used evicted)."""

    def __init__(self, client: Client) -> None:
        self._client = client
        self._streams: OrderedDict[str, WorkflowStreamClient] = OrderedDict()

    def publisher(self, owner_id: str) -> Callable[[dict[str, Any]], None]:
        """A sink that buffers one event dict for ``owner_id``'s stream."""
        topic = self._stream(owner_id).topic(EVENTS_TOPIC)
        return topic.publish

    async def flush(self, owner_id: str) -> None:
        """Send everything buffered for the owner and wait for the server to confirm it."""
        stream = self._stream(owner_id)
        try:
            await stream.flush()
        except RPCError as err:
            if err.status != RPCStatusCode.NOT_FOUND:
                raise
            # The owner's stream is gone (terminated by hand): start it and send again.
            await ensure_events_workflow(self._client, owner_id)
            await stream.flush()

    def _stream(self, owner_id: str) -> WorkflowStreamClient:
        stream = self._streams.get(owner_id)
        if stream is None:
            stream = WorkflowStreamClient.create(
                self._client,
                events_workflow_id(owner_id),
                max_retry_duration=timedelta(minutes=2),
            )
            self._streams[owner_id] = stream
            if len(self._streams) > _MAX_STREAMS:
                self._evict()
        self._streams.move_to_end(owner_id)
        return stream

    def _evict(self) -> None:
        for owner_id, stream in list(self._streams.items())[: len(self._streams) - _MAX_STREAMS]:
            if not stream._buffer and stream._pending is None:  # nothing left to send
                del self._streams[owner_id]


@dataclass
class _Outbox(Generic[T]):
    items: list[T] = field(default_factory=list)
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


class TurnReporter:
    """Sends ``task_turn`` reports to batch workflows, coalesced per batch."""

    def __init__(self, client: Client) -> None:
        self._client = client
        self._outboxes: dict[str, _Outbox[TaskTurnReport]] = {}

    async def report(self, batch_workflow_id: str, task_id: str, turns: int) -> None:
        """Tell a batch that ``task_id`` finished ``turns`` turns; returns once it is sent."""
        outbox = self._outboxes.setdefault(batch_workflow_id, _Outbox())
        outbox.items.append(TaskTurnReport(task_id=task_id, turns=turns))
        async with outbox.lock:
            if not outbox.items:
                return  # a concurrent caller sent ours along with its own
            items, outbox.items = outbox.items, []
            try:
                await self._client.get_workflow_handle(batch_workflow_id).signal(
                    TASK_TURN_SIGNAL, TaskTurnReports(reports=items)
                )
            except RPCError as err:
                if err.status != RPCStatusCode.NOT_FOUND:  # not "the batch already ended"
                    outbox.items[:0] = items  # let the next caller send them again
                    raise
            finally:
                if not outbox.items and not outbox.lock._waiters:
                    self._outboxes.pop(batch_workflow_id, None)
