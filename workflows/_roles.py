"""The three roles a ``BatchWorkflow`` plays, one class each; the workflow delegates to its role.

* ``RootRole``, a batch of several leaves: waits for the leaves' reports (``_root.Root``) and
  announces the batch's events (``_announce.Announcer``).
* ``LoneLeafRole``, a batch of one leaf, its own root: runs its tasks (``_leaf.Leaf``) and
  announces the batch's events itself.
* ``LeafOfRootRole``, one leaf of a root's batch: runs its tasks and reports its counters to
  its root (``report_to``), which announces.

Each role runs the batch, stops it when it is cancelled, and finishes it: records the final
status, sends its last events and, for a leaf of a root, its final report. The batch's own
root also stops it early when its join or failure policy says so (``_policy``).
"""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from collections.abc import Callable
from datetime import timedelta

from temporalio import workflow
from temporalio.common import SearchAttributeKey

from factorial.workflows._announce import Announcer
from factorial.workflows._emitter import StreamEmitter
from factorial.workflows._leaf import Leaf
from factorial.workflows._policy import failure_reason, join_reason
from factorial.workflows._root import Root

with workflow.unsafe.imports_passed_through():
    from factorial import _wire as wire

_STATUS_KEY = SearchAttributeKey.for_keyword(wire.SA_STATUS)
#: How long a leaf keeps trying to deliver its final report (its root may start a moment
#: after it, or be terminated by hand).
_FINAL_REPORT_TIMEOUT = timedelta(minutes=10)


def role_for(inp: wire.BatchInput, events: StreamEmitter) -> BatchRole:
    """The role of the batch workflow started with ``inp``."""
    if not inp.is_leaf:
        return RootRole(inp, events)
    if inp.report_to is None:
        return LoneLeafRole(inp, events)
    return LeafOfRootRole(inp, events)


class BatchRole(ABC):
    """What a batch workflow does in its place in the tree; its status."""

    def __init__(self, inp: wire.BatchInput, events: StreamEmitter) -> None:
        self.inp = inp
        self.events = events
        self.status = "active"
        #: Why the batch ends ``failed`` (its failure policy tripped, or its budget was spent:
        #: ``BudgetExceeded: ...``); None otherwise.
        self.reason: str | None = None
        #: Called when the batch's counters change (a root or lone leaf only).
        self.on_change: Callable[[], None] = _nothing

    def ending(self) -> str:
        """How the batch ends once ``run`` returns: ``completed``, or ``failed`` (``reason``)."""
        return "completed" if self.reason is None else "failed"

    @abstractmethod
    async def run(self) -> None:
        """Run until every task of the batch (or of this leaf) has ended."""

    @abstractmethod
    async def stop(self, reason: str = "the batch was cancelled") -> None:
        """Stop every task (the batch is cancelled, or its budget is spent; a leaf's tasks
        are told ``reason``) and wait until each has ended."""

    @abstractmethod
    async def finish(self, status: str) -> None:
        """Record the batch's end (``completed``, ``cancelled`` or ``failed``, with its
        ``reason``) and send what tells of it."""

    @abstractmethod
    def counts(self) -> wire.BatchCounts:
        """The counters of the tasks this role tracks."""

    def results(self) -> list[wire.SubTaskResult] | None:
        """Every task's result, if the batch collects them and this role runs tasks."""
        return None

    def spent(self) -> tuple[wire.TokenUsage, int]:
        """The tokens and turns the batch's tasks have spent so far (for its budget)."""
        counts = self.counts()
        return counts.usage, counts.turns

    @abstractmethod
    def turned(self, reports: wire.TaskTurnReports) -> None:
        """Tasks finished turns (the ``task_turn`` signal)."""

    @abstractmethod
    def leaf_reported(self, report: wire.LeafReport) -> None:
        """A leaf's latest counters (the ``leaf_report`` signal)."""

    def usage_reported(self, report: wire.TaskUsageReport) -> None:
        """A task's usage so far (the ``task_usage`` signal); only a leaf runs tasks."""
        del report

    @abstractmethod
    def go(self) -> None:
        """A leaf waiting for its turn may start its tasks (the ``leaf_go`` signal)."""

    @abstractmethod
    def cancel_remaining(self) -> None:
        """A forking tool's deadline passed (the ``cancel_remaining`` signal)."""

    @abstractmethod
    def _changed(self) -> None:
        """The counters changed."""

    def _record(self, status: str) -> None:
        self.status = status
        if self.inp.track_status:
            workflow.upsert_search_attributes([_STATUS_KEY.value_set(status)])


