"""A batch's summary in its workflow memo, so that it can be read without a worker.

A query needs a worker to answer it (and, once the workflow has closed, to replay its
history); the memo is stored by the server with the workflow and comes with ``describe``,
running or closed. So the batch's own root (a root, or a lone leaf) writes its snapshot
there (``_wire.BatchSummary``, under ``BATCH_SUMMARY_MEMO``): when it starts, when its
counters change, and once more when it ends.

Throttled: a change at least ``INTERVAL`` after the last write is written at once, in the
workflow task that saw it (one history event); a change sooner arms one timer that writes
the latest state when the interval is up. The memo therefore lags the batch by at most
``INTERVAL``, and a busy batch writes it about once an interval, not once a change.

Batches recorded before this change wrote no memo: ``SUMMARY_PATCH`` keeps their replay
identical.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime, timedelta

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from factorial import _wire as wire

SUMMARY_PATCH = "batch-summary-memo"
#: The longest the memo lags the batch's counters.
INTERVAL = timedelta(seconds=2)


class SummaryMemo:
    """Keeps one batch's summary in its memo (see the module docstring)."""

    def __init__(self, snapshot: Callable[[], wire.BatchSnapshot]) -> None:
        self._snapshot = snapshot
        self._on = False
        self._written_at: datetime | None = None
        self._timer: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Decide (once, deterministically) whether this run keeps a memo; write the first."""
        self._on = workflow.patched(SUMMARY_PATCH)
        if self._on:
            self._write()

    def changed(self) -> None:
        """The counters changed: write now, or when the interval is up."""
        if not self._on or self._timer is not None:
            return
        now = workflow.now()
        due = (self._written_at or now) + INTERVAL
        if now >= due:
            self._write()
        else:
            self._timer = asyncio.create_task(self._write_later((due - now).total_seconds()))

    def final(self) -> None:
        """The batch has ended: write its final state."""
        if not self._on:
            return
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._write()

    async def _write_later(self, seconds: float) -> None:
        await workflow.sleep(seconds)
        self._timer = None
        self._write()

    def _write(self) -> None:
        self._written_at = workflow.now()
        summary = wire.BatchSummary.of(self._snapshot(), updated_at=self._written_at)
        workflow.upsert_memo({wire.BATCH_SUMMARY_MEMO: summary})
