"""The exactly-once check: one subscriber that keeps every event of an owner and audits them.

``EventLedger`` subscribes to an owner's stream from the first offset and records every event
it is given. ``assert_exactly_once`` then checks the README's promises event by event:

* offsets are contiguous: no gap and no offset delivered twice;
* every task named has exactly one terminal event (``run_completed``, ``run_failed`` or
  ``run_cancelled``), and a completed one exactly one ``agent_output`` before it;
* no terminal event arrives for a task that was not named (or was never started);
* each batch named has exactly one ``batch_completed`` or ``batch_cancelled``.

Tests of batches, sub-agents, cancellation, worker kills and server restarts use it.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import Callable, Iterable
from typing import Any

from factorial import Orchestrator

TASK_ENDS = ("run_completed", "run_failed", "run_cancelled")
BATCH_ENDS = ("batch_completed", "batch_cancelled", "batch_failed")


class EventLedger:
    """Every event of one owner, as one subscriber saw it."""

    def __init__(self, orchestrator: Orchestrator, owner_id: str, from_offset: int | None = 0):
        self.orchestrator = orchestrator
        self.owner_id = owner_id
        self.from_offset = from_offset
        self.events: list[dict[str, Any]] = []
        self.error: BaseException | None = None
        self._changed = asyncio.Event()
        self._reader: asyncio.Task[None] | None = None

    async def __aenter__(self) -> EventLedger:
        self._reader = asyncio.create_task(self._read())
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def stop(self) -> None:
        """Stop reading (the events read so far stay)."""
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
            self._reader = None

    async def _read(self) -> None:
        try:
            async for event in self.orchestrator.subscribe_to_updates(
                self.owner_id, from_offset=self.from_offset
            ):
                self.events.append(event)
                self._changed.set()
        except asyncio.CancelledError:
            raise
        except BaseException as err:  # noqa: BLE001 - reported by wait_until and the checks
            self.error = err
            self._changed.set()

    async def wait_until(
        self, predicate: Callable[[list[dict[str, Any]]], bool], timeout: float = 60.0
    ) -> None:
        """Wait until ``predicate(events)`` holds; raise if the subscription failed."""
        async with asyncio.timeout(timeout):
            while not predicate(self.events):
                if self.error is not None:
                    raise AssertionError(f"the subscription failed: {self.error!r}")
                self._changed.clear()
                await self._changed.wait()

    async def wait_for_tasks(self, task_ids: Iterable[str], timeout: float = 60.0) -> None:
        """Wait until every task named has a terminal event."""
        wanted = set(task_ids)
        try:
            await self.wait_until(lambda events: wanted <= self.ended_tasks(), timeout)
        except TimeoutError:
            missing = sorted(wanted - self.ended_tasks())
            raise AssertionError(
                f"{len(missing)} of {len(wanted)} tasks got no terminal event: {missing[:10]}"
            ) from None

    async def settle(self, seconds: float = 2.0) -> None:
        """Keep reading a little longer, to catch late duplicates."""
        await asyncio.sleep(seconds)

    def ended_tasks(self) -> set[str]:
        """Tasks with at least one terminal event so far."""
        return {e["task_id"] for e in self.events if e["event_type"] in TASK_ENDS}

    def of_type(self, *event_types: str) -> list[dict[str, Any]]:
        """The events of these types, in order."""
        return [e for e in self.events if e["event_type"] in event_types]

    def outcomes(self) -> dict[str, str]:
        """How each task ended, by task id (``completed``, ``failed`` or ``cancelled``)."""
        return {
            e["task_id"]: e["event_type"].removeprefix("run_") for e in self.of_type(*TASK_ENDS)
        }

    def ending(self, task_id: str) -> dict[str, Any] | None:
        """The terminal event of a task, if it has one."""
        return next((e for e in self.of_type(*TASK_ENDS) if e["task_id"] == task_id), None)

    def assert_exactly_once(
        self,
        task_ids: Iterable[str],
        *,
        batch_ids: Iterable[str] = (),
        expected: dict[str, str] | str | None = None,
    ) -> None:
        """Assert the stream's promises for these tasks (and batches); see the module doc.

        Args:
            task_ids: Every task that must have ended; no other task may have a terminal event.
            batch_ids: Batches that must have ended exactly once.
            expected: The outcome of every task (one for all, or by task id), if known.
        """
        assert self.error is None, f"the subscription failed: {self.error!r}"
        offsets = [e["offset"] for e in self.events]
        assert len(offsets) == len(set(offsets)), "an offset was delivered twice"
        if offsets:
            first = offsets[0] if self.from_offset is None else self.from_offset
            gaps = [o for a, o in zip([first - 1, *offsets], offsets, strict=False) if o != a + 1]
            assert not gaps, f"offsets jump before {gaps[:10]} (started at {first})"
        tasks = set(task_ids)
        ends = Counter(e["task_id"] for e in self.of_type(*TASK_ENDS))
        twice = {t: n for t, n in ends.items() if n > 1}
        assert not twice, f"tasks with more than one terminal event: {twice}"
        missing = tasks - set(ends)
        assert not missing, f"{len(missing)} tasks have no terminal event: {sorted(missing)[:10]}"
        strangers = set(ends) - tasks
        assert not strangers, f"terminal events of tasks not expected: {sorted(strangers)[:10]}"
        outcomes = self.outcomes()
        outputs = Counter(e["task_id"] for e in self.of_type("agent_output"))
        for task_id in tasks:
            want = expected if isinstance(expected, str) else (expected or {}).get(task_id)
            if want is not None:
                assert outcomes[task_id] == want, (
                    f"{task_id} ended {outcomes[task_id]}, not {want}: {self.ending(task_id)}"
                )
            if outcomes[task_id] == "completed":
                assert outputs[task_id] == 1, f"{task_id}: {outputs[task_id]} agent_output events"
            else:
                assert outputs[task_id] == 0, f"{task_id} ended {outcomes[task_id]} with output"
        batch_ends = Counter(e["batch_id"] for e in self.of_type(*BATCH_ENDS))
        for batch_id in batch_ids:
            assert batch_ends[batch_id] == 1, f"{batch_id}: {batch_ends[batch_id]} batch endings"
