"""``LegacyBatchWorkflow``: batches started before ``AgentBatchWorkflow`` replaced it (0.1).

Frozen: it stays registered (under its old type name, ``BatchWorkflow``) only so batches that
were running when a worker was upgraded can finish; new batches are ``AgentBatchWorkflow``
(``factorial.workflows.batch``). Remove it once no ``BatchWorkflow`` runs anywhere:
``temporal workflow list --query 'WorkflowType="BatchWorkflow" AND ExecutionStatus="Running"'``.
The one change since 0.1, behind ``workflow.patched``: every leaf drains its events before it
ends (a leaf used to drop its last tasks' terminal events).

The original description follows.


Why a tree: one parent workflow admits children serially (tens per second) and Temporal
caps a run at 2,000 pending children and ~50k history events. So a batch of at most
``chunk`` tasks is a single *leaf* that starts its tasks as child workflows; a larger one is
a *root* that receives its payloads in chunks (``add_chunk`` updates, so no single message
carries them all) and starts one leaf per chunk. Leaves admit in parallel, each stays a
few thousand history events long, and the root only sees one throttled progress signal per
leaf now and then.

Counting: each task's turn activity signals its leaf (``task_turn``) with the turns it has
finished; terminal outcomes come from the child results. With ``max_turns`` the batch's
maximum progress is ``max_turns * total_tasks`` and a task that ends early counts all its
turns; without it, each terminal task counts one. Completed, failed and cancelled all
count, and a failing task never stops the batch. The root (a lone leaf is its own root)
publishes ``batch_progress`` on every change, then ``batch_completed`` or
``batch_cancelled`` exactly once.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import (
    SearchAttributeKey,
    WorkflowIDReusePolicy,
)
from temporalio.exceptions import (
    ApplicationError,
    ChildWorkflowError,
    is_cancelled_exception,
)

from factorial.workflows._announce import announce_end
from factorial.workflows._emitter import StreamEmitter
from factorial.workflows._leaf import error_text

with workflow.unsafe.imports_passed_through():
    from factorial import _wire as wire
    from factorial import events as ev

_CHUNK_TIMEOUT = timedelta(minutes=10)
#: Leaves drain their events before they end (they used to drop the last signals).
LEAF_DRAIN_PATCH = "legacy-leaf-drains-events"
_STATUS_KEY = SearchAttributeKey.for_keyword(wire.SA_STATUS)


@workflow.defn(name=wire.LEGACY_BATCH_WORKFLOW)
class LegacyBatchWorkflow:
    """Runs a batch (root) or one chunk of it (leaf) until every task is terminal."""

    @workflow.init
    def __init__(self, inp: wire.BatchInput) -> None:
        self._inp = inp
        self._is_root = inp.report_to is None
        self._status = "active"
        # Leaf state: turns finished and outcome per task, by batch index.
        self._turns: dict[int, int] = {}
        self._outcomes: dict[int, str] = {}
        self._results: dict[int, wire.SubTaskResult] = {}
        self._dirty = False
        # Root state: payload chunks received, and each leaf's latest counters.
        self._chunks: dict[int, wire.BatchChunk] = {}
        self._leaf_counts: dict[int, wire.BatchCounts] = {}
        self._children: list[asyncio.Task[None]] = []
        self._events = StreamEmitter(
            inp.owner_id, {"batch_id": inp.batch_id, "owner_id": inp.owner_id}
        )
        self._last_progress: float | None = None
        self._last_emitted: tuple[float, int] | None = None

    @workflow.run
    async def run(self, inp: wire.BatchInput) -> wire.BatchSnapshot:
        try:
            if inp.payloads is not None:
                await self._run_tasks(inp.payloads)
            else:
                await self._run_leaves()
        except BaseException as err:
            if not is_cancelled_exception(err):
                raise
            await self._stop_children()
            await self._finish("cancelled", ev.BATCH_CANCELLED)
            raise
        await self._finish("completed", ev.BATCH_COMPLETED)
        return self.snapshot()

    # -- queries, updates, signals -------------------------------------------------------

    @workflow.query(name=wire.BATCH_SNAPSHOT_QUERY)
    def snapshot(self) -> wire.BatchSnapshot:
        """The batch's current counters and status."""
        return wire.BatchSnapshot(
            batch_id=self._inp.batch_id,
            owner_id=self._inp.owner_id,
            agent_name=self._inp.agent_name,
            status=self._status,
            total_tasks=self._inp.total_tasks,
            max_progress=self._max_units(),
            counts=self._counts(),
            created_at=self._inp.created_at,
            parent_task_id=self._inp.parent_task_id,
            results=[self._results[i] for i in sorted(self._results)]
            if self._inp.collect_results
            else None,
        )

    @workflow.update(name=wire.ADD_CHUNK_UPDATE)
    def add_chunk(self, chunk: wire.BatchChunk) -> None:
        """Receive one chunk of a large batch's payloads."""
        self._chunks[chunk.index] = chunk

    @add_chunk.validator
    def _validate_chunk(self, chunk: wire.BatchChunk) -> None:
        if self._inp.payloads is not None or not 0 <= chunk.index < self._inp.chunk_count:
            raise ValueError(f"unexpected chunk {chunk.index}")
        if chunk.index in self._chunks:
            raise ValueError(f"chunk {chunk.index} already received")
        if self._status != "active":
            raise ValueError(f"chunk {chunk.index} refused: the batch is {self._status}")

    @workflow.signal(name=wire.TASK_TURN_SIGNAL)
    def task_turn(self, batch: wire.TaskTurnReports) -> None:
        """Tasks finished turns (sent by turn activities; repeats are harmless)."""
        changed = False
        for report in batch.reports:
            index = int(report.task_id.rsplit("-", 1)[1])
            if report.turns > self._turns.get(index, 0):
                self._turns[index] = report.turns
                changed = True
        if changed:
            self._changed()

    @workflow.signal(name=wire.CANCEL_REMAINING_SIGNAL)
    def cancel_remaining(self) -> None:
        """Cancel the tasks still running and finish (a forking tool's deadline passed)."""
        for child in self._children:
            child.cancel()

    @workflow.signal(name=wire.SUB_PROGRESS_SIGNAL)
    def sub_batch_progress(self, progress: wire.SubBatchProgress) -> None:
        """A leaf's latest counters (absolute, so a late or repeated one is harmless)."""
        current = self._leaf_counts.get(progress.chunk)
        if current is None or progress.counts.done_units >= current.done_units:
            self._leaf_counts[progress.chunk] = progress.counts
            self._changed()

    # -- leaf: run the tasks ---------------------------------------------------------------

    async def _run_tasks(self, payloads: list[dict[str, Any]]) -> None:
        self._children = [
            asyncio.create_task(self._run_task(self._inp.first_index + i, payload))
            for i, payload in enumerate(payloads)
        ]
        reporter = None if self._is_root else asyncio.create_task(self._report_to_root())
        try:
            await asyncio.gather(*self._children)
        finally:
            if reporter is not None:
                reporter.cancel()

    async def _run_task(self, index: int, payload: dict[str, Any]) -> None:
        inp = self._inp
        task_id = wire.task_id_of(inp.batch_id, index)
        outcome = "failed"
        result = wire.SubTaskResult(task_id=task_id, status="failed")
        try:
            snapshot = await workflow.execute_child_workflow(
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
                ),
                id=task_id,
                task_queue=inp.task_queue,
                search_attributes=wire.batch_search_attributes(inp, "active"),
                parent_close_policy=workflow.ParentClosePolicy.REQUEST_CANCEL,
                id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
                static_summary=f"{inp.agent_name} task {index} of batch {inp.batch_id}",
                result_type=wire.TaskSnapshot,
            )
            outcome = "completed"
            result = wire.SubTaskResult(
                task_id=task_id, status=outcome, output=snapshot.output, turn=snapshot.turn
            )
        except ChildWorkflowError as err:
            outcome = "cancelled" if is_cancelled_exception(err) else "failed"
            result = wire.SubTaskResult(task_id=task_id, status=outcome, error=error_text(err))
        except asyncio.CancelledError:
            outcome = "cancelled"
            result = wire.SubTaskResult(task_id=task_id, status=outcome, error="cancelled")
            if not self._cancelling_remaining():
                raise
        finally:
            self._outcomes[index] = outcome
            if inp.collect_results:
                self._results[index] = result
            announce_end(self._events, self._inp.agent_name, result)
            self._changed()

    def _cancelling_remaining(self) -> bool:
        """True when tasks are being cancelled by ``cancel_remaining``, not the batch."""
        return workflow.cancellation_reason() is None

    async def _report_to_root(self) -> None:
        """Send this leaf's counters to the root, at most once per interval."""
        root = workflow.get_external_workflow_handle(self._inp.batch_id)
        interval = timedelta(seconds=max(1.0, self._inp.chunk_count / 2))
        chunk = self._inp.chunk_index
        while True:
            await workflow.wait_condition(lambda: self._dirty)
            self._dirty = False
            await root.signal(
                wire.SUB_PROGRESS_SIGNAL, wire.SubBatchProgress(chunk=chunk, counts=self._counts())
            )
            await workflow.sleep(interval)

    # -- root: run one leaf per chunk --------------------------------------------------------

    async def _run_leaves(self) -> None:
        launched: set[int] = set()
        while len(launched) < self._inp.chunk_count:
            try:
                await workflow.wait_condition(
                    lambda: len(self._chunks) > len(launched), timeout=_CHUNK_TIMEOUT
                )
            except TimeoutError:
                await self._stop_children()
                raise ApplicationError(
                    f"only {len(self._chunks)} of {self._inp.chunk_count} payload chunks "
                    f"arrived within {_CHUNK_TIMEOUT}",
                    type=wire.FailureType.BATCH_INCOMPLETE,
                    non_retryable=True,
                ) from None
            for index in sorted(set(self._chunks) - launched):
                launched.add(index)
                self._children.append(asyncio.create_task(self._run_leaf(self._chunks[index])))
        await asyncio.gather(*self._children)

    async def _run_leaf(self, chunk: wire.BatchChunk) -> None:
        inp = self._inp
        leaf = inp.model_copy(
            update={
                "payloads": chunk.payloads,
                "first_index": chunk.first_index,
                "report_to": inp.batch_id,
                "chunk_index": chunk.index,
                "total_tasks": len(chunk.payloads),
            }
        )
        try:
            result = await workflow.execute_child_workflow(
                wire.LEGACY_BATCH_WORKFLOW,
                leaf,
                id=wire.leaf_id_of(inp.batch_id, chunk.index),
                result_type=wire.BatchSnapshot,
                parent_close_policy=workflow.ParentClosePolicy.REQUEST_CANCEL,
                search_attributes=wire.batch_search_attributes(inp, "active"),
                static_summary=f"part {chunk.index} of batch {inp.batch_id}: "
                f"tasks {chunk.first_index}-{chunk.first_index + len(chunk.payloads) - 1}",
            )
            self._leaf_counts[chunk.index] = result.counts
        except ChildWorkflowError:
            # The leaf itself ended abnormally: its unfinished tasks count as failed.
            self._leaf_counts[chunk.index] = self._settle_lost_leaf(chunk)
        self._changed()

    def _settle_lost_leaf(self, chunk: wire.BatchChunk) -> wire.BatchCounts:
        known = self._leaf_counts.get(chunk.index, wire.BatchCounts())
        indices = range(chunk.first_index, chunk.first_index + len(chunk.payloads))
        lost = [i for i in indices if i not in set(known.terminal_indices)]
        per_task = self._inp.max_turns or 1
        return wire.BatchCounts(
            done_units=len(chunk.payloads) * per_task,
            completed=known.completed,
            failed=known.failed + len(lost),
            cancelled=known.cancelled,
            terminal_indices=list(indices),
        )

    # -- counting, events, endings -------------------------------------------------------------

    def _max_units(self) -> int:
        return (self._inp.max_turns or 1) * self._inp.total_tasks

    def _counts(self) -> wire.BatchCounts:
        if self._inp.payloads is None:
            total = wire.BatchCounts()
            for counts in self._leaf_counts.values():
                total.done_units += counts.done_units
                total.completed += counts.completed
                total.failed += counts.failed
                total.cancelled += counts.cancelled
                total.terminal_indices.extend(counts.terminal_indices)
            return total
        max_turns = self._inp.max_turns
        if max_turns:
            done = sum(
                max_turns if i in self._outcomes else min(self._turns.get(i, 0), max_turns)
                for i in set(self._turns) | set(self._outcomes)
            )
        else:
            done = len(self._outcomes)
        outcomes = list(self._outcomes.values())
        return wire.BatchCounts(
            done_units=done,
            completed=outcomes.count("completed"),
            failed=outcomes.count("failed"),
            cancelled=outcomes.count("cancelled"),
            terminal_indices=sorted(self._outcomes),
        )

    def _changed(self) -> None:
        self._dirty = True
        if self._is_root and self._status == "active":
            self._emit_progress()

    def _emit_progress(self) -> None:
        counts = self._counts()
        progress = round(100.0 * counts.done_units / max(1, self._max_units()), 2)
        ended = counts.completed + counts.failed + counts.cancelled
        if (progress, ended) == self._last_emitted:
            return
        self._last_emitted = (progress, ended)
        self._last_progress = progress
        self._events.emit(
            ev.BATCH_PROGRESS, coalesce=True, **self._event_fields(counts, progress, "active")
        )

    def _event_fields(
        self, counts: wire.BatchCounts, progress: float, status: str
    ) -> dict[str, Any]:
        return {
            "agent_name": self._inp.agent_name,
            "progress": progress,
            "completed_tasks": counts.completed + counts.failed + counts.cancelled,
            "total_tasks": self._inp.total_tasks,
            "status": status,
            **({"parent_task_id": self._inp.parent_task_id} if self._inp.parent_task_id else {}),
        }

    async def _stop_children(self) -> None:
        """Cancel every child still running and wait until each has ended."""
        for child in self._children:
            child.cancel()
        for child in self._children:
            try:
                await child
            except BaseException as err:  # noqa: BLE001 - each child's end is recorded already
                if not is_cancelled_exception(err) and not isinstance(err, ChildWorkflowError):
                    raise

    async def _finish(self, status: str, event_type: str) -> None:
        self._status = status
        if self._inp.track_status:
            workflow.upsert_search_attributes([_STATUS_KEY.value_set(status)])
        if self._is_root:
            counts = self._counts()
            progress = 100.0 if status == "completed" else (self._last_progress or 0.0)
            if status == "completed" and self._last_progress != 100.0:
                self._events.emit(
                    ev.BATCH_PROGRESS,
                    coalesce=True,
                    **self._event_fields(counts, 100.0, "active"),
                )
            self._events.emit(event_type, **self._event_fields(counts, progress, status))
            await self._events.drain()
        elif workflow.patched(LEAF_DRAIN_PATCH):
            await self._events.drain()
        await workflow.wait_condition(workflow.all_handlers_finished)
