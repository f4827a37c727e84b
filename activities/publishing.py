"""Publishing from activities: events to owner streams, turn counts to batches.

Both are *group-committed*: every turn running in this worker process adds to one buffer per
target workflow, and whoever flushes sends everything buffered in one signal, so a hundred
concurrent turns of one owner cost about one signal (and one workflow task) instead of a
hundred. A turn still waits until its own events are confirmed before it returns, so they
land before anything its workflow publishes afterwards.

An owner's stream gets at most one signal per ``FLUSH_SPACING`` from this process: a flush
that comes sooner after the last one waits out the rest of it, and every turn that ended
meanwhile goes in the same signal. An idle owner's flush goes at once. At the benchmark's load
(W(1000, 3), about 80 turns a second) one signal carried 3.4 turns without the spacing: the
turns that ended while the last signal was in flight.

Events go through ``WorkflowStreamClient`` (its batching, retries and per-publisher dedup);
a turn that is retried publishes its own events again, as they happened again. A stream that
is not running (closed while idle, or never started) is (re)started by ``open_stream`` and
the flush is sent again. ``publish_events`` delivers what a workflow's own stream signal
could not, exactly once (its batch carries a publisher id and sequence).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from temporalio import activity
from temporalio.client import Client
from temporalio.contrib.workflow_streams import WorkflowStreamClient
from temporalio.service import RPCError, RPCStatusCode

from factorial._ids import events_workflow_id
from factorial._streams import open_stream
from factorial._wire import (
    PUBLISH_EVENTS_ACTIVITY,
    STREAM_PUBLISH_SIGNAL,
    TASK_TURN_SIGNAL,
    PublishEventsInput,
    TaskTurnReport,
    TaskTurnReports,
)
from factorial.events import EVENTS_TOPIC, EventStreamConfig

logger = logging.getLogger(__name__)

_MAX_STREAMS = 1_000
#: Shortest time between two signals to one owner's stream from this process (seconds).
FLUSH_SPACING = 0.1
#: How long one flush is retried before its events count as lost (see ``PUBLISHER_TTL``).
FLUSH_RETRY = timedelta(minutes=2)


async def _send_to_stream(
    client: Client, owner_id: str, config: EventStreamConfig, send: Callable[[], Awaitable[None]]
) -> None:
    """Run ``send``; if the owner's stream is not running (closed while idle), restart it and
    run ``send`` again."""
    try:
        await send()
    except RPCError as err:
        if err.status != RPCStatusCode.NOT_FOUND:
            raise
        await open_stream(client, owner_id, config)
        await send()


class EventStreams:
    """One shared stream client per owner in this process (least recently used evicted).

    Published events wait in ``_staged`` until a flush hands them to the stream client: its
    own flush sends whatever it holds, so events staged during the spacing would otherwise go
    with the signal in flight before the spacing ends.
    """

    def __init__(self, client: Client, config: EventStreamConfig) -> None:
        self._client = client
        self._config = config
        self._streams: OrderedDict[str, WorkflowStreamClient] = OrderedDict()
        self._staged: dict[str, list[dict[str, Any]]] = {}
        self._unflushed: set[str] = set()
        self._last_flush: dict[str, float] = {}

    def publisher(self, owner_id: str) -> Callable[[dict[str, Any]], None]:
        """A sink that buffers one event dict for ``owner_id``'s stream."""

        def publish(event: dict[str, Any]) -> None:
            self._unflushed.add(owner_id)
            self._staged.setdefault(owner_id, []).append(event)

        return publish

    async def flush(self, owner_id: str) -> None:
        """Send everything buffered for the owner and wait for the server to confirm it.

        Within ``FLUSH_SPACING`` of the owner's last flush, wait out the rest of it first.
        """
        wait = self._last_flush.get(owner_id, -FLUSH_SPACING) + FLUSH_SPACING - time.monotonic()
        if wait > 0:
            await asyncio.sleep(wait)
        self._last_flush[owner_id] = time.monotonic()
        stream = self._stream(owner_id)
        topic = stream.topic(EVENTS_TOPIC)
        for event in self._staged.pop(owner_id, ()):
            topic.publish(event)
        await _send_to_stream(self._client, owner_id, self._config, stream.flush)
        self._unflushed.discard(owner_id)

    def _stream(self, owner_id: str) -> WorkflowStreamClient:
        stream = self._streams.get(owner_id)
        if stream is None:
            stream = WorkflowStreamClient.create(
                self._client, events_workflow_id(owner_id), max_retry_duration=FLUSH_RETRY
            )
            self._streams[owner_id] = stream
            if len(self._streams) > _MAX_STREAMS:
                self._evict()
        self._streams.move_to_end(owner_id)
        return stream

    def _evict(self) -> None:
        for owner_id in list(self._streams)[: len(self._streams) - _MAX_STREAMS]:
            if owner_id not in self._unflushed:
                del self._streams[owner_id]
                self._last_flush.pop(owner_id, None)


