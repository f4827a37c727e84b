"""The Orchestrator's task methods: enqueue a task, read it, steer it, cancel it.

What each one does on Temporal is in ``factorial._tasks``; a task of a batch that has not
started yet (``queued``) is read off its batch.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from temporalio.client import WorkflowExecutionDescription
from temporalio.service import RPCError

from factorial import _batch_read, _resume, _tasks
from factorial import _wire as wire
from factorial._ids import idempotent_id
from factorial._orchestrator_base import OrchestratorBase
from factorial.agent import BaseAgent
from factorial.context import AgentContext
from factorial.errors import (
    AgentNotRegisteredError,
    InvalidIdError,
    InvalidPayloadError,
    NotFoundError,
    TaskNotFoundError,
)
from factorial.task import Task, TaskStatus

#: Seconds between looks at a batch task that waits for a free slot.
_QUEUED_POLL = 1.0


class TaskAPI(OrchestratorBase):
    """``Orchestrator``'s methods for one task."""

    async def enqueue_task(
        self,
        agent: BaseAgent[Any],
        task: Task | None = None,
        *,
        owner_id: str | None = None,
        payload: AgentContext | dict[str, Any] | None = None,
        idempotency_key: str | None = None,
    ) -> Task:
        """Start a task of ``agent`` and return it (status ``queued``).

        Pass either a ``task`` from ``agent.create_task(...)`` or ``owner_id`` and ``payload``.

        With an ``idempotency_key``, the task's id is derived from its owner and the key, and
        every call with the same owner and key returns that one task, never a second run:
        concurrent calls, and calls after it ended, for as long as Temporal keeps the ended
        run (the namespace's retention period).

        Raises:
            AgentNotRegisteredError: The agent is not registered here.
            InvalidPayloadError: The payload does not validate as the agent's context.
            InvalidIdError: The owner or task id is not usable as a workflow id.
            PayloadTooLargeError: The payload is larger than Temporal accepts.
            IdempotencyConflictError: The key names a task of another agent, payload or
                agent budget.
        """
        config = self._config_of(agent)
        task, context = _tasks.new_task(agent, task, owner_id, payload)
        if idempotency_key is not None:
            key_id = idempotent_id("task", task.metadata.owner_id, idempotency_key)
            task = task.model_copy(update={"id": key_id})
        client = await self.client()
        started = await _tasks.start_task(
            client,
            agent,
            config,
            task,
            context,
            self._search_attributes,
            idempotent=idempotency_key is not None,
        )
        started._orchestrator = self
        return started

    async def get_task_result(self, task_id: str) -> Any:
        """Wait for the task to end and return its output.

        Raises:
            TaskNotFoundError: No such task.
            TaskFailedError: The task failed.
            TaskCancelledError: The task was cancelled.
        """
        while True:
            try:
                handle, _ = await self._describe_task(task_id)
                break
            except TaskNotFoundError:
                if await self._unstarted_status(task_id) != TaskStatus.QUEUED:
                    raise
            await asyncio.sleep(_QUEUED_POLL)  # its batch starts it when a slot frees up
        return await _tasks.result(handle, task_id)

    async def get_task_status(self, task_id: str) -> TaskStatus:
        """The task's status (``backoff`` while a failed turn waits for its retry).

        Raises:
            TaskNotFoundError: No such task.
        """
        found = await self._describe_or_unstarted(task_id)
        if isinstance(found, TaskStatus):
            return found
        return await _tasks.status(*found)

    async def get_task_data(self, task_id: str) -> dict[str, Any] | None:
        """The task's data while running or after it ended: status, turn, output, error, context.

        Returns None when the task exists but no worker can answer for it right now.

        Raises:
            TaskNotFoundError: No such task.
        """
        found = await self._describe_or_unstarted(task_id)
        if isinstance(found, TaskStatus):
            parsed = wire.batch_task_of(task_id)
            assert parsed is not None  # only a batch's task can be unstarted
            return {"task_id": task_id, "status": found.value, "batch_id": parsed[0]}
        return await _tasks.data(*found)

    async def cancel_task(self, task_id: str) -> bool:
        """Cancel a task: its running turn stops, ``on_run_cancelled`` runs, it ends cancelled.

        Cancelling a task that already ended does nothing and returns False.

        Returns:
            True if the task was running and its cancellation was requested.

        Raises:
            TaskNotFoundError: No such task.
        """
        return await _tasks.cancel(*await self._describe_task(task_id))

    async def steer_task(self, task_id: str, messages: Sequence[dict[str, Any]]) -> None:
        """Add messages to the task's conversation at its next turn boundary.

        Raises:
            TaskNotFoundError: No such task.
            TaskStateError: The task has already ended.
            InvalidPayloadError: A message has no role or content.
        """
        problem = wire.steering_problem(list(messages))
        if problem is not None:
            raise InvalidPayloadError(problem)
        handle, _ = await self._describe_task(task_id)
        await _tasks.steer(handle, task_id, messages)

    async def resume_task(self, task_id: str, messages: Sequence[dict[str, Any]]) -> Task:
        """Continue an ended task's conversation with ``messages``, as a new task.

        The new task (a fresh id derived from ``task_id``; ``metadata.resumed_from`` is
        ``task_id``) has the same owner and agent, starts from the old task's final context
        and messages plus ``messages``, and announces itself like any task (``run_started``
        to ``run_completed``). Its turns count from 0 again. It needs no worker for the old
        task: the old conversation is read from its history.

        Raises:
            TaskNotFoundError: No such task.
            TaskStateError: The task still runs, or it was cancelled, terminated or timed out
                (only completed and failed tasks keep their conversation).
            InvalidPayloadError: A message has no role or content.
            AgentNotRegisteredError: The task's agent is not registered here.
        """
        problem = wire.steering_problem(list(messages))
        if problem is not None:
            raise InvalidPayloadError(f"resume_task: {problem}")
        handle, description = await self._describe_task(task_id)
        context = await _resume.final_context(handle, description, task_id)
        client = await self.client()
        old = await _resume.started_with(client, handle)
        registered = self._runners.get(old.agent_name)
        if registered is None:
            raise AgentNotRegisteredError(
                f"task {task_id} is a task of agent {old.agent_name!r}, not registered here"
            )
        agent, config = registered
        task, payload = _resume.resumed_task(old, context, messages)
        started = await _tasks.start_task(
            client, agent, config, task, agent.validate_payload(payload), self._search_attributes
        )
        started._orchestrator = self
        return started

    async def complete_deferred_tool(self, task_id: str, tool_call_id: str, result: Any) -> bool:
        """Deliver a deferred tool's result; True if the task was waiting for this call.

        Raises:
            TaskNotFoundError: No such task.
        """
        handle, description = await self._describe_task(task_id)
        return await _tasks.complete_tool(handle, description, task_id, tool_call_id, result)

    async def _describe_or_unstarted(
        self, task_id: str
    ) -> tuple[_tasks.Handle, WorkflowExecutionDescription] | TaskStatus:
        """The task's workflow, or the status of a batch's task not started (yet)."""
        try:
            return await self._describe_task(task_id)
        except TaskNotFoundError:
            unstarted = await self._unstarted_status(task_id)
            if unstarted is None:
                raise
            return unstarted

    async def _unstarted_status(self, task_id: str) -> TaskStatus | None:
        """``queued`` or ``cancelled`` for a batch's task not started (yet); else None."""
        parsed = wire.batch_task_of(task_id)
        if parsed is None:
            return None
        batch_id, index = parsed
        try:
            batch = await _batch_read.read(*await self._describe_batch(batch_id))
        except (NotFoundError, InvalidIdError, RPCError):
            return None
        if index >= batch.metadata.total_tasks:
            return None
        return TaskStatus.QUEUED if batch.metadata.status == "active" else TaskStatus.CANCELLED
