"""The ``Orchestrator``: the one object that talks to Temporal.

It maps calls onto workflow starts, queries, updates and cancellation, runs the workers of
the agents registered on it, and reads the owners' event streams. What each call does to
Temporal lives in ``factorial._tasks`` (one task), ``factorial._batches`` (a batch) and
``factorial._subscriptions`` (events); the Orchestrator holds the connection, the registered
agents, and the public API with its documentation.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Iterable, Sequence
from typing import Any

from temporalio.client import (
    Client,
    TLSConfig,
    WorkflowExecutionDescription,
)
from temporalio.service import RPCError
from temporalio.worker import Worker

from factorial import _batches, _tasks
from factorial import _wire as wire
from factorial._connection import connect, register_search_attributes, tls_config
from factorial._ids import validate_id
from factorial._streams import StreamReader
from factorial._subscriptions import OwnerFeed, owner_events
from factorial._workers import build_workers
from factorial.agent import BaseAgent
from factorial.context import AgentContext
from factorial.errors import (
    AgentNotRegisteredError,
    BatchNotFoundError,
    InvalidIdError,
    InvalidPayloadError,
    NotFoundError,
    TaskNotFoundError,
    UserError,
)
from factorial.events import EventStreamConfig
from factorial.models import ModelClients
from factorial.task import Batch, Task, TaskStatus
from factorial.worker import AgentWorkerConfig

#: Seconds between looks at a batch task that waits for a free slot.
_QUEUED_POLL = 1.0


class Orchestrator:
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

    # -- connection ----------------------------------------------------------------------

    async def client(self) -> Client:
        """The Temporal client, connected on first use.

        Raises:
            TemporalUnavailableError: No server answered at ``temporal_address``.
        """
        async with self._connect_lock:
            if self._client is None:
                self._client = await connect(
                    self.temporal_address, self.namespace, self._api_key, self._tls
                )
            if not self._connected:
                self._connected = True
                self._search_attributes = await register_search_attributes(self._client)
        return self._client

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

    # -- tasks ---------------------------------------------------------------------------

    async def enqueue_task(
        self,
        agent: BaseAgent[Any],
        task: Task | None = None,
        *,
        owner_id: str | None = None,
        payload: AgentContext | dict[str, Any] | None = None,
    ) -> Task:
        """Start a task of ``agent`` and return it (status ``queued``).

        Pass either a ``task`` from ``agent.create_task(...)`` or ``owner_id`` and ``payload``.

        Raises:
            AgentNotRegisteredError: The agent is not registered here.
            InvalidPayloadError: The payload does not validate as the agent's context.
            InvalidIdError: The owner or task id is not usable as a workflow id.
            PayloadTooLargeError: The payload is larger than Temporal accepts.
        """
        config = self._config_of(agent)
        task, context = _tasks.new_task(agent, task, owner_id, payload)
        client = await self.client()
        started = await _tasks.start_task(
            client, agent, config, task, context, self._search_attributes
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
        try:
            handle, description = await self._describe_task(task_id)
        except TaskNotFoundError:
            unstarted = await self._unstarted_status(task_id)
            if unstarted is None:
                raise
            return unstarted
        return await _tasks.status(handle, description)

    async def get_task_data(self, task_id: str) -> dict[str, Any] | None:
        """The task's data while running or after it ended: status, turn, output, error, context.

        Returns None when the task exists but no worker can answer for it right now.

        Raises:
            TaskNotFoundError: No such task.
        """
        try:
            handle, description = await self._describe_task(task_id)
        except TaskNotFoundError:
            unstarted = await self._unstarted_status(task_id)
            if unstarted is None:
                raise
            parsed = wire.batch_task_of(task_id)
            assert parsed is not None  # only a batch's task can be unstarted
            return {"task_id": task_id, "status": unstarted.value, "batch_id": parsed[0]}
        return await _tasks.data(handle, description)

    async def cancel_task(self, task_id: str) -> None:
        """Cancel a task: its running turn stops, ``on_run_cancelled`` runs, it ends cancelled.

        Cancelling a task that already ended does nothing.

        Raises:
            TaskNotFoundError: No such task.
        """
        await _tasks.cancel(*await self._describe_task(task_id))

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

    async def complete_deferred_tool(self, task_id: str, tool_call_id: str, result: Any) -> bool:
        """Deliver a deferred tool's result; True if the task was waiting for this call.

        Raises:
            TaskNotFoundError: No such task.
        """
        handle, description = await self._describe_task(task_id)
        return await _tasks.complete_tool(handle, description, task_id, tool_call_id, result)

    # -- batches -------------------------------------------------------------------------

    async def enqueue_batch(
        self,
        agent: BaseAgent[Any],
        owner_id: str,
        payloads: Sequence[AgentContext | dict[str, Any]],
    ) -> Batch:
        """Start one task of ``agent`` per payload, tracked together as a batch.

        Every payload is validated first: on any error nothing is started.

        Raises:
            AgentNotRegisteredError: The agent is not registered here.
            UserError: More than ``MAX_LEAVES * batch_chunk_size`` payloads.
            InvalidPayloadError: No payloads, or one does not validate (its index is named).
            InvalidIdError: The owner id is not usable as part of a workflow id.
            PayloadTooLargeError: One payload is larger than Temporal accepts.
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
        )

    async def get_batch(self, batch_id: str) -> Batch:
        """The batch's tasks, progress and status.

        Raises:
            BatchNotFoundError: No such batch.
        """
        return await _batches.read(*await self._describe_batch(batch_id))

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

    # -- events --------------------------------------------------------------------------

    async def subscribe_to_updates(
        self,
        owner_id: str,
        task_ids: Iterable[str] | None = None,
        event_types: Iterable[str] | None = None,
        event_pattern: str | None = None,
        from_offset: int | None = None,
    ) -> AsyncIterator[dict[str, Any]]:
        """Yield the owner's events as dicts, oldest retained first, then live.

        Each event carries an ``offset``; pass ``from_offset=event["offset"] + 1`` to resume
        after the last event seen. Only ``owner_id``'s events are ever delivered.

        Args:
            owner_id: Whose events.
            task_ids: Only events of these tasks.
            event_types: Only these event types.
            event_pattern: Only event types matching this regular expression (from the start).
            from_offset: First offset to deliver; None delivers everything still retained.
        """
        validate_id(owner_id, "owner id")
        feed = self._feeds.get(owner_id)
        if feed is None:
            reader = StreamReader(
                await self.client(), owner_id, self.event_stream, self.reconnect_timeout
            )
            feed = self._feeds[owner_id] = OwnerFeed(reader)
        events = owner_events(feed, owner_id, task_ids, event_types, event_pattern, from_offset)
        async for event in events:
            yield event

    # -- helpers -------------------------------------------------------------------------

    def _config_of(self, agent: BaseAgent[Any]) -> AgentWorkerConfig:
        registered = self._runners.get(agent.name)
        if registered is None or registered[0] is not agent:
            raise AgentNotRegisteredError(
                f"agent {agent.name!r} is not registered on this orchestrator; "
                "call register_runner(agent=...) first"
            )
        return registered[1]

    async def _unstarted_status(self, task_id: str) -> TaskStatus | None:
        """``queued`` or ``cancelled`` for a batch's task not started (yet); else None."""
        parsed = wire.batch_task_of(task_id)
        if parsed is None:
            return None
        batch_id, index = parsed
        try:
            batch = await self.get_batch(batch_id)
        except (NotFoundError, InvalidIdError, RPCError):
            return None
        if index >= batch.metadata.total_tasks:
            return None
        return TaskStatus.QUEUED if batch.metadata.status == "active" else TaskStatus.CANCELLED

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