class StreamActivities:
    """The ``publish_events`` activity, for workflows whose stream signal failed."""

    def __init__(self, config: EventStreamConfig) -> None:
        self._config = config

    @activity.defn(name=PUBLISH_EVENTS_ACTIVITY)
    async def publish_events(self, inp: PublishEventsInput) -> None:
        """Deliver one batch of a workflow's events, (re)starting the owner's stream."""
        client = activity.client()
        handle = client.get_workflow_handle(events_workflow_id(inp.owner_id))
        await _send_to_stream(
            client,
            inp.owner_id,
            self._config,
            lambda: handle.signal(STREAM_PUBLISH_SIGNAL, inp.batch),
        )


@dataclass
class _Outbox:
    items: list[TaskTurnReport] = field(default_factory=list)
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    users: int = 0
    timer: asyncio.Task[None] | None = None


class TurnReporter:
    """Sends ``task_turn`` reports to batch workflows, coalesced per batch.

    A report without a delay is sent before ``report`` returns, together with whatever other
    turns buffered for the same batch meanwhile. A report with a delay (a leaf of a root, see
    ``factorial.workflows._leaf``) joins the batch's buffer and ``report`` returns at once; the
    buffer goes out ``delay`` seconds after its first report, and a failed send is tried again as
    long. Reports buffered in a worker that stops are lost: they are progress only, and the
    batch counts those turns when their tasks end.
    """

    def __init__(self, client: Client) -> None:
        self._client = client
        self._outboxes: dict[str, _Outbox] = {}

    async def report(
        self, batch_workflow_id: str, report: TaskTurnReport, delay: float = 0
    ) -> None:
        """Tell a batch that a task finished some turns: now, or within ``delay`` seconds."""
        outbox = self._outboxes.setdefault(batch_workflow_id, _Outbox())
        outbox.items.append(report)
        if delay <= 0:
            await self._send(batch_workflow_id, outbox)
        elif outbox.timer is None:
            outbox.timer = asyncio.create_task(self._send_later(batch_workflow_id, outbox, delay))

    async def _send_later(self, batch_workflow_id: str, outbox: _Outbox, delay: float) -> None:
        await asyncio.sleep(delay)
        outbox.timer = None
        try:
            await self._send(batch_workflow_id, outbox)
        except Exception as err:
            logger.warning("could not report turns to %s (%s); will retry", batch_workflow_id, err)
            if outbox.timer is None:
                outbox.timer = asyncio.create_task(
                    self._send_later(batch_workflow_id, outbox, delay)
                )

    async def _send(self, batch_workflow_id: str, outbox: _Outbox) -> None:
        outbox.users += 1
        try:
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
            outbox.users -= 1
            if not outbox.users and not outbox.items and outbox.timer is None:
                self._outboxes.pop(batch_workflow_id, None)