class _AnnouncingRole(BatchRole):
    """A batch's own root (a root, or a lone leaf): it announces the batch's events."""

    def __init__(self, inp: wire.BatchInput, events: StreamEmitter) -> None:
        super().__init__(inp, events)
        self._announcer = Announcer(inp, events)

    async def finish(self, status: str) -> None:
        self._record(status)
        self._announcer.ended(self.counts(), status, self.reason)
        await self.events.drain()

    def _changed(self) -> None:
        if self.status == "active":
            self._announcer.progress(self.counts())
            self.on_change()


class _LeafRole(BatchRole):
    """A leaf, alone or of a root: it runs tasks (a lone leaf also announces, above)."""

    def __init__(self, inp: wire.BatchInput, events: StreamEmitter) -> None:
        super().__init__(inp, events)
        self.leaf = Leaf(inp, events, self._changed)

    async def run(self) -> None:
        await self.leaf.run()

    async def stop(self, reason: str = "the batch was cancelled") -> None:
        self.leaf.stop(reason)
        await self.leaf.wait()

    def counts(self) -> wire.BatchCounts:
        return self.leaf.tally.counts()

    def spent(self) -> tuple[wire.TokenUsage, int]:
        return self.leaf.tally.spent_so_far()

    def results(self) -> list[wire.SubTaskResult] | None:
        if not self.inp.collect_results:
            return None
        return [self.leaf.results[i] for i in sorted(self.leaf.results)]

    def turned(self, reports: wire.TaskTurnReports) -> None:
        for report in reports.reports:
            self.leaf.turned(report)

    def usage_reported(self, report: wire.TaskUsageReport) -> None:
        self.leaf.spent(report)

    def cancel_remaining(self) -> None:
        self.leaf.stop("the forking tool's timeout passed")

    def go(self) -> None:
        self.leaf.go()

    def leaf_reported(self, report: wire.LeafReport) -> None:
        """A leaf has no leaves: ignored."""


class RootRole(_AnnouncingRole):
    """A batch of several leaves: counts their reports, cancels them, announces."""

    def __init__(self, inp: wire.BatchInput, events: StreamEmitter) -> None:
        super().__init__(inp, events)
        self._root = Root(inp, self._changed, self._leaf_stopped_tasks)
        self._stopping: asyncio.Task[None] | None = None

    async def run(self) -> None:
        await self._root.run()
        if self._stopping is not None:
            await self._stopping

    def _leaf_stopped_tasks(self, task_ids: list[str]) -> None:
        """Announce the tasks a stopped leaf cancelled, and why it was stopped."""
        reason = self.reason or "the batch was cancelled"
        self._announcer.tasks_cancelled(task_ids, reason)

    def _changed(self) -> None:
        if self.status == "active" and self.reason is None and self._stopping is None:
            reason = failure_reason(self.inp, self._root.counts().failed)
            if reason is not None:
                # Too many failed: cancel every leaf (their tasks), then end ``failed``.
                self.reason = reason
                self._stopping = asyncio.create_task(self._root.cancel())
        super()._changed()

    async def stop(self, reason: str = "the batch was cancelled") -> None:
        await self._root.cancel()

    def counts(self) -> wire.BatchCounts:
        return self._root.counts()

    def leaf_reported(self, report: wire.LeafReport) -> None:
        self._root.report(report)

    def turned(self, reports: wire.TaskTurnReports) -> None:
        """A root runs no tasks: ignored."""

    def cancel_remaining(self) -> None:
        """A root runs no tasks (sub-agent batches are lone leaves): ignored."""

    def go(self) -> None:
        """A root waits for no one: ignored."""


