"""One long-poll subscription per owner stream, fanned out to local subscribers.

A stream serves tens of long-pollers, not thousands, so an Orchestrator polls each owner's
stream once and hands every item to its local subscribers, replaying a bounded buffer to
late joiners so that one who starts from an earlier offset misses nothing still retained.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from temporalio.client import Client
from temporalio.contrib.workflow_streams import WorkflowStreamClient

from factorial._ids import events_workflow_id
from factorial.events import EVENTS_TOPIC

_BUFFER = 5_000
_END = object()


class OwnerFeed:
    """Polls one owner's stream while anyone listens; each item is ``(offset, event)``."""

    def __init__(self, client: Client, owner_id: str, ensure: Callable[[], Awaitable[None]]):
        self._client = client
        self._owner_id = owner_id
        self._ensure = ensure
        self._buffer: deque[tuple[int, dict[str, Any]]] = deque(maxlen=_BUFFER)
        self._queues: set[asyncio.Queue[Any]] = set()
        self._poller: asyncio.Task[None] | None = None

    async def items(self, from_offset: int | None) -> AsyncIterator[tuple[int, dict[str, Any]]]:
        """Yield retained items at or after ``from_offset`` (all retained if None), then live."""
        queue: asyncio.Queue[Any] = asyncio.Queue()
        start = from_offset or 0
        for item in self._buffer:
            if item[0] >= start:
                queue.put_nowait(item)
        self._queues.add(queue)
        if self._poller is None or self._poller.done():
            await self._ensure()
            self._poller = asyncio.create_task(self._poll())
        try:
            while True:
                item = await queue.get()
                if item is _END:
                    return
                if isinstance(item, BaseException):
                    raise item
                if item[0] >= start:
                    yield item
        finally:
            self._queues.discard(queue)
            if not self._queues and self._poller is not None:
                poller, self._poller = self._poller, None
                poller.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await poller
                self._buffer.clear()

    async def _poll(self) -> None:
        stream = WorkflowStreamClient.create(self._client, events_workflow_id(self._owner_id))
        try:
            async for item in stream.subscribe([EVENTS_TOPIC], from_offset=0):
                entry = (item.offset, item.data)
                self._buffer.append(entry)
                for queue in self._queues:
                    queue.put_nowait(entry)
            self._broadcast(_END)
        except asyncio.CancelledError:
            raise
        except Exception as err:
            self._broadcast(err)

    def _broadcast(self, item: Any) -> None:
        for queue in self._queues:
            queue.put_nowait(item)
