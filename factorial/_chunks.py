"""Streamed completions: text deltas group-committed as ``progress_update_completion_chunk``.

A model streams many small deltas (often one per token). ``ChunkPublisher`` never publishes
one event per delta: the first delta after a send starts a timer of ``CHUNK_INTERVAL``
seconds; when it fires, everything buffered meanwhile becomes *one* chunk event, and the
owner's stream is flushed (one signal carries it, with whatever else this worker buffered for
the owner). What is left when the answer ends is published at once and goes out with the
turn's last flush.

Chunk events are at-least-once per attempt: a turn that is tried again (a retry, or a local
turn run again after its worker died) streams its answer again, and the lost attempt's chunks
may already have been published. Each chunk carries ``turn``, ``attempt`` and its ``index``
within the attempt; a reader resets a turn's text on its ``progress_update_completion_started``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from types import TracebackType

from factorial.events import COMPLETION_CHUNK, EventPublisher
from factorial.models import Model, ModelClients, ModelRequest, ModelResponse

logger = logging.getLogger(__name__)

#: Seconds a delta waits at most for others to share its event (the group-commit latency).
CHUNK_INTERVAL = 0.1


class ChunkPublisher:
    """Buffers one model answer's text deltas and publishes them as chunk events.

    Args:
        events: The task's publisher; None publishes nothing.
        turn: The turn being run.
        attempt: The turn's attempt.
        interval: Seconds between the first buffered delta and its event.
    """

    def __init__(
        self,
        events: EventPublisher | None,
        *,
        turn: int,
        attempt: int,
        interval: float = CHUNK_INTERVAL,
    ) -> None:
        self._events = events
        self._turn = turn
        self._attempt = attempt
        self._interval = interval
        self._parts: list[str] = []
        self._index = 0
        self._timer: asyncio.Task[None] | None = None
        self._sending: set[asyncio.Task[None]] = set()

    def add(self, delta: str) -> None:
        """Buffer one text delta; its event follows within ``interval`` seconds."""
        if not delta or self._events is None:
            return
        self._parts.append(delta)
        if self._timer is None:
            self._timer = asyncio.get_running_loop().create_task(self._later())

    async def __aenter__(self) -> ChunkPublisher:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Publish what is left (the turn's closing flush sends it), even after a failure."""
        if self._timer is not None:
            self._timer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._timer
            self._timer = None
        self._emit()
        if self._sending:
            await asyncio.gather(*self._sending, return_exceptions=True)

    async def _later(self) -> None:
        await asyncio.sleep(self._interval)
        self._timer = None  # deltas from now on start the next timer
        self._emit()
        sending = asyncio.get_running_loop().create_task(self._send())
        self._sending.add(sending)  # not cancelled with the timer: a send in flight completes
        sending.add_done_callback(self._sending.discard)

    async def _send(self) -> None:
        assert self._events is not None
        try:
            await self._events.flush()
        except Exception:
            logger.warning("could not publish completion chunks yet; will retry", exc_info=True)

    def _emit(self) -> None:
        if not self._parts or self._events is None:
            return
        data, self._parts = "".join(self._parts), []
        self._events.emit(
            COMPLETION_CHUNK, turn=self._turn, attempt=self._attempt, index=self._index, data=data
        )
        self._index += 1


async def streamed_completion(
    model: Model, request: ModelRequest, clients: ModelClients, events: EventPublisher | None
) -> ModelResponse:
    """``model.stream`` with its text deltas published as group-committed chunk events."""
    async with ChunkPublisher(events, turn=request.turn, attempt=request.attempt) as chunks:
        return await model.stream(request, clients, chunks.add)
