"""The Orchestrator's operator methods: find tasks and batches, export and retry a batch.

None of them needs a worker: they read Temporal's visibility (``_listing``), workflow
descriptions and histories (``_batch_tasks``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from factorial import _batch_tasks, _listing
from factorial._orchestrator_base import OrchestratorBase
from factorial.task import Batch, BatchInfo, TaskInfo, TaskResult, TaskStatus

#: Rows a listing returns unless told otherwise.
DEFAULT_LIMIT = 50


class OpsAPI(OrchestratorBase):
    """``Orchestrator``'s methods for operators."""

    batch_chunk_size: int
    max_running_tasks: int

    async def get_task_info(self, task_id: str) -> TaskInfo:
        """What the server knows of a task (ids, agent, owner, status, timing), no worker needed.

        Raises:
            TaskNotFoundError: No such task (or one of a batch that has not started it yet).
        """
        _, description = await self._describe_task(task_id)
        return _listing.task_info(description)

    async def get_batch_info(self, batch_id: str) -> BatchInfo:
        """What the server knows of a batch (agent, owner, status, timing), no worker needed.

        Raises:
            BatchNotFoundError: No such batch.
        """
        _, description = await self._describe_batch(batch_id)
        return await _listing.batch_info(description)

    async def list_tasks(
        self,
        *,
        owner_id: str | None = None,
        agent: str | None = None,
        status: TaskStatus | str | None = None,
        batch_id: str | None = None,
        parent_task_id: str | None = None,
        limit: int | None = DEFAULT_LIMIT,
    ) -> list[TaskInfo]:
        """Tasks that pass every filter given, newest first (Temporal's visibility lags ~1 s).

        Raises:
            UserError: A status tasks do not index (``queued``, ``processing``, ``backoff``:
                use ``active``), or a filter value with a quote.
        """
        query = _listing.task_query(owner_id, agent, status, batch_id, parent_task_id)
        return [t async for t in _listing.list_tasks(await self.client(), query, limit)]

    async def list_batches(
        self,
        *,
        owner_id: str | None = None,
        agent: str | None = None,
        status: str | None = None,
        limit: int | None = DEFAULT_LIMIT,
    ) -> list[BatchInfo]:
        """Batches that pass every filter, newest first; sub-agent batches included.

        ``status`` is ``active``, ``completed``, ``cancelled`` or ``failed``.

        Raises:
            UserError: An unknown status, or a filter value with a quote.
        """
        query = _listing.batch_query(owner_id, agent, status)
        return [b async for b in _listing.list_batches(await self.client(), query, limit)]

    async def batch_results(self, batch_id: str) -> AsyncIterator[TaskResult]:
        """Each task of the batch in order: its status, and its output or error once ended.

        Raises:
            BatchNotFoundError: No such batch.
        """
        batch = await self.read_ended_batch(batch_id)
        async for result in _batch_tasks.task_results(await self.client(), batch):
            yield result

    async def retry_failed_tasks(self, batch_id: str) -> Batch | None:
        """Enqueue the failed tasks' payloads of an ended batch as a new batch.

        Returns None, enqueuing nothing, when no task failed.

        The new batch runs the same agent for the same owner; ``metadata.retry_of`` names
        ``batch_id``.

        Raises:
            BatchNotFoundError: No such batch.
            TaskStateError: The batch is still running.
            UserError: The batch was started by Factorial 0.1 (its payloads are not kept).
        """
        _, description = await self._describe_batch(batch_id)
        return await _batch_tasks.retry_failed(
            await self.client(), description, self.batch_chunk_size, self.max_running_tasks
        )

    async def read_ended_batch(self, batch_id: str) -> Batch:
        """The batch read without a worker: an ended batch's final counts.

        From its result, or its memo (a cancelled or failed batch, or one still running: its
        counts a couple of seconds behind, ``get_batch`` asks its workflow). A batch started
        before batches kept a memo comes back with its task ids and nothing counted.

        Raises:
            BatchNotFoundError: No such batch.
        """
        _, description = await self._describe_batch(batch_id)
        return await _batch_tasks.batch_record(await self.client(), description)
