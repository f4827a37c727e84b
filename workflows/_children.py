"""Sub-agents of a task: the child batch a forking tool's spawn requests become.

The task workflow starts each request as a child ``AgentBatchWorkflow`` once the forking
turn has ended, waits for it (or for the tool's deadline), and hands the results to the
model as one ``<sub_task_results>`` message on its next turn.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from datetime import timedelta

from temporalio import workflow
from temporalio.exceptions import ChildWorkflowError

with workflow.unsafe.imports_passed_through():
    from factorial._wire import (
        BATCH_TASK_QUEUE,
        BATCH_WORKFLOW,
        CANCEL_REMAINING_SIGNAL,
        LEGACY_BATCH_WORKFLOW,
        BatchInput,
        BatchSnapshot,
        Budget,
        ChildBatchRequest,
        SubTaskResult,
        TaskInput,
        batch_search_attributes,
        task_id_of,
    )

#: Tasks recorded before 0.2 started their children as a (legacy) ``BatchWorkflow``.
AGENT_BATCH_PATCH = "sub-agents-in-agent-batch-workflow"
#: Tasks recorded before ``task_pending_child_task_results`` existed did not publish it.
PENDING_CHILDREN_EVENT_PATCH = "task-pending-child-task-results-event"


def child_task_ids(request: ChildBatchRequest) -> list[str]:
    """The ids of the tasks one sub-agent batch request starts, in order."""
    return [task_id_of(request.batch_id, i) for i in range(len(request.payloads))]


async def run_child_batch(
    inp: TaskInput, request: ChildBatchRequest, budget: Budget | None = None
) -> list[SubTaskResult]:
    """Run one sub-agent batch a forking tool asked for, as a child workflow; its results.

    ``budget`` is what the parent's budget has left (``factorial._budget``): the batch's own,
    which it enforces on its tasks together.

    Its tasks' results come back in the batch's snapshot. The forking tool's deadline
    cancels the tasks still running (``cancel_remaining``) and keeps the rest; cancelling the
    parent cancels the batch and waits until it has ended, so no descendant outlives it.
    """
    batch = BatchInput(
        batch_id=request.batch_id,
        owner_id=inp.owner_id,
        agent_name=request.agent_name,
        task_queue=request.task_queue,
        total_tasks=len(request.payloads),
        policy=request.policy,
        max_turns=request.max_turns,
        created_at=workflow.now(),
        parent_task_id=inp.task_id,
        track_status=inp.track_status,
        payloads=request.payloads,
        collect_results=True,
        hooks=request.hooks,
        join=request.join,
        budget=budget,
        task_budget=request.task_budget,
    )
    patched = workflow.patched(AGENT_BATCH_PATCH)
    batch_type = BATCH_WORKFLOW if patched else LEGACY_BATCH_WORKFLOW
    handle = await workflow.start_child_workflow(
        batch_type,
        batch,
        id=request.batch_id,
        task_queue=BATCH_TASK_QUEUE,
        result_type=BatchSnapshot,
        parent_close_policy=workflow.ParentClosePolicy.REQUEST_CANCEL,
        search_attributes=batch_search_attributes(batch, "active"),
        static_summary=f"{len(request.payloads)} {request.agent_name} sub-tasks of "
        f"task {inp.task_id}",
    )
    try:
        await workflow.wait_condition(handle.done, timeout=timedelta(seconds=request.timeout))
    except TimeoutError:
        # The forking tool's deadline: stop the children still running, keep the rest.
        await handle.signal(CANCEL_REMAINING_SIGNAL)
    except asyncio.CancelledError:
        # This task is being cancelled: cancel the batch and wait until it has ended,
        # so no descendant outlives its parent.
        handle.cancel()
        with contextlib.suppress(BaseException):
            await handle
        raise
    try:
        snapshot = await handle
    except ChildWorkflowError as err:
        error = str(err.cause or err)
        return [
            SubTaskResult(task_id=task_id, status="failed", error=error)
            for task_id in child_task_ids(request)
        ]
    return snapshot.results or []


def sub_task_results_message(results: list[SubTaskResult]) -> str:
    """The ``<sub_task_results>`` block a forking parent reads on its next turn."""
    lines = ["<sub_task_results>"]
    for result in results:
        if result.status == "completed":
            output = result.output
            text = output if isinstance(output, str) else json.dumps(output, sort_keys=True)
            lines.append(
                f'<sub_task_result sub_task_id="{result.task_id}">{text}</sub_task_result>'
            )
        else:
            error = result.error or result.status
            lines.append(f'<sub_task_error sub_task_id="{result.task_id}">{error}</sub_task_error>')
    lines.append("</sub_task_results>")
    return "\n".join(lines)
