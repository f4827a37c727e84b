"""The ``Orchestrator``: the one object that talks to Temporal.

It maps calls onto workflow starts, queries, updates and cancellation, runs the workers of
the agents registered on it, and reads the owners' event streams. This module holds its
settings and its workers; its methods come in groups, one module each: the connection and
the registered agents (``_orchestrator_base``), tasks (``_task_api``), batches
(``_batch_api``) and events (``_event_api``). What each call does to Temporal lives in
``factorial._tasks`` (one task), ``factorial._batches`` (a batch) and
``factorial._subscriptions`` (events).
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

from pydantic import ValidationError
from temporalio.client import Client, TLSConfig
from temporalio.worker import Worker

from factorial import _tracing
from factorial import _wire as wire
from factorial._batch_api import BatchAPI
from factorial._connection import check_metrics_address, tls_config
from factorial._event_api import EventAPI
from factorial._ops_api import OpsAPI
from factorial._subscriptions import OwnerFeed
from factorial._task_api import TaskAPI
from factorial._workers import build_workers
from factorial.agent import BaseAgent
from factorial.errors import UserError
from factorial.events import EventStreamConfig
from factorial.models import ModelClients
from factorial.worker import AgentWorkerConfig


class Orchestrator(TaskAPI, BatchAPI, EventAPI, OpsAPI):
    """Runs agents on Temporal: enqueue, inspect, steer, cancel and follow tasks.

    Args:
        temporal_address: ``host:port`` of the Temporal frontend; defaults to
            ``TEMPORAL_ADDRESS`` or ``localhost:7233``.
        namespace: Temporal namespace; defaults to ``TEMPORAL_NAMESPACE`` or ``default``.
        api_key: API key for Temporal Cloud; defaults to ``TEMPORAL_API_KEY``.
        tls: ``True``, a ``TLSConfig``, or None (on when an API key or client cert is set).
        tls_client_cert_path: Client certificate (mTLS); defaults to ``TEMPORAL_TLS_CERT``.
        tls_client_key_path: Client key (mTLS); defaults to ``TEMPORAL_TLS_KEY``.
        tls_server_ca_path: CA of the server; defaults to ``TEMPORAL_TLS_CA``.
        client: An already connected Temporal client (its data converter must be the
            pydantic one); the settings above are then ignored.
        model_api_keys: Model provider keys by provider (``{"openai": "sk-..."}``); the
            environment (``OPENAI_API_KEY``, ...) fills in the rest.
        model_base_urls: Model provider base URLs by provider.
        batch_chunk_size: Tasks per leaf of a batch's tree (see ``factorial.workflows.batch``); a
            batch of more tasks is split into leaves of this size.
        max_running_tasks: Tasks of one batch that run at once, at most; the others wait
            their turn (``queued``), so a worker's workflow cache does not thrash. It also
            bounds what ``cancel_batch`` has to stop: on 2 cores, 200 running tasks of
            3-second turns are cancelled in about 5 s, 500 in 10-16 s. Size it to your
            workers: about the turns a second they sustain times a turn's seconds.
        event_stream: What owners' event streams retain, and when idle ones close.
        reconnect_timeout: Seconds a subscription keeps retrying an unreachable server
            before it raises ``TemporalUnavailableError``.
        sandboxed_workflows: Run this process's workflows in the Temporal SDK's sandbox,
            which catches non-deterministic calls in workflow code. ``False`` runs them
            unsandboxed: less worker CPU per task (see ``benchmarks/README.md``), and
            nothing then guards a workflow against a clock, random or I/O call.
        metrics_address: ``host:port`` where this process serves Prometheus metrics
            (``/metrics``): Temporal's SDK metrics and Factorial's own, by agent (see the
            README). Needs the Orchestrator's own connection (no ``client``).
        tracing: Trace tasks, turns, model calls and tool calls with OpenTelemetry, to the
            global tracer provider; needs the ``otel`` extra.

    Example:
        >>> orchestrator = Orchestrator(temporal_address="localhost:7233")
        >>> orchestrator.register_runner(agent=agent)
        >>> task = await orchestrator.enqueue_task(agent=agent, owner_id="u1", payload=ctx)
    """

    def __init__(
        self,
        temporal_address: str | None = None,
        namespace: str | None = None,
        *,
        api_key: str | None = None,
        tls: bool | TLSConfig | None = None,
        tls_client_cert_path: str | None = None,
        tls_client_key_path: str | None = None,
        tls_server_ca_path: str | None = None,
        client: Client | None = None,
        model_api_keys: dict[str, str] | None = None,
        model_base_urls: dict[str, str] | None = None,
        batch_chunk_size: int = 200,
        max_running_tasks: int = 200,
        event_stream: EventStreamConfig | None = None,
        reconnect_timeout: float = 60.0,
        sandboxed_workflows: bool = True,
        metrics_address: str | None = None,
        tracing: bool = False,
    ) -> None:
        env = os.environ
        self.temporal_address = temporal_address or env.get("TEMPORAL_ADDRESS") or "localhost:7233"
        self.namespace = namespace or env.get("TEMPORAL_NAMESPACE") or "default"
        self._api_key = api_key or env.get("TEMPORAL_API_KEY") or None
        self._tls = tls_config(
            tls,
            tls_client_cert_path or env.get("TEMPORAL_TLS_CERT"),
            tls_client_key_path or env.get("TEMPORAL_TLS_KEY"),
            tls_server_ca_path or env.get("TEMPORAL_TLS_CA"),
            has_api_key=self._api_key is not None,
        )
        self._client = client
        self._search_attributes: frozenset[str] = frozenset(wire.SEARCH_ATTRIBUTES)
        self._connected = False
        self._connect_lock = asyncio.Lock()
        self._runners: dict[str, tuple[BaseAgent[Any], AgentWorkerConfig]] = {}
        self._model_clients = ModelClients(model_api_keys, model_base_urls)
        self._workers: list[Worker] = []
        self._worker_tasks: list[asyncio.Task[None]] = []
        self._feeds: dict[str, OwnerFeed] = {}
        if batch_chunk_size < 1:
            raise UserError("batch_chunk_size must be at least 1")
        if max_running_tasks < 1:
            raise UserError("max_running_tasks must be at least 1")
        self.batch_chunk_size = batch_chunk_size
        self.max_running_tasks = max_running_tasks
        self.event_stream = event_stream or EventStreamConfig()
        self.reconnect_timeout = reconnect_timeout
        self.sandboxed_workflows = sandboxed_workflows
        if metrics_address is not None and client is not None:
            raise UserError(
                "metrics_address needs the Orchestrator's own connection; with your own "
                "client, connect it with a temporalio Runtime that has a PrometheusConfig"
            )
        self.metrics_address = metrics_address and check_metrics_address(metrics_address)
        self._runtime = None
        if tracing:
            _tracing.require()
        self.tracing = tracing

    # -- agents and workers ---------------------------------------------------------------

    def register_runner(
        self, agent: BaseAgent[Any], agent_worker_config: AgentWorkerConfig | None = None
    ) -> None:
        """Register an agent so this orchestrator can enqueue its tasks and run its workers.

        Raises:
            UserError: Another agent with the same name is already registered.
        """
        existing = self._runners.get(agent.name)
        if existing is not None and existing[0] is not agent:
            raise UserError(f"another agent named {agent.name!r} is already registered")
        self._runners[agent.name] = (agent, agent_worker_config or AgentWorkerConfig())

    @property
    def agents(self) -> list[BaseAgent[Any]]:
        """The registered agents."""
        return [agent for agent, _ in self._runners.values()]

    def update_worker_configs(self, **changes: Any) -> None:
        """Change fields of every registered agent's ``AgentWorkerConfig``.

        ``factorial worker --max-concurrent-turns`` and ``--max-concurrent-tasks`` use it.
        It applies to workers started afterwards.

        Raises:
            UserError: A field is unknown or its value is invalid.
        """
        unknown = sorted(set(changes) - set(AgentWorkerConfig.model_fields))
        if unknown:
            raise UserError(f"AgentWorkerConfig has no field {unknown[0]!r}")
        for name, (agent, config) in list(self._runners.items()):
            try:
                updated = AgentWorkerConfig.model_validate({**config.model_dump(), **changes})
            except ValidationError as err:
                raise UserError(f"invalid worker config for {name!r}: {err}") from None
            self._runners[name] = (agent, updated)

    @property
    def workers_running(self) -> bool:
        """True while every worker started by ``start_workers`` runs (the health check)."""
        tasks = self._worker_tasks
        return bool(tasks) and not any(task.done() for task in tasks)

    async def start_workers(self) -> None:
        """Start workers for every registered agent in the background of this event loop."""
        if self._workers:
            return
        client = await self.client()
        self._workers = build_workers(
            client,
            self._runners,
            self._model_clients,
            self.event_stream,
            sandboxed=self.sandboxed_workflows,
            tracing=self.tracing,
        )
        self._worker_tasks = [asyncio.create_task(worker.run()) for worker in self._workers]

    async def stop_workers(self) -> None:
        """Stop the workers started by ``start_workers``, letting running turns finish briefly."""
        workers, self._workers = self._workers, []
        await asyncio.gather(*(worker.shutdown() for worker in workers), return_exceptions=True)
        tasks, self._worker_tasks = self._worker_tasks, []
        await asyncio.gather(*tasks, return_exceptions=True)

    async def serve(self) -> None:
        """Run the workers until cancelled."""
        await self.start_workers()
        try:
            await asyncio.gather(*self._worker_tasks)
        finally:
            await self.stop_workers()

    def run(self) -> None:
        """Run the workers in the foreground until interrupted (Ctrl-C)."""
        try:
            asyncio.run(self.serve())
        except KeyboardInterrupt:
            pass

    async def close(self) -> None:
        """Stop workers and close model clients."""
        await self.stop_workers()
        await self._model_clients.aclose()
