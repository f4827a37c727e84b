"""One task on Temporal: what ``Orchestrator`` does for ``enqueue_task`` and the task calls.

Each function works on the task's workflow: started here, or looked up by ``describe``
(a handle and a description). The ``Orchestrator`` keeps what is its own: the registered
agents, the connection, and a batch task that has not started yet (``queued``).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from temporalio.client import (
    Client,
    WorkflowExecutionDescription,
    WorkflowExecutionStatus,
    WorkflowFailureError,
    WorkflowHandle,
    WorkflowUpdateFailedError,
    WorkflowUpdateRPCTimeoutOrCancelledError,
)
from temporalio.common import (
    SearchAttributeKey,
    SearchAttributePair,
    TypedSearchAttributes,
    WorkflowIDReusePolicy,
)
from temporalio.exceptions import (
    ApplicationError,
    WorkflowAlreadyStartedError,
    is_cancelled_exception,
)
from temporalio.service import RPCError, RPCStatusCode

from factorial import _idempotency
from factorial import _wire as wire
from factorial._budget import BUDGET_EXCEEDED
from factorial._ids import validate_id
from factorial._payloads import check_size
from factorial._workers import agent_task_queue
from factorial.agent import BaseAgent
from factorial.context import AgentContext
from factorial.errors import (
    BudgetExceeded,
    NotFoundError,
    TaskCancelledError,
    TaskFailedError,
    TaskStateError,
    UserError,
)
from factorial.task import Task, TaskStatus
from factorial.tools import format_tool_output
from factorial.worker import AgentWorkerConfig

#: How long a query or an update waits for a worker before giving up.
QUERY_TIMEOUT = timedelta(seconds=10)
UPDATE_TIMEOUT = timedelta(seconds=30)

#: A closed task workflow's status, as a task status.
CLOSED_STATUS = {
    WorkflowExecutionStatus.COMPLETED: TaskStatus.COMPLETED,
    WorkflowExecutionStatus.FAILED: TaskStatus.FAILED,
    WorkflowExecutionStatus.TERMINATED: TaskStatus.FAILED,
    WorkflowExecutionStatus.TIMED_OUT: TaskStatus.FAILED,
    WorkflowExecutionStatus.CANCELED: TaskStatus.CANCELLED,
}

Handle = WorkflowHandle[Any, Any]


async def describe(
    client: Client,
    workflow_id: str,
    what: str,
    workflow_types: tuple[str, ...],
    result_type: type[Any],
    not_found: type[NotFoundError],
) -> tuple[Handle, WorkflowExecutionDescription]:
    """A handle and description of a task or batch workflow, or ``not_found``."""
    validate_id(workflow_id, f"{what} id")
    handle = client.get_workflow_handle(workflow_id, result_type=result_type)
    try:
        description = await handle.describe()
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            raise not_found(f"no {what} with id {workflow_id!r}") from None
        raise
    if description.workflow_type not in workflow_types:
        raise not_found(f"{workflow_id!r} is not a {what}")
    return handle, description


def new_task(
    agent: BaseAgent[Any],
    task: Task | None,
    owner_id: str | None,
    payload: AgentContext | dict[str, Any] | None,
) -> tuple[Task, AgentContext]:
    """The task to start (given, or made from ``owner_id`` and ``payload``), validated."""
    if task is None:
        if owner_id is None:
            raise UserError("enqueue_task needs a task, or an owner_id and a payload")
        task = agent.create_task(owner_id=owner_id, payload=payload or {})
    if task.agent != agent.name:
        raise UserError(f"task {task.id} belongs to agent {task.agent!r}, not {agent.name!r}")
    validate_id(task.id, "task id")
    validate_id(task.metadata.owner_id, "owner id")
    return task, agent.validate_payload(task.payload)


async def start_task(
    client: Client,
    agent: BaseAgent[Any],
    config: AgentWorkerConfig,
    task: Task,
    context: AgentContext,
    search_attributes: frozenset[str],
    *,
    idempotent: bool = False,
) -> Task:
    """Start the task's workflow; return the task, ``queued``.

    ``idempotent`` (the task's id comes from an idempotency key): a run with this id, open or
    closed, is returned instead of a new one (``factorial._idempotency``).
    """
    inp = wire.TaskInput(
        task_id=task.id,
        owner_id=task.metadata.owner_id,
        agent_name=agent.name,
        payload=context.model_dump(mode="json"),
        policy=config.turn_policy(),
        created_at=task.metadata.created_at or datetime.now(UTC),
        hooks=agent.hooks_outside_turns(),
        track_status=wire.SA_STATUS in search_attributes,
        resumed_from=task.metadata.resumed_from,
        budget=agent.budget,
    )
    check_size(client, inp)
    memo: dict[str, Any] = {}
    if inp.resumed_from:
        memo[wire.RESUMED_FROM_MEMO] = inp.resumed_from
    expected = None
    if idempotent:
        expected = _idempotency.fingerprint(agent.name, [inp.payload], task_budget=agent.budget)
    if expected is not None:
        created = inp.created_at.isoformat() if inp.created_at else ""
        memo[wire.IDEMPOTENCY_MEMO] = {**expected, "created_at": created}
    try:
        await client.start_workflow(
            wire.TASK_WORKFLOW,
            inp,
            id=task.id,
            task_queue=agent_task_queue(agent.name, config),
            search_attributes=_search_attributes(inp, search_attributes),
            static_summary=f"{agent.name} task of {inp.owner_id}",
            static_details=f"Query: {_clip(context.query)}",
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            id_conflict_policy=_idempotency.conflict_policy(idempotent),
            memo=memo or None,
        )
    except WorkflowAlreadyStartedError:
        if expected is None:
            raise UserError(f"a task with id {task.id!r} already exists") from None
    started = task.model_copy(update={"payload": context, "status": TaskStatus.QUEUED})
    if expected is None:
        return started
    # Started now or before (by a racing caller, or a run that has ended): read it back.
    _, description = await _idempotency.read_back(client, task.id, expected, "task")
    return await _idempotency.task_of(description, started, _closed_status(description))


async def result(handle: Handle, task_id: str) -> Any:
    """Wait for the task to end; its output, or ``TaskFailedError``/``TaskCancelledError``."""
    try:
        snapshot: wire.TaskSnapshot = await handle.result()
    except WorkflowFailureError as err:
        if is_cancelled_exception(err.cause):
            raise TaskCancelledError(task_id) from None
        cause = err.cause
        message = cause.message if isinstance(cause, ApplicationError) else str(cause)
        if message.startswith(f"{BUDGET_EXCEEDED}:"):
            raise BudgetExceeded(task_id, message) from None
        raise TaskFailedError(task_id, message) from None
    return snapshot.output


async def status(handle: Handle, description: WorkflowExecutionDescription) -> TaskStatus:
    """The task's status: from its snapshot, else from what it last indexed."""
    closed = _closed_status(description)
    if closed is not None:
        return closed
    try:
        snapshot = await _snapshot(handle)
    except RPCError:
        # No worker answered: fall back to the status the task last indexed.
        indexed = description.typed_search_attributes.get(
            SearchAttributeKey.for_keyword(wire.SA_STATUS)
        )
        return TaskStatus(indexed) if indexed else TaskStatus.QUEUED
    current = TaskStatus(snapshot.status)
    if current == TaskStatus.PROCESSING and turn_in_backoff(description):
        return TaskStatus.BACKOFF
    return current


async def data(handle: Handle, description: WorkflowExecutionDescription) -> dict[str, Any] | None:
    """The task's snapshot as JSON, or None when no worker answers for a running task."""
    try:
        snapshot = await _snapshot(handle)
    except RPCError:
        if description.status != WorkflowExecutionStatus.COMPLETED:
            return None
        snapshot = await handle.result()
    found = snapshot.model_dump(mode="json")
    closed = _closed_status(description)
    if closed is not None:
        found["status"] = closed.value
    return found


async def cancel(handle: Handle, description: WorkflowExecutionDescription) -> bool:
    """Cancel a task's (or batch's) workflow if it still runs; True if it was running."""
    if description.status != WorkflowExecutionStatus.RUNNING:
        return False
    try:
        await handle.cancel()
    except RPCError as err:
        if err.status != RPCStatusCode.NOT_FOUND:
            raise
    return True


async def steer(handle: Handle, task_id: str, messages: Sequence[dict[str, Any]]) -> None:
    """Send the ``steer`` update; its failure as the client error its type names."""
    try:
        await handle.execute_update(
            wire.STEER_UPDATE,
            wire.SteerInput(messages=list(messages)),
            rpc_timeout=UPDATE_TIMEOUT,
        )
    except WorkflowUpdateFailedError as err:
        raise update_error(err) from None
    except WorkflowUpdateRPCTimeoutOrCancelledError:
        raise _no_worker(task_id, "steering") from None
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            raise TaskStateError(f"task {task_id} has already ended") from None
        raise


async def complete_tool(
    handle: Handle,
    description: WorkflowExecutionDescription,
    task_id: str,
    tool_call_id: str,
    tool_result: Any,
) -> bool:
    """Send a deferred tool's result; True if the task was waiting for this call."""
    if description.status != WorkflowExecutionStatus.RUNNING:
        return False
    try:
        accepted: bool = await handle.execute_update(
            wire.COMPLETE_TOOL_UPDATE,
            wire.CompleteToolInput(
                tool_call_id=tool_call_id, result=format_tool_output(tool_result)
            ),
            result_type=bool,
            rpc_timeout=UPDATE_TIMEOUT,
        )
    except WorkflowUpdateFailedError:
        return False
    except WorkflowUpdateRPCTimeoutOrCancelledError:
        raise _no_worker(task_id, "deferred tool result") from None
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            return False
        raise
    return accepted


def update_error(err: WorkflowUpdateFailedError) -> Exception:
    """The client error of an update's failure (``_wire.CLIENT_ERRORS``)."""
    cause = err.cause
    if isinstance(cause, ApplicationError) and cause.type in wire.CLIENT_ERRORS:
        return wire.CLIENT_ERRORS[cause.type](cause.message)
    return TaskStateError(str(cause or err))


async def _snapshot(handle: Handle) -> wire.TaskSnapshot:
    """The task's ``snapshot`` query (a worker answers it)."""
    snapshot: wire.TaskSnapshot = await handle.query(
        wire.SNAPSHOT_QUERY, result_type=wire.TaskSnapshot, rpc_timeout=QUERY_TIMEOUT
    )
    return snapshot


def _closed_status(description: WorkflowExecutionDescription) -> TaskStatus | None:
    """A closed workflow's task status; None while it runs."""
    return CLOSED_STATUS.get(description.status) if description.status else None


def _search_attributes(inp: wire.TaskInput, available: frozenset[str]) -> TypedSearchAttributes:
    values = {
        wire.SA_OWNER: inp.owner_id,
        wire.SA_AGENT: inp.agent_name,
        wire.SA_STATUS: TaskStatus.ACTIVE.value,  # indexed: active until it ends or waits
        wire.SA_BATCH: inp.batch_id,
        wire.SA_PARENT: inp.parent_task_id,
    }
    return TypedSearchAttributes(
        [
            SearchAttributePair(SearchAttributeKey.for_keyword(name), value)
            for name, value in values.items()
            if value and name in available
        ]
    )


def turn_in_backoff(description: WorkflowExecutionDescription) -> bool:
    """True when the turn activity failed and waits for its next attempt."""
    for pending in description.raw_description.pending_activities:
        if pending.attempt > 1 and pending.state == 1:  # PENDING_ACTIVITY_STATE_SCHEDULED
            return True
    return False


def _no_worker(task_id: str, what: str) -> TaskStateError:
    return TaskStateError(
        f"no worker took the {what} for task {task_id} within {UPDATE_TIMEOUT.seconds}s; "
        "is a worker for its agent running? It may still be applied when one starts"
    )


def _clip(text: str, limit: int = 200) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
