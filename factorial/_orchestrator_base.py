"""What the Orchestrator's groups of methods share: its connection and registered agents.

``Orchestrator.__init__`` sets the state declared here; the task, batch and event methods
(``_task_api``, ``_batch_api``, ``_event_api``) find a task's or batch's workflow through
the lookups here.
"""

from __future__ import annotations

import asyncio
from typing import Any

from temporalio.client import Client, TLSConfig, WorkflowExecutionDescription
from temporalio.runtime import Runtime

from factorial import _tasks, _tracing
from factorial import _wire as wire
from factorial._connection import connect, metrics_runtime, register_search_attributes
from factorial.agent import BaseAgent
from factorial.errors import AgentNotRegisteredError, BatchNotFoundError, TaskNotFoundError
from factorial.worker import AgentWorkerConfig


class OrchestratorBase:
    """The connection, the registered agents, and finding a task's or batch's workflow."""

    temporal_address: str
    namespace: str
    metrics_address: str | None
    tracing: bool
    _runtime: Runtime | None
    _api_key: str | None
    _tls: bool | TLSConfig
    _client: Client | None
    _connected: bool
    _connect_lock: asyncio.Lock
    _search_attributes: frozenset[str]
    _runners: dict[str, tuple[BaseAgent[Any], AgentWorkerConfig]]

    async def client(self) -> Client:
        """The Temporal client, connected on first use.

        With ``metrics_address`` set, the client (and the workers built on it) use a runtime
        that serves Prometheus metrics there; with ``tracing``, Temporal's OpenTelemetry
        interceptor.

        Raises:
            TemporalUnavailableError: No server answered at ``temporal_address``.
            UserError: The metrics address cannot be served.
        """
        async with self._connect_lock:
            if self._client is None:
                runtime = None
                if self.metrics_address:
                    runtime = self._runtime = metrics_runtime(self.metrics_address)
                self._client = await connect(
                    self.temporal_address,
                    self.namespace,
                    self._api_key,
                    self._tls,
                    runtime=runtime,
                    interceptors=[_tracing.interceptor()] if self.tracing else [],
                )
            if not self._connected:
                self._connected = True
                self._search_attributes = await register_search_attributes(self._client)
        return self._client

    def _config_of(self, agent: BaseAgent[Any]) -> AgentWorkerConfig:
        registered = self._runners.get(agent.name)
        if registered is None or registered[0] is not agent:
            raise AgentNotRegisteredError(
                f"agent {agent.name!r} is not registered on this orchestrator; "
                "call register_runner(agent=...) first"
            )
        return registered[1]

    async def _describe_task(
        self, task_id: str
    ) -> tuple[_tasks.Handle, WorkflowExecutionDescription]:
        return await _tasks.describe(
            await self.client(),
            task_id,
            "task",
            (wire.TASK_WORKFLOW,),
            wire.TaskSnapshot,
            TaskNotFoundError,
        )

    async def _describe_batch(
        self, batch_id: str
    ) -> tuple[_tasks.Handle, WorkflowExecutionDescription]:
        return await _tasks.describe(
            await self.client(),
            batch_id,
            "batch",
            wire.BATCH_WORKFLOWS,
            wire.BatchSnapshot,
            BatchNotFoundError,
        )
