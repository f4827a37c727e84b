"""Idempotent enqueue: an owner's idempotency key names one task or batch.

The key and the owner make the workflow id (``_ids.idempotent_id``), so keys are scoped per
owner. The start asks Temporal for ``WorkflowIDConflictPolicy.USE_EXISTING`` (while a run
with that id is open, every caller gets that run: racing callers start one) and
``WorkflowIDReusePolicy.REJECT_DUPLICATE`` (once it has closed, the start is refused with
``WorkflowAlreadyStartedError`` and the closed run is returned). Either way there is one run.

The run's memo records what was enqueued (the agent, a hash of the validated payloads, and
the limits it runs under: a batch's ``budget`` and ``on_failure``, the agent's own budget);
the same key with another agent, payload, budget or failure policy raises
``IdempotencyConflictError``. A run whose memo predates a limit's field is not compared on it.

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

from pydantic import BaseModel
from temporalio.client import Client, WorkflowExecutionDescription, WorkflowHandle
from temporalio.common import SearchAttributeKey, WorkflowIDConflictPolicy

from factorial import _wire as wire
from factorial.errors import IdempotencyConflictError
from factorial.task import Task, TaskStatus

#: The limits a memo records, and how a conflict names them.
_LIMITS = {"budget": "budget", "task_budget": "agent budget", "on_failure": "failure policy"}


def fingerprint(
    agent_name: str, payloads: Sequence[dict[str, Any]], **limits: BaseModel | None
) -> dict[str, str]:
    """What the memo of a run enqueued with a key records: its agent, payloads' hash, limits.

    ``limits`` are the run's ``budget``, ``task_budget`` (a batch's tasks' own) and
    ``on_failure``, recorded as JSON ("" for none). A task's memo also records when it was
    created (``created_at``), which ``check`` ignores.
    """
    encoded = json.dumps(list(payloads), sort_keys=True, separators=(",", ":"), default=str)
    found = {"agent": agent_name, "payloads_sha256": hashlib.sha256(encoded.encode()).hexdigest()}
    for name, limit in limits.items():
        if name not in _LIMITS:
            raise ValueError(f"unknown limit {name!r}")
        found[name] = "" if limit is None else limit.model_dump_json()
    return found


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
    problem = conflict(found, expected, f"{what} {description.id}")
    if problem is not None:
        raise IdempotencyConflictError(problem, description.id)


def conflict(found: dict[str, str] | None, expected: dict[str, str], run: str) -> str | None:
    """How the memo ``found`` on ``run`` differs from ``expected``; None if it does not."""
    if found is None:
        return f"{run} was not enqueued with an idempotency key"
    if found.get("agent") != expected["agent"]:
        return (
            f"the idempotency key already names {run} of agent "
            f"{found.get('agent')!r}, not {expected['agent']!r}"
        )
    if found.get("payloads_sha256") != expected["payloads_sha256"]:
        return f"the idempotency key already names {run}, enqueued with another payload"
    for name, label in _LIMITS.items():
        if name in found and found[name] != expected.get(name, ""):
            return (
                f"the idempotency key already names {run}, enqueued with another {label} "
                f"({found[name] or 'none'})"
            )
    return None


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
