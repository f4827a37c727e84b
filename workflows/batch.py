"""``AgentBatchWorkflow``: many agent tasks tracked as one group.

Why a tree: one parent workflow admits children serially (tens per second), and Temporal
caps a run at 2,000 pending children and ~50k history events. So a batch of at most
``batch_chunk_size`` tasks is a single *leaf* (``factorial.workflows._leaf``), its own root;
a larger one is a *root* (``factorial.workflows._root``) over one leaf per chunk. The client
starts the leaves, each with its own payloads, then the root: payloads never pass through one
history, and leaves admit their tasks in parallel. Three leaves run tasks at a time; the
others wait until the root lets them go (``leaf_go``), one each time a leaf ends.

Counting (``factorial._progress``): turn activities report finished turns to their leaf
(``task_turn``), outcomes come from the tasks' results, leaves report to the root
(``leaf_report``, throttled, then once final). The root, or a lone leaf, announces
(``factorial.workflows._announce``) ``batch_progress`` on every change, then ``batch_completed`` or
``batch_cancelled`` exactly once, after every task's terminal event.

Which of the three roles a run plays (root, lone leaf, or leaf of a root) is one class each
in ``factorial.workflows._roles``; the workflow keeps the signals and queries and delegates.
A root or lone leaf also keeps its summary in its memo (``factorial.workflows._summary``), so
``get_batch`` answers without a worker.

Cancelling a batch cancels its leaves, which start no more tasks and cancel the running ones;
it ends once every task it started has ended. A failing task never stops the batch, unless
its ``on_failure`` policy says so: then the rest are cancelled and it ends ``failed``
(``factorial.workflows._policy``); a sub-agent batch's ``join`` ends it early, ``completed``.

A batch with a budget (``factorial._budget``) hears each task's usage after every turn
(``task_usage``); once the budget is spent it stops like a cancelled batch and ends
``failed``. Whichever stopped it, budget or failure policy, ``batch_failed`` and the batch's
``reason`` say why (the role keeps it: ``BatchRole.reason``).
"""

from __future__ import annotations

import asyncio

from temporalio import workflow
from temporalio.exceptions import is_cancelled_exception

from factorial.workflows._emitter import StreamEmitter
from factorial.workflows._roles import role_for
from factorial.workflows._summary import SummaryMemo

with workflow.unsafe.imports_passed_through():
    from factorial import _wire as wire
    from factorial._progress import max_units


#: A batch with a budget watches its tasks' usage and stops when it is spent.
BUDGET_PATCH = "batch-budget"


@workflow.defn(name=wire.BATCH_WORKFLOW)
class BatchWorkflow:
    """Runs a batch (a root, or a lone leaf) or one leaf of it until every task has ended."""

    @workflow.init
    def __init__(self, inp: wire.BatchInput) -> None:
        self._inp = inp
        self._events = StreamEmitter(
            inp.owner_id, {"batch_id": inp.batch_id, "owner_id": inp.owner_id}
        )
        self._role = role_for(inp, self._events)
        # The batch's own root keeps its summary in its memo, readable without a worker.
        self._summary = SummaryMemo(self.snapshot) if inp.report_to is None else None
        if self._summary is not None:
            self._role.on_change = self._summary.changed
        #: Why the batch's budget is spent (``BudgetExceeded: ...``), once it is.
        self._over: str | None = None
        if inp.budget is not None and inp.report_to is None:
            self._role.on_change = self._changed_with_budget

    @workflow.run
    async def run(self, inp: wire.BatchInput) -> wire.BatchSnapshot:
        if self._summary is not None:
            self._summary.start()
        try:
            await self._run_role()
        except BaseException as err:
            if not is_cancelled_exception(err):
                raise
            await self._role.stop()
            await self._finish("cancelled")
            raise
        await self._finish(self._role.ending())
        return self.snapshot()

    async def _run_role(self) -> None:
        """Run the batch; stop it once its budget is spent (``factorial._budget``).

        Once the budget is spent the batch starts no more tasks, cancels the running ones
        (and through them their sub-agents), waits until each has ended, and ends ``failed``
        (the role's ``reason``). A batch whose tasks all ended before it heard the budget was
        spent fails too, unless they all completed. A batch its failure policy stopped first
        keeps that reason.
        """
        budgeted = self._inp.budget is not None and self._inp.report_to is None
        if not budgeted or not workflow.patched(BUDGET_PATCH):
            await self._role.run()
            return
        runner = asyncio.create_task(self._role.run())
        await workflow.wait_condition(lambda: runner.done() or self._over is not None)
        if runner.done():
            await runner
            # Every task ended on its own: the batch failed only if its budget is spent and
            # a task did not complete (say, one its share of the budget stopped).
            counts = self._role.counts()
            if self._over is not None and counts.completed < self._inp.total_tasks:
                self._role.reason = self._role.reason or self._over
            return
        assert self._over is not None
        if self._role.reason is None:
            self._role.reason = self._over
            await self._role.stop(self._over)
        await runner

    def _changed_with_budget(self) -> None:
        if self._summary is not None:
            self._summary.changed()
        if self._over is None and self._inp.budget is not None:
            self._over = self._inp.budget.error(*self._role.spent())

    async def _finish(self, status: str) -> None:
        await self._role.finish(status)
        if self._summary is not None:
            self._summary.final()
        await workflow.wait_condition(workflow.all_handlers_finished)

    # -- queries and signals ---------------------------------------------------------------

    @workflow.query(name=wire.BATCH_SNAPSHOT_QUERY)
    def snapshot(self) -> wire.BatchSnapshot:
        """The batch's current counters and status."""
        inp = self._inp
        return wire.BatchSnapshot(
            batch_id=inp.batch_id,
            owner_id=inp.owner_id,
            agent_name=inp.agent_name,
            status=self._role.status,
            total_tasks=inp.total_tasks,
            max_progress=max_units(inp.max_turns, inp.total_tasks),
            counts=self._role.counts(),
            created_at=inp.created_at,
            parent_task_id=inp.parent_task_id,
            results=self._role.results(),
            retry_of=inp.retry_of,
            reason=self._role.reason,
        )

    @workflow.signal(name=wire.TASK_TURN_SIGNAL)
    def task_turn(self, batch: wire.TaskTurnReports) -> None:
        """Tasks finished turns (sent by turn activities; repeats are harmless)."""
        self._role.turned(batch)

    @workflow.signal(name=wire.TASK_USAGE_SIGNAL)
    def task_usage(self, report: wire.TaskUsageReport) -> None:
        """A task's usage so far, in a batch with a budget (sent by its task workflow)."""
        self._role.usage_reported(report)

    @workflow.signal(name=wire.LEAF_REPORT_SIGNAL)
    def leaf_report(self, report: wire.LeafReport) -> None:
        """A leaf's latest counters."""
        self._role.leaf_reported(report)

    @workflow.signal(name=wire.LEAF_GO_SIGNAL)
    def leaf_go(self) -> None:
        """A leaf waiting for its turn may start its tasks (sent by its root)."""
        self._role.go()

    @workflow.signal(name=wire.CANCEL_REMAINING_SIGNAL)
    def cancel_remaining(self) -> None:
        """Cancel the tasks still running or waiting and finish (a forking tool's deadline)."""
        self._role.cancel_remaining()
