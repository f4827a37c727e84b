"""Reading a batch back: its ``Batch`` record, from its workflow's snapshot or its memo.

A running batch answers a query; one with no worker to answer, or ended, is read from its
memo (``factorial.workflows._summary``) or its result, so ``get_batch`` works without a
worker for every batch recorded since the memo. Starting batches is ``factorial._batches``.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from temporalio.client import (
    RPCTimeoutOrCancelledError,
    WorkflowExecutionDescription,
    WorkflowExecutionStatus,
    WorkflowHandle,
)
from temporalio.service import RPCError

from factorial import _wire as wire
from factorial._progress import percent
from factorial._tasks import QUERY_TIMEOUT
from factorial.task import Batch, BatchMetadata

__all__ = ["SUMMARY_QUERY_TIMEOUT", "batch_from", "read", "recorded"]

#: How long ``get_batch`` waits for a worker to answer before it reads the batch's memo.
SUMMARY_QUERY_TIMEOUT = timedelta(seconds=0.5)


async def read(
    handle: WorkflowHandle[Any, Any], description: WorkflowExecutionDescription
) -> Batch:
    """The batch as its workflow counts it, with or without a worker.

    A running batch is queried, briefly (``SUMMARY_QUERY_TIMEOUT``); if no worker answers, its
    memo tells (``factorial.workflows._summary``: at most a couple of seconds behind). An
    ended batch is read as ``recorded`` reads it. Only batches from before the memo need a
    worker to answer a query.
    """
    running = description.status == WorkflowExecutionStatus.RUNNING
    if not running:
        found = await recorded(handle, description)
        if found is not None:
            return found
    memo = await _summary(description) if running else None
    try:
        snapshot = await handle.query(
            wire.BATCH_SNAPSHOT_QUERY,
            result_type=wire.BatchSnapshot,
            rpc_timeout=SUMMARY_QUERY_TIMEOUT if memo is not None else QUERY_TIMEOUT,
        )
    except (RPCError, RPCTimeoutOrCancelledError):
        if memo is None:
            raise
        return batch_from(memo.snapshot())
    return batch_from(snapshot)


async def recorded(
    handle: WorkflowHandle[Any, Any], description: WorkflowExecutionDescription
) -> Batch | None:
    """The batch as the server keeps it, no worker asked; None for one from before the memo.

    A completed batch's result is in its history; any other's counts are in its memo (a
    cancelled or failed one's final counts, a running one's a couple of seconds behind).
    """
    if description.status == WorkflowExecutionStatus.COMPLETED:
        snapshot: wire.BatchSnapshot = await handle.result()
        return batch_from(snapshot)
    memo = await _summary(description)
    return batch_from(memo.snapshot()) if memo is not None else None


async def _summary(description: WorkflowExecutionDescription) -> wire.BatchSummary | None:
    """The summary the batch keeps in its memo; None for a batch from before it had one."""
    found: wire.BatchSummary | None = await description.memo_value(
        wire.BATCH_SUMMARY_MEMO, None, type_hint=wire.BatchSummary
    )
    if found is None:
        return None
    if description.status in _CLOSED_STATUS:
        # A batch closed some other way (terminated, failed) never wrote its end.
        status = _CLOSED_STATUS[description.status]
        if found.status == "active":
            found = found.model_copy(update={"status": status})
    return found


#: How a batch that closed without writing its end is reported. One terminated by hand
#: reads as cancelled, as its listing does (``factorial._listing.batch_info``).
_CLOSED_STATUS = {
    WorkflowExecutionStatus.CANCELED: "cancelled",
    WorkflowExecutionStatus.FAILED: "failed",
    WorkflowExecutionStatus.TERMINATED: "cancelled",
    WorkflowExecutionStatus.TIMED_OUT: "failed",
}


def batch_from(snapshot: wire.BatchSnapshot) -> Batch:
    """The public ``Batch`` record of a batch workflow's snapshot."""
    task_ids = [wire.task_id_of(snapshot.batch_id, i) for i in range(snapshot.total_tasks)]
    terminal = set(snapshot.counts.terminal_indices)
    status = snapshot.status
    return Batch(
        id=snapshot.batch_id,
        task_ids=task_ids,
        remaining_task_ids=[]
        if status != "active"
        else [t for i, t in enumerate(task_ids) if i not in terminal],
        progress=100.0
        if status == "completed"
        else percent(snapshot.counts.done_units, snapshot.max_progress),
        metadata=BatchMetadata(
            owner_id=snapshot.owner_id,
            created_at=snapshot.created_at,
            total_tasks=snapshot.total_tasks,
            max_progress=snapshot.max_progress,
            status=status,
            parent_id=snapshot.parent_task_id,
            completed=snapshot.counts.completed,
            failed=snapshot.counts.failed,
            cancelled=snapshot.counts.cancelled,
            usage=snapshot.counts.usage,
            retry_of=snapshot.retry_of,
            reason=snapshot.reason,
        ),
    )
