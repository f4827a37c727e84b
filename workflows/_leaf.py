"""A leaf's job in a batch: run its tasks as child workflows, a window at a time.

At most ``max_running`` tasks run at once (a sliding window, as in samples-python's
``batch_sliding_window``): one starts when one ends, so a batch of 10,000 never has 10,000
task workflows churning a worker's cache. At most ``max_starting`` starts are in flight
(``DEFAULT_MAX_STARTING`` if unset): the server starts a parent's children one by one, tens a
second, and a start cannot be withdrawn once sent, so a long queue of them would keep tasks
starting for many seconds after a cancel (500 in flight took 27 s to drain).

A leaf of a root started with ``wait_for_go`` starts no task until its root says so
(``go``): only a few leaves of a batch run tasks at once (``factorial._batches``).

Each task's end is announced here, from the child's result: ``agent_output`` and
``run_completed``, ``run_failed`` or ``run_cancelled``, once. A stopped leaf of a root leaves
its cancelled tasks' ``run_cancelled`` to the root, in its final report: one signal at its
end instead of two (its events, then the report), which on 2 cores took a second off
cancelling a 20,000-task batch.

Stopping (the batch is cancelled, or a forking tool's deadline passed): no task starts any
more, and each running one is asked to cancel; a task whose start is still in flight is
cancelled as soon as it has started, so none slips through. The leaf then waits until every
task it started has ended, and counts the ones it never started as cancelled.

The running tasks are asked by one local activity (``factorial.workflows._cancel``), not by
``ChildWorkflowHandle.cancel``: cancelling a 20,000-task batch on 2 cores, the 100 leaves'
confirmations of those requests queued behind one another for seconds.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from temporalio import workflow
from temporalio.common import WorkflowIDReusePolicy
from temporalio.exceptions import (
    ApplicationError,
    ChildWorkflowError,
    FailureError,
    WorkflowAlreadyStartedError,
    is_cancelled_exception,
)

from factorial.workflows._announce import announce_end
from factorial.workflows._cancel import cancel_workflows
from factorial.workflows._emitter import StreamEmitter

with workflow.unsafe.imports_passed_through():
    from pydantic import ValidationError

    from factorial import _wire as wire
    from factorial._budget import tighter
    from factorial._progress import Tally


#: Task starts in flight at once, for a leaf not told otherwise (sub-agent batches).
DEFAULT_MAX_STARTING = 20
#: Longest a turn report of a leaf of a root waits to go with others (see ``_start``).
MAX_TURN_REPORT_DELAY = 10.0
#: Leaves stopped before this change cancelled each running task through its handle, and
#: announced every cancelled task themselves.
STOP_PATCH = "leaf-stop-by-local-activity"


class Leaf:
    """Runs one leaf's tasks and keeps their tally."""

    def __init__(
        self, inp: wire.BatchInput, events: StreamEmitter, changed: Callable[[], None]
    ) -> None:
        assert inp.payloads is not None
        self._inp = inp
        self._payloads = inp.payloads
        self._events = events
        self._changed = changed
        self.tally = Tally(inp.max_turns)
        self.results: dict[int, wire.SubTaskResult] = {}
        self._handles: dict[int, workflow.ChildWorkflowHandle[Any, wire.TaskSnapshot]] = {}
        self._running = 0
        self._starting = 0
        self._tasks: set[asyncio.Task[None]] = set()
        self._started: set[int] = set()
        self._stop_reason: str | None = None
        self._cancelling: asyncio.Task[None] | None = None
        self._go = not inp.wait_for_go
        #: Once a leaf of a root stops: the tasks it cancelled, for its root to announce.
        self.unannounced: list[str] | None = None

    @property
    def indices(self) -> range:
        """The batch indices of this leaf's tasks."""
        return range(self._inp.first_index, self._inp.first_index + len(self._payloads))

    async def run(self) -> None:
        """Run every task (a window at a time) until each has ended."""
        window = self._inp.max_running or len(self._payloads)
        starts = self._inp.max_starting or DEFAULT_MAX_STARTING

        def admit() -> bool:
            return (self._running < window and self._starting < starts) or self._stopped

        if not self._go:
            await workflow.wait_condition(lambda: self._go or self._stopped)
        for index, payload in zip(self.indices, self._payloads, strict=True):
            if not admit():
                await workflow.wait_condition(admit)
            if self._stopped:
                break
            self._running += 1
            self._starting += 1  # until its start is confirmed (in ``_execute``)
            self._started.add(index)
            task = asyncio.create_task(self._run_task(index, payload))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        await self.wait()

    def go(self) -> None:
        """The root lets this leaf start its tasks (a repeat changes nothing)."""
        self._go = True

    def stop(self, reason: str) -> None:
        """Start no more tasks and cancel the running ones (see the module docstring)."""
        if self._stopped:
            return
        self._stop_reason = reason
        if not workflow.patched(STOP_PATCH):
            for handle in self._handles.values():
                handle.cancel()
            return
        if self._inp.report_to is not None:
            self.unannounced = []
        if self._handles:
            ids = [wire.task_id_of(self._inp.batch_id, index) for index in self._handles]
            self._cancelling = asyncio.create_task(cancel_workflows(ids))

    async def wait(self) -> None:
        """Wait until every task started has ended; count those never started as cancelled."""
        await workflow.wait_condition(lambda: self._running == 0)
        if self._cancelling is not None:
            await self._cancelling
        if self._stopped:
            for index in self.indices:
                if index not in self._started and index not in self.tally.outcomes:
                    self._end(
                        wire.SubTaskResult(
                            task_id=wire.task_id_of(self._inp.batch_id, index),
                            status="cancelled",
                            error=f"cancelled before it started: {self._stop_reason}",
                        ),
                        index,
                        announce=False,
                    )

    @property
    def _stopped(self) -> bool:
        return self._stop_reason is not None

    @property
    def stopped(self) -> bool:
        """Whether the leaf has been stopped (it starts no more tasks)."""
        return self._stopped

    def spent(self, report: wire.TaskUsageReport) -> None:
        """A task's usage so far, in a batch with a budget (repeats are harmless)."""
        if self.tally.spent(report.index, report.turns, report.usage):
            self._changed()

    def _task_budget(self) -> wire.Budget | None:
        """A task's budget: its agent's, within what the batch's budget has left."""
        inp = self._inp
        left = inp.budget.remaining(self.tally.spent_so_far()[0]) if inp.budget else None
        return tighter(inp.task_budget, left)

    def turned(self, report: wire.TaskTurnReport) -> None:
        """A task's turn activity finished a turn (repeats and reordering are harmless)."""
        index = report.index if report.index is not None else wire.task_index_of(report.task_id)
        if self.tally.turned(index, report.turns):
            self._changed()

    async def _run_task(self, index: int, payload: dict[str, Any]) -> None:
        task_id = wire.task_id_of(self._inp.batch_id, index)
        try:
            result = await self._execute(index, task_id, payload)
        except ChildWorkflowError as err:
            status = "cancelled" if is_cancelled_exception(err) else "failed"
            error = error_text(err)
            if status == "cancelled" and self._stop_reason is not None:
                error = f"cancelled: {self._stop_reason}"
            result = wire.SubTaskResult(
                task_id=task_id, status=status, error=error, usage=failed_usage(err)
            )
        except WorkflowAlreadyStartedError:
            result = wire.SubTaskResult(
                task_id=task_id, status="failed", error=f"a task with id {task_id} already exists"
            )
        except asyncio.CancelledError:
            result = wire.SubTaskResult(task_id=task_id, status="cancelled", error="cancelled")
        finally:
            self._handles.pop(index, None)
            self._running -= 1
        self._end(result, index, announce=True)

    async def _execute(
        self, index: int, task_id: str, payload: dict[str, Any]
    ) -> wire.SubTaskResult:
        try:
            handle = await self._start(index, task_id, payload)
        finally:
            self._starting -= 1
        self._handles[index] = handle
        if self._stopped:  # stopped while this task was starting
            handle.cancel()
        snapshot = await handle
        return wire.SubTaskResult(
            task_id=task_id,
            status="completed",
            output=snapshot.output,
            turn=snapshot.turn,
            usage=snapshot.usage,
        )

    @property
    def _turn_report_delay(self) -> float:
        """How long its tasks' turn reports may wait to go together in one signal.

        A leaf of a root passes its progress on at most every ``report_every`` seconds, so
        turn reports arriving faster are wasted: at W(10000, 3) each of the 50 leaves, four
        tasks running at once, got a signal and a workflow task for 2.7 of every task's 3
        turns (16 of the task's 28 history events were the batch's). A lone leaf announces
        every turn's progress itself: its reports go at once.
        """
        if self._inp.report_to is None:
            return 0.0
        return min(self._inp.report_every, MAX_TURN_REPORT_DELAY)

    async def _start(
        self, index: int, task_id: str, payload: dict[str, Any]
    ) -> workflow.ChildWorkflowHandle[Any, wire.TaskSnapshot]:
        inp = self._inp
        return await workflow.start_child_workflow(
            wire.TASK_WORKFLOW,
            wire.TaskInput(
                task_id=task_id,
                owner_id=inp.owner_id,
                agent_name=inp.agent_name,
                payload=payload,
                policy=inp.policy,
                created_at=inp.created_at,
                batch_id=inp.batch_id,
                parent_task_id=inp.parent_task_id,
                track_status=inp.track_status,
                report_to=workflow.info().workflow_id,
                terminal_events_by_batch=True,
                index=index,
                turn_report_delay=self._turn_report_delay,
                hooks=inp.hooks,
                budget=self._task_budget(),
                report_usage=inp.budget is not None,
            ),
            id=task_id,
            task_queue=inp.task_queue,
            search_attributes=wire.batch_search_attributes(inp, "active"),
            parent_close_policy=workflow.ParentClosePolicy.REQUEST_CANCEL,
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            static_summary=f"{inp.agent_name} task {index} of batch {inp.batch_id}",
            result_type=wire.TaskSnapshot,
        )

    def _end(self, result: wire.SubTaskResult, index: int, *, announce: bool) -> None:
        live = self.tally.live.get(index)
        if result.usage is None and live is not None:  # cancelled: what it last reported
            result = result.model_copy(update={"usage": live})
        self.tally.ended(index, result.status, result.usage)
        if self._inp.collect_results:
            self.results[index] = result
        if announce and result.status == "cancelled" and self.unannounced is not None:
            self.unannounced.append(result.task_id)
        elif announce:
            stopped = result.status == "cancelled" and self._stop_reason is not None
            reason = self._stop_reason if stopped else None
            announce_end(self._events, self._inp.agent_name, result, reason)
        self._changed()


def error_text(err: ChildWorkflowError) -> str:
    """A task's failure as one line: the cause's message, or ``cancelled``."""
    if is_cancelled_exception(err):
        return "cancelled"
    cause = err.cause
    while isinstance(cause, FailureError) and cause.cause is not None and not cause.message:
        cause = cause.cause
    return cause.message if isinstance(cause, FailureError) and cause.message else str(err)


def failed_usage(err: ChildWorkflowError) -> wire.TokenUsage | None:
    """The usage a failed task reports in its failure's details (see ``AgentTaskWorkflow``)."""
    cause = err.cause
    if not isinstance(cause, ApplicationError) or not cause.details:
        return None
    try:
        return wire.TokenUsage.model_validate(cause.details[0])
    except ValidationError:
        return None
