"""One live feed per owner stream, fanned out to local subscribers, with no silent gap.

A stream serves a few long-polls, not thousands, so an Orchestrator long-polls each owner's
stream once (``OwnerFeed``) and hands every event to its local subscribers. Each subscriber
tracks the next offset it needs: whatever the shared feed had already passed when it joined,
or a gap in what it delivers, is read by query from the stream itself. If the stream no longer
has that offset the subscriber raises ``EventsExpiredError``; it never skips ahead silently.
When the stream refuses another long-poll (``StreamBusy``, many subscribers elsewhere), the
feed reads by query every ``_BUSY_READ_INTERVAL`` and tries a long-poll again after
``_BUSY_RETRY_AFTER`` (with jitter). Between long-polls that found little, it pauses
``_COOLDOWN`` so a busy stream answers fewer, larger polls.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import re
import time
from collections.abc import AsyncIterator, Iterable
from typing import Any

from temporalio.contrib.workflow_streams import PollResult

from factorial._batch_wire import batch_task_of
from factorial._streams import StreamGone, StreamReader
from factorial.errors import EventsExpiredError, EventStreamError

_BUSY_READ_INTERVAL = 1.0
_BUSY_RETRY_AFTER = 30.0
_COOLDOWN = 0.1
_END = object()

Item = tuple[int, dict[str, Any]]


class OwnerFeed:
    """Polls one owner's stream while anyone listens; each item is ``(offset, event)``."""

    def __init__(self, reader: StreamReader) -> None:
        self._reader = reader
        self._queues: set[asyncio.Queue[Any]] = set()
        self._poller: asyncio.Task[None] | None = None
        #: The next offset the feed fetches: every item before it has been handed out.
        self._position = 0
        self._busy_until = 0.0

    async def items(self, from_offset: int | None) -> AsyncIterator[Item]:
        """Yield events from ``from_offset`` (the oldest retained if None), then live ones.

        Raises:
            EventsExpiredError: Events from the offset needed are no longer retained.
            EventStreamError: The stream was terminated, or ``from_offset`` is past its end.
            TemporalUnavailableError: The server stayed unreachable too long.
        """
        queue: asyncio.Queue[Any] = asyncio.Queue()
        self._queues.add(queue)
        try:
            expected = await self._start(from_offset)
            while True:
                if expected < self._position:  # the feed is ahead: catch up by query
                    caught_up = self._catch_up(expected)
                    async for item in caught_up:
                        yield item
                        expected = item[0] + 1
                    continue
                item = await queue.get()
                if item is _END:
                    return
                if isinstance(item, BaseException):
                    raise item
                if item[0] == expected:
                    yield item
                    expected += 1
        finally:
            self._queues.discard(queue)
            if not self._queues:
                await self._stop_poller()

    async def _start(self, from_offset: int | None) -> int:
        """Check the offset asked for against the stream, start the feed, return the offset."""
        first = await self._reader.read(from_offset or 0)
        oldest = first.items[0].offset if first.items else first.next_offset
        if from_offset is None:
            expected = oldest
        elif from_offset > first.next_offset and not first.items:
            raise EventStreamError(
                f"offset {from_offset} is past the end of owner {self._reader.owner_id!r}'s "
                f"stream (next offset {first.next_offset})"
            )
        else:
            expected = from_offset
        if self._poller is None or self._poller.done():
            self._position = expected
            self._poller = asyncio.create_task(self._poll(expected))
        return expected

    async def _catch_up(self, expected: int) -> AsyncIterator[Item]:
        """Yield stored events from ``expected`` up to (at least) the feed's position."""
        while expected < self._position:
            result = await self._reader.read(expected)
            oldest = result.items[0].offset if result.items else result.next_offset
            if oldest > expected:
                raise EventsExpiredError(self._reader.owner_id, expected, oldest)
            for item in result.items:
                yield item.offset, self._reader.decode(item.data)
                expected = item.offset + 1
            if not result.items:
                return

    async def _poll(self, start: int) -> None:
        offset = start
        try:
            while True:
                result = await self._next(offset)
                for item in result.items:
                    self._broadcast((item.offset, self._reader.decode(item.data)))
                offset = self._position = max(offset, result.next_offset)
        except asyncio.CancelledError:
            raise
        except Exception as err:  # noqa: BLE001 - every subscriber re-raises it
            self._broadcast(err)

    async def _next(self, offset: int) -> PollResult:
        """The next events: by long-poll, or by query while the stream is busy."""
        if time.monotonic() >= self._busy_until:
            try:
                result = await self._reader.poll(offset)
            except StreamGone:
                # The feed's own offset was trimmed: subscribers behind it find out by query.
                return await self._reader.read(offset)
            if result is not None:
                if not result.more_ready:
                    await asyncio.sleep(_COOLDOWN)
                return result
            self._busy_until = time.monotonic() + _BUSY_RETRY_AFTER * random.uniform(0.5, 1.5)
        result = await self._reader.read(offset)
        if not result.items:
            await asyncio.sleep(_BUSY_READ_INTERVAL)
        return result

    def _broadcast(self, item: Any) -> None:
        for queue in self._queues:
            queue.put_nowait(item)

    async def _stop_poller(self) -> None:
        poller, self._poller = self._poller, None
        if poller is not None:
            poller.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await poller


def batch_of(event: dict[str, Any]) -> str | None:
    """The batch an event belongs to: its ``batch_id``, or the batch in its task's id."""
    batch_id = event.get("batch_id")
    if isinstance(batch_id, str):
        return batch_id
    task_id = event.get("task_id")
    parsed = batch_task_of(task_id) if isinstance(task_id, str) else None
    return parsed[0] if parsed else None


async def owner_events(
    feed: OwnerFeed,
    owner_id: str,
    task_ids: Iterable[str] | None,
    event_types: Iterable[str] | None,
    event_pattern: str | None,
    from_offset: int | None,
    batch_ids: Iterable[str] | None = None,
) -> AsyncIterator[dict[str, Any]]:
    """The owner's events from ``feed`` that pass the filters, each with its ``offset``."""
    batches = set(batch_ids) if batch_ids is not None else None
    tasks = set(task_ids) if task_ids is not None else None
    types = set(event_types) if event_types is not None else None
    pattern = re.compile(event_pattern) if event_pattern else None
    async for offset, event in feed.items(from_offset):
        if event.get("owner_id") != owner_id:
            continue
        if tasks is not None and event.get("task_id") not in tasks:
            continue
        if batches is not None and batch_of(event) not in batches:
            continue
        event_type = event.get("event_type", "")
        if types is not None and event_type not in types:
            continue
        if pattern is not None and not pattern.match(event_type):
            continue
        yield {**event, "offset": offset}
