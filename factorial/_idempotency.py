"""Idempotent enqueue: an owner's idempotency key names one task or batch.

The key and the owner make the workflow id (``_ids.idempotent_id``), so keys are scoped per
owner. The start asks Temporal for ``WorkflowIDConflictPolicy.USE_EXISTING`` (while a run
with that id is open, every caller gets that run: racing callers start one) and
``WorkflowIDReusePolicy.REJECT_DUPLICATE`` (once it has closed, the start is refused with
``WorkflowAlreadyStartedError`` and the closed run is returned). Either way there is one run.

The run's memo records what was enqueued (the agent and a hash of the validated payloads);
the same key with another agent or payload raises ``IdempotencyConflictError``.

The window: Temporal keeps a closed workflow's id for its namespace's retention period
(``temporal operator namespace describe``; the dev server keeps a day by default). Once
the closed run is deleted, the key starts a new run.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from temporalio.client import Client, WorkflowExecutionDescription, WorkflowHandle
from temporalio.common import SearchAttributeKey, WorkflowIDConflictPolicy

from factorial import _wire as wire
from factorial.errors import IdempotencyConflictError
from factorial.task import Task, TaskStatus


def fingerprint(agent_name: str, payloads: Sequence[dict[str, Any]]) -> dict[str, str]:
    """What the memo of a run enqueued with a key records: its agent and payloads' hash.

    A task's memo also records when it was created (``created_at``), which ``check`` ignores.
    """
    encoded = json.dumps(list(payloads), sort_keys=True, separators=(",", ":"), default=str)
    return {"agent": agent_name, "payloads_sha256": hashlib.sha256(encoded.encode()).hexdigest()}


def conflict_policy(idempotent: bool) -> WorkflowIDConflictPolicy:
    """What a start does when a workflow with its id is running: use it, if ``idempotent``."""
    if idempotent:
        return WorkflowIDConflictPolicy.USE_EXISTING
    return WorkflowIDConflictPolicy.UNSPECIFIED  # fail, as it always did


async def read_back(
    client: Client, workflow_id: str, expected: dict[str, str], what: str
) -> tuple[WorkflowHandle[Any, Any], WorkflowExecutionDescription]:
    """The run the key names, once checked to be what was asked for again (``check``)."""
    result_type = wire.TaskSnapshot if what == "task" else wire.BatchSnapshot
    handle = client.get_workflow_handle(workflow_id, result_type=result_type)
    description = await handle.describe()
    await check(description, expected, what)
    return handle, description


async def check(
    description: WorkflowExecutionDescription, expected: dict[str, str], what: str
) -> None:
    """Raise ``IdempotencyConflictError`` unless the run was enqueued as ``expected``."""
    found: dict[str, str] | None = await description.memo_value(
        wire.IDEMPOTENCY_MEMO, None, type_hint=dict[str, str]
    )
    existing = description.id
    if found is None:
        raise IdempotencyConflictError(
            f"{what} {existing} was not enqueued with an idempotency key", existing
        )
    if found.get("agent") != expected["agent"]:
        raise IdempotencyConflictError(
            f"the idempotency key already names {what} {existing} of agent "
            f"{found.get('agent')!r}, not {expected['agent']!r}",
            existing,
        )
    if found.get("payloads_sha256") != expected["payloads_sha256"]:
        raise IdempotencyConflictError(
            f"the idempotency key already names {what} {existing}, enqueued with another payload",
            existing,
        )


async def task_of(
    description: WorkflowExecutionDescription, task: Task, closed: TaskStatus | None
) -> Task:
    """The task a key named: ``task`` (same agent and payload) as it is now, no worker asked.

    ``closed`` is its status if it has ended; a running one's is what it last indexed.
    """
    status = closed
    if status is None:
        indexed = description.typed_search_attributes.get(
            SearchAttributeKey.for_keyword(wire.SA_STATUS)
        )
        status = TaskStatus(indexed) if indexed else TaskStatus.QUEUED
    found: dict[str, str] = await description.memo_value(
        wire.IDEMPOTENCY_MEMO, {}, type_hint=dict[str, str]
    )
    created = found.get("created_at")  # the first run's start (continue-as-new starts others)
    created_at = datetime.fromisoformat(created) if created else description.start_time
    metadata = task.metadata.model_copy(update={"created_at": created_at})
    return task.model_copy(update={"status": status, "metadata": metadata})
