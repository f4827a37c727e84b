"""Tasks and batches as Temporal's visibility knows them: no worker needed to answer.

``TaskInfo`` and ``BatchInfo`` are read from a workflow's description or a visibility listing
(``Client.list_workflows``): its id, type, timing, closed status and Factorial's search
attributes (``FactorialOwnerId``, ``FactorialAgent``, ``FactorialStatus``,
``FactorialBatchId``, ``FactorialParentTaskId``). Listings are filtered by those attributes;
they lag the workflows by about a second (Temporal's visibility is eventually consistent).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import Any

from temporalio.client import (
    Client,
    WorkflowExecution,
    WorkflowExecutionDescription,
    WorkflowExecutionStatus,
)
from temporalio.common import SearchAttributeKey

from factorial import _wire as wire
from factorial._tasks import CLOSED_STATUS, turn_in_backoff
from factorial.errors import UserError
from factorial.task import BatchInfo, TaskInfo, TaskStatus

__all__ = [
    "BATCH_STATUSES",
    "batch_info",
    "list_batches",
    "list_tasks",
    "task_info",
]

#: What a batch's ``FactorialStatus`` says.
BATCH_STATUSES = ("active", "completed", "failed", "cancelled")
#: Task statuses a task indexes while it runs (``active`` also covers a turn running or
#: waiting for its retry; a batch's task waiting for a slot has no workflow to list yet).
INDEXED_RUNNING = (
    TaskStatus.ACTIVE,
    TaskStatus.PENDING_TOOL_RESULTS,
    TaskStatus.PENDING_CHILD_TASKS,
)
#: A closed task workflow's ``ExecutionStatus`` in a visibility query, by task status.
_CLOSED_QUERY = {
    TaskStatus.COMPLETED: "ExecutionStatus = 'Completed'",
    TaskStatus.FAILED: "ExecutionStatus IN ('Failed', 'Terminated', 'TimedOut')",
    TaskStatus.CANCELLED: "ExecutionStatus = 'Canceled'",
}


def _keyword(execution: WorkflowExecution, name: str) -> str | None:
    value = execution.typed_search_attributes.get(SearchAttributeKey.for_keyword(name))
    return str(value) if value else None


def task_info(execution: WorkflowExecution) -> TaskInfo:
    """What a task workflow's description or listing entry says about the task."""
    closed = CLOSED_STATUS.get(execution.status) if execution.status else None
    indexed = _keyword(execution, wire.SA_STATUS)
    if closed is not None:
        status = closed
    elif indexed is not None and indexed in TaskStatus._value2member_map_:
        status = TaskStatus(indexed)
    else:
        status = TaskStatus.ACTIVE
    attempt = None
    if isinstance(execution, WorkflowExecutionDescription):  # a listing has no activities
        pending = execution.raw_description.pending_activities
        if pending:
            attempt = max(activity.attempt for activity in pending)
        if status in (TaskStatus.ACTIVE, TaskStatus.PROCESSING) and turn_in_backoff(execution):
            status = TaskStatus.BACKOFF
    return TaskInfo(
        id=execution.id,
        agent=_keyword(execution, wire.SA_AGENT),
        owner_id=_keyword(execution, wire.SA_OWNER),
        status=status,
        batch_id=_keyword(execution, wire.SA_BATCH),
        parent_task_id=_keyword(execution, wire.SA_PARENT),
        started_at=execution.start_time,
        closed_at=execution.close_time,
        attempt=attempt,
    )


async def batch_info(execution: WorkflowExecution) -> BatchInfo:
    """What a batch workflow's description or listing entry says about the batch."""
    indexed = _keyword(execution, wire.SA_STATUS)
    running = execution.status in (None, WorkflowExecutionStatus.RUNNING)
    if indexed is None or (indexed == "active" and not running):
        # Not indexed, or closed without saying how (terminated by hand): by its workflow.
        indexed = "active" if running else "cancelled"
    memo: Mapping[str, Any] = await execution.memo() if execution.raw_info.memo.fields else {}
    retry_of = memo.get(wire.RETRY_OF_MEMO)
    return BatchInfo(
        id=execution.id,
        agent=_keyword(execution, wire.SA_AGENT),
        owner_id=_keyword(execution, wire.SA_OWNER),
        status=indexed,
        parent_task_id=_keyword(execution, wire.SA_PARENT),
        started_at=execution.start_time,
        closed_at=execution.close_time,
        retry_of=retry_of if isinstance(retry_of, str) else None,
    )


def _quote(value: str) -> str:
    if "'" in value or "\\" in value:
        raise UserError(f"invalid filter value {value!r}")
    return f"'{value}'"


def _filters(owner_id: str | None, agent: str | None, batch_id: str | None) -> list[str]:
    clauses = []
    pairs = ((wire.SA_OWNER, owner_id), (wire.SA_AGENT, agent), (wire.SA_BATCH, batch_id))
    for name, value in pairs:
        if value is not None:
            clauses.append(f"{name} = {_quote(value)}")
    return clauses


def task_query(
    owner_id: str | None = None,
    agent: str | None = None,
    status: TaskStatus | str | None = None,
    batch_id: str | None = None,
    parent_task_id: str | None = None,
) -> str:
    """The visibility query of the task workflows that pass every filter given."""
    clauses = [f"WorkflowType = {_quote(wire.TASK_WORKFLOW)}"]
    clauses += _filters(owner_id, agent, batch_id)
    if parent_task_id is not None:
        clauses.append(f"{wire.SA_PARENT} = {_quote(parent_task_id)}")
    if status is not None:
        listable = [s.value for s in (*INDEXED_RUNNING, *_CLOSED_QUERY)]
        value = str(status)  # a TaskStatus is its value
        if value not in listable:
            raise UserError(
                f"cannot list tasks by status {value!r}; use one of: {', '.join(listable)} "
                "(active covers a turn running or waiting for its retry)"
            )
        wanted = TaskStatus(value)
        if wanted in _CLOSED_QUERY:
            clauses.append(_CLOSED_QUERY[wanted])
        else:
            clauses.append("ExecutionStatus = 'Running'")
            clauses.append(f"{wire.SA_STATUS} = {_quote(wanted.value)}")
    return " AND ".join(clauses)


def batch_query(
    owner_id: str | None = None,
    agent: str | None = None,
    status: str | None = None,
    batch_id: str | None = None,
) -> str:
    """The visibility query of the batch workflows (roots and leaves) that pass the filters."""
    types = ", ".join(_quote(name) for name in wire.BATCH_WORKFLOWS)
    clauses = [f"WorkflowType IN ({types})", *_filters(owner_id, agent, batch_id)]
    if status is not None:
        if status not in BATCH_STATUSES:
            raise UserError(f"unknown batch status {status!r}; known: {', '.join(BATCH_STATUSES)}")
        clauses.append(f"{wire.SA_STATUS} = {_quote(status)}")
    return " AND ".join(clauses)


async def list_tasks(client: Client, query: str, limit: int | None) -> AsyncIterator[TaskInfo]:
    """Tasks matching ``query``, newest first, at most ``limit``."""
    async for execution in client.list_workflows(query, limit=limit):
        yield task_info(execution)


async def list_batches(client: Client, query: str, limit: int | None) -> AsyncIterator[BatchInfo]:
    """Batches matching ``query`` (their roots; a large batch's leaves are skipped)."""
    found = 0
    async for execution in client.list_workflows(query):
        if _keyword(execution, wire.SA_BATCH) not in (None, execution.id):
            continue  # a leaf of a large batch: the root stands for it
        yield await batch_info(execution)
        found += 1
        if limit is not None and found >= limit:
            return
