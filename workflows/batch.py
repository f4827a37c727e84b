"""``AgentBatchWorkflow``: many agent tasks tracked as one group.

Why a tree: one parent workflow admits children serially (tens per second), and Temporal
caps a run at 2,000 pending children and ~50k history events. So a batch of at most
``batch_chunk_size`` tasks is a single *leaf* (``factorial.workflows._leaf``), its own root;
a larger one is a *root* (``factorial.workflows._root``) over one leaf per chunk. The client
starts the leaves, each with its own payloads, then the root: payloads never pass through one
history, and leaves admit their tasks in parallel.

Counting (``factorial._progress``): turn activities report finished turns to their leaf
(``task_turn``), outcomes come from the tasks' results, leaves report to the root
(``leaf_report``, throttled, then once final). The root, or a lone leaf, announces
(``factorial.workflows._announce``) ``batch_progress`` on every change, then ``batch_completed`` or
``batch_cancelled`` exactly once, after every task's terminal event.

Cancelling a batch cancels its leaves, which start no more tasks and cancel the running ones;
it ends once every task it started has ended. A failing task never stops the batch.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

from temporalio import workflow
from temporalio.common import SearchAttributeKey
from temporalio.exceptions import is_cancelled_exception

from factorial.workflows._announce import Announcer
from factorial.workflows._emitter import StreamEmitter
from factorial.workflows._leaf import Leaf
from factorial.workflows._root import Root

with workflow.unsafe.imports_passed_through():
    from factorial import _wire as wire
    from factorial._progress import max_units

_STATUS_KEY = SearchAttributeKey.for_keyword(wire.SA_STATUS)
#: How long a leaf keeps trying to deliver its final report (its root may start a moment
#: after it, or be terminated by hand).
_FINAL_REPORT_TIMEOUT = timedelta(minutes=10)


@workflow.defn(name=wire.BATCH_WORKFLOW)
class BatchWorkflow:
    """Runs a batch (a root, or a lone leaf) or one leaf of it until every task has ended."""

    @workflow.init
    def __init__(self, inp: wire.BatchInput) -> None:
        self._inp = inp
        self._status = "active"
        self._events = StreamEmitter(
            inp.owner_id, {"batch_id": inp.batch_id, "owner_id": inp.owner_id}
        )
        self._leaf = Leaf(inp, self._events, self._changed) if inp.is_leaf else None
        self._announcer = Announcer(inp, self._events) if inp.report_to is None else None
        self._root = None if inp.is_leaf else Root(inp, self._changed, self._tasks_cancelled)
        self._dirty = False

    @workflow.run
    async def run(self, inp: wire.BatchInput) -> wire.BatchSnapshot:
        reporter = None
        if self._leaf is not None and inp.report_to is not None:
            reporter = asyncio.create_task(self._report_progress())
        try:
            await (self._leaf.run() if self._leaf is not None else self._root_run())
        except BaseException as err:
            if not is_cancelled_exception(err):
                raise
            await self._stop()
            await self._finish("cancelled", reporter)
            raise
        await self._finish("completed", reporter)
        return self.snapshot()

    async def _root_run(self) -> None:
        assert self._root is not None
        await self._root.run()

    # -- queries and signals ---------------------------------------------------------------

    @workflow.query(name=wire.BATCH_SNAPSHOT_QUERY)
    def snapshot(self) -> wire.BatchSnapshot:
        """The batch's current counters and status."""
        inp = self._inp
        results = None
        if inp.collect_results and self._leaf is not None:
            results = [self._leaf.results[i] for i in sorted(self._leaf.results)]
        return wire.BatchSnapshot(
            batch_id=inp.batch_id,
            owner_id=inp.owner_id,
            agent_name=inp.agent_name,
            status=self._status,
            total_tasks=inp.total_tasks,
            max_progress=max_units(inp.max_turns, inp.total_tasks),
            counts=self._counts(),
            created_at=inp.created_at,
            parent_task_id=inp.parent_task_id,
            results=results,
        )

    @workflow.signal(name=wire.TASK_TURN_SIGNAL)
    def task_turn(self, batch: wire.TaskTurnReports) -> None:
        """Tasks finished turns (sent by turn activities; repeats are harmless)."""
        if self._leaf is not None:
            for report in batch.reports:
                self._leaf.turned(report)

    @workflow.signal(name=wire.LEAF_REPORT_SIGNAL)
    def leaf_report(self, report: wire.LeafReport) -> None:
        """A leaf's latest counters."""
        if self._root is not None:
            self._root.report(report)

    @workflow.signal(name=wire.CANCEL_REMAINING_SIGNAL)
    def cancel_remaining(self) -> None:
        """Cancel the tasks still running or waiting and finish (a forking tool's deadline)."""
        if self._leaf is not None:
            self._leaf.stop("the forking tool's timeout passed")

    # -- counting and endings -------------------------------------------------------------------

    def _counts(self) -> wire.BatchCounts:
        if self._leaf is not None:
            return self._leaf.tally.counts()
        assert self._root is not None
        return self._root.counts()

    def _tasks_cancelled(self, task_ids: list[str]) -> None:
        assert self._announcer is not None
        self._announcer.tasks_cancelled(task_ids)

    def _changed(self) -> None:
        self._dirty = True
        if self._announcer is not None and self._status == "active":
            self._announcer.progress(self._counts())

    async def _stop(self) -> None:
        """The batch is being cancelled: stop every task and wait until each has ended."""
        if self._leaf is not None:
            self._leaf.stop("the batch was cancelled")
            await self._leaf.wait()
        else:
            assert self._root is not None
            await self._root.cancel()

    async def _finish(self, status: str, reporter: asyncio.Task[None] | None) -> None:
        self._status = status
        if reporter is not None:
            reporter.cancel()
        if self._inp.track_status:
            workflow.upsert_search_attributes([_STATUS_KEY.value_set(status)])
        if self._announcer is not None:
            self._announcer.ended(self._counts(), status)
        # Every event out before the root hears the end: tasks' ends precede the batch's.
        await self._events.drain()
        if self._inp.report_to is not None:
            await self._report_final()
        await workflow.wait_condition(workflow.all_handlers_finished)

    async def _report_progress(self) -> None:
        """Send this leaf's counters to its root, at most once per interval, and only once
        they have gained ``report_first`` (then ``report_step``) progress units since the
        last report."""
        root = workflow.get_external_workflow_handle(self._inp.report_to or "")
        interval = timedelta(seconds=max(1.0, self._inp.report_every))
        reported, step = 0, self._inp.report_first or self._inp.report_step

        def due() -> bool:
            assert self._leaf is not None
            return self._dirty and self._leaf.tally.done_units() - reported >= step

        while True:
            await workflow.wait_condition(due)
            self._dirty = False
            report = self._report()
            try:
                await root.signal(wire.LEAF_REPORT_SIGNAL, report)
                reported, step = report.counts.done_units, self._inp.report_step
            except Exception:  # noqa: BLE001 - the root starts just after its leaves; next time
                self._dirty = True
            await workflow.sleep(interval)

    async def _report_final(self) -> None:
        """Deliver this leaf's final counters to its root (which may start a moment later)."""
        root = workflow.get_external_workflow_handle(self._inp.report_to or "")
        deadline = workflow.now() + _FINAL_REPORT_TIMEOUT
        delay = 1.0
        while True:
            try:
                await root.signal(wire.LEAF_REPORT_SIGNAL, self._report(final=True))
                return
            except Exception as err:  # noqa: BLE001
                if workflow.now() + timedelta(seconds=delay) > deadline:
                    workflow.logger.warning("could not report to %s: %s", self._inp.report_to, err)
                    return
            await workflow.sleep(delay)
            delay = min(delay * 2, 30.0)

    def _report(self, *, final: bool = False) -> wire.LeafReport:
        report = wire.LeafReport(chunk=self._inp.chunk_index, counts=self._counts(), final=final)
        if final and self._leaf is not None and self._leaf.unannounced:
            report.cancelled = self._leaf.unannounced
        return report
