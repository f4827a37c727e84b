"""A root's job in a batch of several leaves: count their reports, and cancel them.

The client starts the leaves (each with its payloads, so no payload passes through the
root's history) and then the root. Leaves report their counters by signal now and then, and
once more, marked final, when they end; the batch is over when every leaf has reported final.
A leaf that was stopped lists the tasks it cancelled in its final report, and the root
announces their ``run_cancelled``.
Only ``running_leaves`` leaves run tasks at once (``factorial._batches``): the others wait,
and each time a leaf reports final the root tells the next waiting one to start (``leaf_go``).
Cancelling the root asks every leaf still running to cancel (one local activity,
``factorial.workflows._cancel``) and waits for their final reports; a leaf silent for
``LEAF_TIMEOUT`` after that is counted as cancelled.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import timedelta

from temporalio import workflow

from factorial.workflows._cancel import cancel_workflows

with workflow.unsafe.imports_passed_through():
    from factorial import _wire as wire
    from factorial._progress import combine, lost

LEAF_TIMEOUT = timedelta(minutes=10)
#: Roots before this change cancelled their leaves by one ``RequestCancelExternal`` command
#: each, and ignored the tasks a leaf's final report lists as cancelled.
PATCH = "root-cancel-by-local-activity"


class Root:
    """Tracks the leaves of one batch."""

    def __init__(
        self,
        inp: wire.BatchInput,
        changed: Callable[[], None],
        tasks_cancelled: Callable[[list[str]], None],
    ) -> None:
        self._inp = inp
        self._changed = changed
        self._tasks_cancelled = tasks_cancelled
        self._counts: dict[int, wire.BatchCounts] = {}
        self._finished: set[int] = set()
        #: Leaves told to start so far (the first ``running_leaves`` need not be told).
        self._released = inp.running_leaves
        self._stopping = False
        self._signals: set[asyncio.Task[None]] = set()

    def report(self, report: wire.LeafReport) -> None:
        """A leaf's latest counters (a late or repeated report is harmless)."""
        if report.chunk in self._finished:
            return
        current = self._counts.get(report.chunk)
        if report.final or current is None or report.counts.done_units >= current.done_units:
            self._counts[report.chunk] = report.counts
            if report.final:
                self._finished.add(report.chunk)
                self._release_next()
                # Their run_cancelled before any progress that counts them.
                if report.cancelled and workflow.patched(PATCH):
                    self._tasks_cancelled(report.cancelled)
            self._changed()

    def counts(self) -> wire.BatchCounts:
        """The batch's counters: the sum of its leaves'."""
        return combine(self._counts.values())

    async def run(self) -> None:
        """Wait until every leaf has ended."""
        await workflow.wait_condition(self._all_finished)

    async def cancel(self) -> None:
        """Cancel every leaf still running and wait until each has ended (or gone silent)."""
        self._stopping = True
        running = [k for k in range(len(self._inp.leaf_sizes)) if k not in self._finished]
        if workflow.patched(PATCH):
            await cancel_workflows([wire.leaf_id_of(self._inp.batch_id, k) for k in running])
        else:
            await asyncio.gather(*(self._cancel_leaf(k) for k in running))
        try:
            await workflow.wait_condition(self._all_finished, timeout=LEAF_TIMEOUT)
        except TimeoutError:
            for chunk in running:
                if chunk not in self._finished:
                    workflow.logger.warning(
                        "leaf %d of %s never reported", chunk, self._inp.batch_id
                    )
                    self._counts[chunk] = lost(
                        self._counts.get(chunk, wire.BatchCounts()),
                        self._leaf_indices(chunk),
                        self._inp.max_turns,
                    )
                    self._finished.add(chunk)
            self._changed()

    def _release_next(self) -> None:
        """A leaf has ended: let the next waiting one start its tasks, unless cancelling."""
        if not self._inp.running_leaves or self._stopping:
            return
        if self._released >= len(self._inp.leaf_sizes):
            return
        chunk, self._released = self._released, self._released + 1
        task = asyncio.create_task(self._go(chunk))
        self._signals.add(task)
        task.add_done_callback(self._signals.discard)

    async def _go(self, chunk: int) -> None:
        leaf = workflow.get_external_workflow_handle(wire.leaf_id_of(self._inp.batch_id, chunk))
        try:
            await leaf.signal(wire.LEAF_GO_SIGNAL)
        except Exception as err:  # noqa: BLE001 - it has ended (cancelled); it reports so
            workflow.logger.info("leaf %d of %s: %s", chunk, self._inp.batch_id, err)

    def _all_finished(self) -> bool:
        return len(self._finished) == len(self._inp.leaf_sizes)

    def _leaf_indices(self, chunk: int) -> range:
        first = sum(self._inp.leaf_sizes[:chunk])
        return range(first, first + self._inp.leaf_sizes[chunk])

    async def _cancel_leaf(self, chunk: int) -> None:
        """How roots cancelled before ``PATCH`` replay."""
        leaf = workflow.get_external_workflow_handle(wire.leaf_id_of(self._inp.batch_id, chunk))
        try:
            await leaf.cancel()
        except Exception as err:  # noqa: BLE001 - it has ended already; its final report says how
            workflow.logger.info("leaf %d of %s: %s", chunk, self._inp.batch_id, err)
