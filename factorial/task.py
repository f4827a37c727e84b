"""Public records returned by the Orchestrator.

``Task``, ``TaskStatus`` and ``Batch``; for operators, ``TaskInfo`` and ``BatchInfo`` (what the
server knows without a worker) and ``TaskResult`` (how one task of a batch ended).
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, Field, PrivateAttr

from factorial._usage import TokenUsage

if TYPE_CHECKING:
    from factorial.orchestrator import Orchestrator


class TaskStatus(StrEnum):
    """Where a task is in its life. ``completed``, ``failed`` and ``cancelled`` are terminal."""

    QUEUED = "queued"
    PROCESSING = "processing"
    ACTIVE = "active"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"
    PENDING_TOOL_RESULTS = "pending_tool_results"
    PENDING_CHILD_TASKS = "pending_child_tasks"
    BACKOFF = "backoff"

    @property
    def is_terminal(self) -> bool:
        """True for completed, failed and cancelled."""
        return self in TERMINAL_STATUSES


TERMINAL_STATUSES = frozenset({TaskStatus.COMPLETED, TaskStatus.FAILED, TaskStatus.CANCELLED})


class TaskMetadata(BaseModel):
    """Bookkeeping of a task."""

    owner_id: str
    created_at: datetime | None = None
    batch_id: str | None = None
    parent_id: str | None = None
    #: The ended task this one continues (``Orchestrator.resume_task``).
    resumed_from: str | None = None


class Task(BaseModel):
    """A unit of agent work; its ``id`` is also its Temporal workflow id.

    A task returned by ``Orchestrator.enqueue_task`` is also a handle: ``await
    task.result()``, ``get_status()``, ``cancel()`` and ``steer(messages)``.
    """

    id: str
    agent: str
    payload: Any = None
    status: TaskStatus = TaskStatus.QUEUED
    metadata: TaskMetadata
    _orchestrator: Any = PrivateAttr(default=None)

    def _require(self) -> Orchestrator:
        if self._orchestrator is None:
            from factorial.errors import UserError

            raise UserError("this task has not been enqueued; use orchestrator.enqueue_task")
        orchestrator: Orchestrator = self._orchestrator
        return orchestrator

    async def result(self) -> Any:
        """Wait for the task to end and return its output.

        Raises:
            TaskFailedError: The task failed.
            TaskCancelledError: The task was cancelled.
        """
        return await self._require().get_task_result(self.id)

    async def get_status(self) -> TaskStatus:
        """The task's current status."""
        return await self._require().get_task_status(self.id)

    async def cancel(self) -> None:
        """Cancel the task."""
        await self._require().cancel_task(self.id)

    async def steer(self, messages: list[dict[str, Any]]) -> None:
        """Add messages to the conversation at the next turn boundary."""
        await self._require().steer_task(self.id, messages)

    async def resume(self, messages: list[dict[str, Any]]) -> Task:
        """Continue this ended task's conversation as a new task (``resume_task``)."""
        resumed: Task = await self._require().resume_task(self.id, messages)
        return resumed


class BatchMetadata(BaseModel):
    """Bookkeeping of a batch."""

    owner_id: str
    created_at: datetime | None = None
    total_tasks: int = 0
    max_progress: int = 0
    status: str = "active"
    parent_id: str | None = None
    #: Tasks ended so far, by outcome (a batch whose tasks all failed still ends ``completed``).
    completed: int = 0
    failed: int = 0
    cancelled: int = 0
    #: Tokens (and cost) of the tasks ended so far, their sub-agents' included (a cancelled
    #: task's are not known to its batch).
    usage: TokenUsage = Field(default_factory=TokenUsage)
    #: The batch whose failed tasks this one retries (``Orchestrator.retry_failed_tasks``).
    retry_of: str | None = None
    #: Why the batch ended ``failed`` (None otherwise): its budget was spent
    #: (``BudgetExceeded: ...``) or its ``FailurePolicy`` tripped (how many tasks failed).
    reason: str | None = None


class Batch(BaseModel):
    """A group of tasks tracked together; its ``id`` is its Temporal workflow id."""

    id: str
    task_ids: list[str] = Field(default_factory=list)
    remaining_task_ids: list[str] = Field(default_factory=list)
    progress: float = 0.0
    metadata: BatchMetadata


class TaskInfo(BaseModel):
    """A task as the server knows it without asking a worker."""

    id: str
    agent: str | None = None
    owner_id: str | None = None
    status: TaskStatus
    batch_id: str | None = None
    parent_task_id: str | None = None
    started_at: datetime | None = None
    closed_at: datetime | None = None
    #: The attempt of the turn running now (a regular-activity turn), when one runs.
    attempt: int | None = None


class BatchInfo(BaseModel):
    """A batch as the server knows it without asking a worker."""

    id: str
    agent: str | None = None
    owner_id: str | None = None
    #: ``active``, ``completed``, ``failed`` (its budget or ``FailurePolicy`` stopped it) or
    #: ``cancelled``.
    status: str
    parent_task_id: str | None = None
    started_at: datetime | None = None
    closed_at: datetime | None = None
    #: The batch whose failed tasks this batch retries (``Orchestrator.retry_failed_tasks``).
    retry_of: str | None = None


class TaskResult(BaseModel):
    """How one task of a batch ended (or where it is, if it has not)."""

    task_id: str
    status: TaskStatus
    output: Any = None
    error: str | None = None
