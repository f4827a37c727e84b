"""The Orchestrator's batch methods: enqueue a batch, read it, cancel it.

What each one does on Temporal is in ``factorial._batches``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from factorial import _batch_read, _batches
from factorial._budget import Budget
from factorial._orchestrator_base import OrchestratorBase
from factorial._policies import FailurePolicy
from factorial.agent import BaseAgent
from factorial.context import AgentContext
from factorial.task import Batch


class BatchAPI(OrchestratorBase):
    """``Orchestrator``'s methods for batches."""

    batch_chunk_size: int
    max_running_tasks: int

    async def enqueue_batch(
        self,
        agent: BaseAgent[Any],
        owner_id: str,
        payloads: Sequence[AgentContext | dict[str, Any]],
        *,
        idempotency_key: str | None = None,
        budget: Budget | None = None,
        on_failure: FailurePolicy | None = None,
    ) -> Batch:
        """Start one task of ``agent`` per payload, tracked together as a batch.

        Every payload is validated first: on any error nothing is started. A failing task
        never stops the batch unless ``on_failure`` says so: once more tasks have failed than
        it tolerates, the rest are cancelled and the batch ends ``failed``. With a
        ``budget``, the batch's tasks together (their sub-agents included) may spend at
        most that: once they have, the batch cancels its running tasks and ends ``failed``
        (``factorial._budget``). Either way ``batch_failed`` and ``metadata.reason`` say why
        (``BudgetExceeded: ...``, or how many tasks failed).

        With an ``idempotency_key``, the batch's id is derived from ``owner_id`` and the key,
        and every call with them returns that one batch, read back (same ``task_ids``), never
        a second run: concurrent calls, and calls after it ended, for as long as Temporal
        keeps the ended run (the namespace's retention period).

        Args:
            agent: The registered agent that runs each task.
            owner_id: Who the batch belongs to.
            payloads: One context (or dict) per task.
            idempotency_key: Start the batch once per owner and key.
            budget: The most the batch's tasks may spend together; None: no limit.
            on_failure: How many failed tasks the batch tolerates; None: any number.

        Raises:
            AgentNotRegisteredError: The agent is not registered here.
            UserError: More than ``MAX_LEAVES * batch_chunk_size`` payloads.
            InvalidPayloadError: No payloads, or one does not validate (its index is named).
            UserError: ``on_failure`` is not a ``FailurePolicy``.
            InvalidIdError: The owner id is not usable as part of a workflow id.
            PayloadTooLargeError: One payload is larger than Temporal accepts.
            IdempotencyConflictError: The key names a batch of another agent, payloads,
                budget or failure policy.
        """
        config = self._config_of(agent)
        client = await self.client()
        return await _batches.enqueue(
            client,
            agent,
            config,
            owner_id,
            payloads,
            self.batch_chunk_size,
            self.max_running_tasks,
            self._search_attributes,
            idempotency_key,
            budget,
            on_failure,
        )

    async def get_batch(self, batch_id: str) -> Batch:
        """The batch's tasks, progress, status, outcomes and token usage.

        It needs no worker: a running batch is queried for half a second, then read from the
        summary it keeps in its memo (at most about two seconds behind); an ended batch is
        read from its result or its memo.

        Raises:
            BatchNotFoundError: No such batch.
        """
        return await _batch_read.read(*await self._describe_batch(batch_id))

    async def cancel_batch(self, batch_id: str) -> Batch:
        """Cancel every task of the batch still running (and any not started yet).

        Emits ``batch_cancelled`` once and returns the updated batch; a batch that has
        already ended is returned as it is.

        Raises:
            BatchNotFoundError: No such batch.
        """
        handle, description = await self._describe_batch(batch_id)
        await _batches.cancel(await self.client(), handle, description)
        return await self.get_batch(batch_id)
