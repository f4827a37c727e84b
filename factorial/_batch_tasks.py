"""A batch's tasks one by one: how each ended, and retrying the ones that failed.

Each task's outcome is read from its own workflow (its description, and its result from
history once it has ended), so no worker is needed and nothing lags as visibility would. A
batch's payloads are read back from the start input of its leaves (a lone leaf is the batch
itself), which history keeps: a retry re-runs exactly what failed.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

from temporalio.client import Client, WorkflowExecutionDescription
from temporalio.service import RPCError, RPCStatusCode

from factorial import _batch_read, _batches, _tasks
from factorial import _wire as wire
from factorial._ids import new_batch_id
from factorial._listing import batch_info, task_info
from factorial._payloads import chunk_payloads
from factorial.errors import TaskCancelledError, TaskFailedError, TaskStateError, UserError
from factorial.task import Batch, TaskResult, TaskStatus

__all__ = ["batch_record", "failed_indices", "retry_failed", "task_results"]

#: Tasks read at once.
_CONCURRENT = 32


async def _read(client: Client, task_id: str, batch_active: bool, output: bool) -> TaskResult:
    """One task's status, and with ``output`` its output or error once it has ended."""
    handle = client.get_workflow_handle(task_id, result_type=wire.TaskSnapshot)
    try:
        description = await handle.describe()
    except RPCError as err:
        if err.status != RPCStatusCode.NOT_FOUND:
            raise
        # Never started: waiting for a slot, or its batch was cancelled first.
        status = TaskStatus.QUEUED if batch_active else TaskStatus.CANCELLED
        return TaskResult(task_id=task_id, status=status)
    status = task_info(description).status
    if not (output and status.is_terminal):
        return TaskResult(task_id=task_id, status=status)
    try:
        found = await _tasks.result(handle, task_id)
    except TaskFailedError as err:
        return TaskResult(task_id=task_id, status=TaskStatus.FAILED, error=err.error)
    except TaskCancelledError:
        return TaskResult(task_id=task_id, status=TaskStatus.CANCELLED)
    return TaskResult(task_id=task_id, status=TaskStatus.COMPLETED, output=found)


async def task_results(
    client: Client, batch: Batch, *, outputs: bool = True
) -> AsyncIterator[TaskResult]:
    """Each task of ``batch`` in index order: its status, and its output or error.

    With ``outputs`` False only the statuses are read (one describe per task).
    """
    active = batch.metadata.status == "active"
    ids = batch.task_ids
    for start in range(0, len(ids), _CONCURRENT):
        window = ids[start : start + _CONCURRENT]
        for result in await asyncio.gather(*(_read(client, i, active, outputs) for i in window)):
            yield result


async def failed_indices(client: Client, batch: Batch) -> list[int]:
    """The batch indices of the tasks that failed."""
    return [
        wire.task_index_of(result.task_id)
        async for result in task_results(client, batch, outputs=False)
        if result.status == TaskStatus.FAILED
    ]


async def _start_input(client: Client, workflow_id: str) -> wire.BatchInput:
    """A batch workflow's input, from the first event of its history."""
    handle = client.get_workflow_handle(workflow_id)
    async for event in handle.fetch_history_events(page_size=1):
        payloads = event.workflow_execution_started_event_attributes.input.payloads
        (inp,) = await client.data_converter.decode(payloads, [wire.BatchInput])
        assert isinstance(inp, wire.BatchInput)
        return inp
    raise UserError(f"batch {workflow_id!r} has no history to read its payloads from")


async def batch_record(client: Client, description: WorkflowExecutionDescription) -> Batch:
    """A batch's ids, counts and status without a worker.

    Its result once it has completed; else its memo (a cancelled or failed batch's final
    counts, a running one's a couple of seconds behind); else, for a batch from before the
    memo, its input (nothing counted).
    """
    handle = client.get_workflow_handle(description.id, result_type=wire.BatchSnapshot)
    found = await _batch_read.recorded(handle, description)
    if found is not None:
        return found
    record = _batches.new_batch_record(await _start_input(client, description.id))
    status = (await batch_info(description)).status  # its indexed status, else by its workflow
    if status != "active":
        record.metadata.status = status
        record.remaining_task_ids = []
    return record


async def _leaf_inputs(client: Client, root: wire.BatchInput) -> list[wire.BatchInput]:
    """The inputs of the batch's leaves, in chunk order (a lone leaf: the batch's own)."""
    batch_id = root.batch_id
    if root.is_leaf:
        return [root]
    if not root.leaf_sizes:
        raise UserError(
            f"batch {batch_id!r} was started by Factorial 0.1; its payloads cannot be read back"
        )
    leaf_ids = [wire.leaf_id_of(batch_id, k) for k in range(len(root.leaf_sizes))]
    return list(await asyncio.gather(*(_start_input(client, i) for i in leaf_ids)))


async def retry_failed(
    client: Client, description: WorkflowExecutionDescription, chunk_size: int, max_running: int
) -> Batch | None:
    """Start a batch of the failed tasks' payloads of an ended batch; None if none failed.

    The new batch runs the same agent, for the same owner, with the same turn policy; its
    ``metadata.retry_of`` (and its memo) names the batch retried.
    """
    # Its indexed status turns as it ends, a moment before its workflow closes.
    if (await batch_info(description)).status == "active":
        raise TaskStateError(
            f"batch {description.id} is still running; retry its failed tasks once it has ended"
        )
    batch = await batch_record(client, description)
    failed = await failed_indices(client, batch)
    if not failed:
        return None
    base = await _start_input(client, batch.id)
    payloads: dict[int, dict[str, Any]] = {}
    for leaf in await _leaf_inputs(client, base):
        for offset, payload in enumerate(leaf.payloads or []):
            payloads[leaf.first_index + offset] = payload
    contexts = [payloads[index] for index in failed]
    inp = wire.BatchInput(
        batch_id=new_batch_id(),
        owner_id=base.owner_id,
        agent_name=base.agent_name,
        task_queue=base.task_queue,
        total_tasks=len(contexts),
        policy=base.policy,
        max_turns=base.max_turns,
        created_at=datetime.now(UTC),
        track_status=base.track_status,
        hooks=base.hooks,
        retry_of=batch.id,
    )
    chunks = chunk_payloads(client, contexts, chunk_size)
    await _batches.start_batch(client, inp, chunks, max_running)
    return _batches.new_batch_record(inp)
