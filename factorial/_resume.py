"""Resuming an ended task: what ``Orchestrator.resume_task`` reads and starts.

Everything comes from the ended run's history, with no worker: its input (owner, agent) from
the run's first event, its conversation from its result (completed) or from its failure's
details (failed; ``AgentTaskWorkflow._failure``). The new run is a task of its own, with a
fresh id derived from the old one (``_ids.resumed_task_id``) and ``resumed_from`` set.

A cancelled (or terminated, or timed-out) task cannot be resumed: its end keeps no
conversation. Neither can a running one: steer it instead.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from temporalio.client import (
    Client,
    WorkflowExecutionDescription,
    WorkflowExecutionStatus,
    WorkflowFailureError,
)
from temporalio.exceptions import ApplicationError

from factorial import _wire as wire
from factorial._ids import resumed_task_id
from factorial._tasks import Handle
from factorial.errors import TaskStateError
from factorial.task import Task, TaskMetadata


async def started_with(client: Client, handle: Handle) -> wire.TaskInput:
    """The input the task's current run started with (its owner, agent and ids)."""
    async for event in handle.fetch_history_events():
        payloads = event.workflow_execution_started_event_attributes.input.payloads
        (inp,) = await client.data_converter.decode(payloads, [wire.TaskInput])
        assert isinstance(inp, wire.TaskInput)
        return inp
    raise TaskStateError(f"task {handle.id} has no history")  # pragma: no cover


async def final_context(
    handle: Handle, description: WorkflowExecutionDescription, task_id: str
) -> dict[str, Any]:
    """The context (conversation included) an ended task finished with.

    Raises:
        TaskStateError: The task still runs, or its end kept no conversation.
    """
    status = description.status
    if status == WorkflowExecutionStatus.RUNNING:
        raise TaskStateError(
            f"task {task_id} is still running: steer it, or resume it once it has ended"
        )
    if status == WorkflowExecutionStatus.COMPLETED:
        snapshot: wire.TaskSnapshot = await handle.result()
        return snapshot.context
    if status == WorkflowExecutionStatus.FAILED:
        try:
            await handle.result()
        except WorkflowFailureError as err:
            cause = err.cause
            if isinstance(cause, ApplicationError) and len(cause.details) > 1:
                context = cause.details[1]
                if isinstance(context, dict):
                    return context
    ended = status.name.lower() if status is not None else "unknown"
    raise TaskStateError(
        f"task {task_id} ended {ended} and kept no conversation to resume; "
        "only completed and failed tasks can be resumed"
    )


def resumed_task(
    old: wire.TaskInput, context: dict[str, Any], messages: Sequence[dict[str, Any]]
) -> tuple[Task, dict[str, Any]]:
    """The new task that continues ``old`` with ``messages``, and its payload.

    The conversation goes on from where it ended (a task that failed in its first turn: from
    its query); the run's count of turns starts again.
    """
    payload = dict(context)
    before = list(context.get("messages") or [])
    if not before and context.get("query"):
        before = [{"role": "user", "content": context["query"]}]
    payload["messages"] = [*before, *messages]
    payload.update(turn=0, output=None, attempt=1)
    task = Task(
        id=resumed_task_id(old.task_id),
        agent=old.agent_name,
        payload=payload,
        metadata=TaskMetadata(owner_id=old.owner_id, resumed_from=old.task_id),
    )
    return task, payload