class LoneLeafRole(_LeafRole, _AnnouncingRole):
    """A batch of one leaf, its own root: runs its tasks and announces the batch's events."""

    def _changed(self) -> None:
        inp = self.inp
        if self.status == "active" and not self.leaf.stopped and (inp.join or inp.on_failure):
            tally = self.leaf.tally
            failed = failure_reason(inp, tally.count("failed"))
            if failed is not None:
                self.reason = failed
                self.leaf.stop(failed)
            else:
                joined = join_reason(inp, tally.count("completed"))
                if joined is not None:
                    self.leaf.stop(joined)
        super()._changed()


class LeafOfRootRole(_LeafRole):
    """One leaf of a root's batch: runs its tasks and reports its counters to the root."""

    def __init__(self, inp: wire.BatchInput, events: StreamEmitter) -> None:
        super().__init__(inp, events)
        assert inp.report_to is not None
        self._root = workflow.get_external_workflow_handle(inp.report_to)
        self._dirty = False
        self._reporter: asyncio.Task[None] | None = None
        self._failed_reported = 0

    async def run(self) -> None:
        self._reporter = asyncio.create_task(self._report_progress())
        await super().run()

    async def finish(self, status: str) -> None:
        if self._reporter is not None:
            self._reporter.cancel()
        self._record(status)
        # Every event out before the root hears the end: tasks' ends precede the batch's.
        await self.events.drain()
        await self._report_final()

    def _changed(self) -> None:
        self._dirty = True

    async def _report_progress(self) -> None:
        """Send this leaf's counters to its root, at most once per interval, and only once
        they have gained ``report_first`` (then ``report_step``) progress units since the
        last report."""
        interval = timedelta(seconds=max(1.0, self.inp.report_every))
        reported, step = 0, self.inp.report_first or self.inp.report_step

        # A batch with a budget hears of its leaves' usage, not only of their progress.
        budgeted = self.inp.budget is not None

        def due() -> bool:
            gained = self.leaf.tally.done_units() - reported >= step
            return self._dirty and (gained or budgeted or self._failed_unreported())

        while True:
            await workflow.wait_condition(due)
            self._dirty = False
            report = self._report()
            try:
                await self._root.signal(wire.LEAF_REPORT_SIGNAL, report)
                reported, step = report.counts.done_units, self.inp.report_step
                self._failed_reported = report.counts.failed
            except Exception:  # noqa: BLE001 - the root starts just after its leaves; next time
                self._dirty = True
            await workflow.sleep(interval)

    def _failed_unreported(self) -> bool:
        """A task failed since the last report, and the root counts failures (its policy)."""
        if self.inp.on_failure is None:
            return False
        return self.leaf.tally.count("failed") > self._failed_reported

    async def _report_final(self) -> None:
        """Deliver this leaf's final counters to its root (which may start a moment later)."""
        deadline = workflow.now() + _FINAL_REPORT_TIMEOUT
        delay = 1.0
        while True:
            try:
                await self._root.signal(wire.LEAF_REPORT_SIGNAL, self._report(final=True))
                return
            except Exception as err:  # noqa: BLE001
                if workflow.now() + timedelta(seconds=delay) > deadline:
                    workflow.logger.warning("could not report to %s: %s", self.inp.report_to, err)
                    return
            await workflow.sleep(delay)
            delay = min(delay * 2, 30.0)

    def _report(self, *, final: bool = False) -> wire.LeafReport:
        report = wire.LeafReport(chunk=self.inp.chunk_index, counts=self.counts(), final=final)
        if final and self.leaf.unannounced:
            report.cancelled = self.leaf.unannounced
        return report


def _nothing() -> None:
    """No one listens."""
