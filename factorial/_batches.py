"""Starting batches and reading them back: what ``Orchestrator`` does for ``enqueue_batch``.

A batch of at most ``chunk_size`` tasks is one workflow, a lone leaf. A larger one is split
into leaves of at most ``chunk_size`` tasks and about 1 MiB of payloads each; the leaves are
started concurrently (each with its own payloads), then the root that counts them. So
``enqueue_batch`` costs one start per 200 tasks, whatever their number, and returns in
seconds even at 20,000 tasks. If a start fails, the leaves already started are cancelled
and nothing is left half-made.

``max_running`` bounds the tasks of one batch running at once; every leaf gets its share.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections.abc import Awaitable
from typing import Any

from temporalio.client import Client
from temporalio.common import WorkflowIDReusePolicy
from temporalio.service import RPCError

from factorial import _wire as wire
from factorial._progress import max_units, percent
from factorial.task import Batch, BatchMetadata

#: Leaf starts in flight at once.
_CONCURRENT_STARTS = 20


async def start_batch(
    client: Client, base: wire.BatchInput, chunks: list[list[dict[str, Any]]], max_running: int
) -> None:
    """Start the workflows of batch ``base.batch_id``: one lone leaf, or leaves then a root."""
    window = max(1, math.ceil(max_running / len(chunks)))
    summary = f"batch of {base.total_tasks} {base.agent_name} tasks for {base.owner_id}"
    if len(chunks) == 1:
        lone = base.model_copy(update={"payloads": chunks[0], "max_running": window})
        await _start(client, lone, base.batch_id, summary)
        return
    leaves = _leaves(base, chunks, window)
    started: list[str] = []
    try:
        limit = asyncio.Semaphore(_CONCURRENT_STARTS)

        async def start_leaf(leaf: wire.BatchInput) -> None:
            async with limit:
                leaf_id = wire.leaf_id_of(base.batch_id, leaf.chunk_index)
                last = leaf.first_index + len(leaf.payloads or []) - 1
                tasks = f"tasks {leaf.first_index}-{last}"
                text = f"part {leaf.chunk_index} of batch {base.batch_id}: {tasks}"
                await _start(client, leaf, leaf_id, text)
                started.append(leaf_id)

        await asyncio.gather(*(start_leaf(leaf) for leaf in leaves))
        root = base.model_copy(update={"leaf_sizes": [len(chunk) for chunk in chunks]})
        await _start(client, root, base.batch_id, summary)
    except BaseException:
        await _cancel_all(client, started)
        raise


def _leaves(
    base: wire.BatchInput, chunks: list[list[dict[str, Any]]], window: int
) -> list[wire.BatchInput]:
    leaves, first = [], 0
    for index, chunk in enumerate(chunks):
        leaves.append(
            base.model_copy(
                update={
                    "payloads": chunk,
                    "first_index": first,
                    "chunk_index": index,
                    "report_to": base.batch_id,
                    "total_tasks": len(chunk),
                    "max_running": window,
                    "report_every": max(1.0, len(chunks) / 10),
                }
            )
        )
        first += len(chunk)
    return leaves


def _start(client: Client, inp: wire.BatchInput, workflow_id: str, summary: str) -> Awaitable[Any]:
    return client.start_workflow(
        wire.BATCH_WORKFLOW,
        inp,
        id=workflow_id,
        task_queue=wire.BATCH_TASK_QUEUE,
        search_attributes=wire.batch_search_attributes(inp, "active"),
        static_summary=summary,
        id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
    )


async def _cancel_all(client: Client, workflow_ids: list[str]) -> None:
    """Best effort: leave no leaf of a batch that failed to start running."""
    for workflow_id in workflow_ids:
        with contextlib.suppress(RPCError):
            await client.get_workflow_handle(workflow_id).cancel()


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
        ),
    )


def new_batch_record(inp: wire.BatchInput) -> Batch:
    """The ``Batch`` of a batch just enqueued (nothing has run yet)."""
    return batch_from(
        wire.BatchSnapshot(
            batch_id=inp.batch_id,
            owner_id=inp.owner_id,
            agent_name=inp.agent_name,
            status="active",
            total_tasks=inp.total_tasks,
            max_progress=max_units(inp.max_turns, inp.total_tasks),
            counts=wire.BatchCounts(),
            created_at=inp.created_at,
        )
    )
