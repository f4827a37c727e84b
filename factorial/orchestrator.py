"""The ``Orchestrator``: the one object that talks to Temporal.

It maps calls onto workflow starts, queries, updates and cancellation, runs the workers of
the agents registered on it, and reads the owners' event streams.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
from collections.abc import AsyncIterator, Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from temporalio.client import (
    Client,
    TLSConfig,
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
from temporalio.worker import Worker

from factorial import _wire as wire
from factorial._batches import batch_from, cancel_running, new_batch_record, start_batch
from factorial._connection import register_search_attributes, tls_config
from factorial._converter import DATA_CONVERTER
from factorial._ids import new_batch_id, validate_id
from factorial._payloads import check_size, chunk_payloads
from factorial._streams import StreamReader
from factorial._subscriptions import OwnerFeed
from factorial.agent import BaseAgent
from factorial.context import AgentContext
from factorial.errors import (
    AgentNotRegisteredError,
    BatchNotFoundError,
    InvalidIdError,
    InvalidPayloadError,
    NotFoundError,
    TaskCancelledError,
    TaskFailedError,
    TaskNotFoundError,
    TaskStateError,
    TemporalUnavailableError,
    UserError,
)
from factorial.events import EventStreamConfig
from factorial.models import ModelClients
from factorial.task import Batch, Task, TaskStatus
from factorial.tools import format_tool_output
from factorial.worker import AgentWorkerConfig, agent_task_queue, build_workers

#: Most leaves (chunks of ``batch_chunk_size`` tasks) one batch may have.
MAX_LEAVES = 1_000
#: How long connecting may take before the server counts as unavailable.
_CONNECT_TIMEOUT = timedelta(seconds=15)
#: How long a query or an update waits for a worker before giving up.
_QUERY_TIMEOUT = timedelta(seconds=10)
_UPDATE_TIMEOUT = timedelta(seconds=30)
#: Seconds between looks at a batch task that waits for a free slot.
_QUEUED_POLL = 1.0
#: Seconds between sweeps of a batch being cancelled (visibility lags about a second).
_SWEEP_INTERVAL = 1.5

_CLOSED_STATUS = {
    WorkflowExecutionStatus.COMPLETED: TaskStatus.COMPLETED,
    WorkflowExecutionStatus.FAILED: TaskStatus.FAILED,
    WorkflowExecutionStatus.TERMINATED: TaskStatus.FAILED,
    WorkflowExecutionStatus.TIMED_OUT: TaskStatus.FAILED,
    WorkflowExecutionStatus.CANCELED: TaskStatus.CANCELLED,
}


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
            if self._client is not None and not self._connected:
                self._connected = True
                self._search_attributes = await register_search_attributes(self._client)
            if self._client is None:
                try:
                    self._client = await asyncio.wait_for(
                        Client.connect(
                            self.temporal_address,
                            namespace=self.namespace,
                            data_converter=DATA_CONVERTER,
                            api_key=self._api_key,
                            tls=self._tls,
                        ),
                        _CONNECT_TIMEOUT.total_seconds(),
                    )
                except (RuntimeError, TimeoutError) as err:
                    raise TemporalUnavailableError(
                        f"no Temporal server answered at {self.temporal_address}: "
                        f"{err or 'timed out'}"
                    ) from None
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
        if task is None:
            if owner_id is None:
                raise UserError("enqueue_task needs a task, or an owner_id and a payload")
            task = agent.create_task(owner_id=owner_id, payload=payload or {})
        if task.agent != agent.name:
            raise UserError(f"task {task.id} belongs to agent {task.agent!r}, not {agent.name!r}")
        validate_id(task.id, "task id")
        validate_id(task.metadata.owner_id, "owner id")
        context = agent.validate_payload(task.payload)
        inp = wire.TaskInput(
            task_id=task.id,
            owner_id=task.metadata.owner_id,
            agent_name=agent.name,
            payload=context.model_dump(mode="json"),
            policy=config.turn_policy(),
            created_at=task.metadata.created_at or datetime.now(UTC),
            hooks=agent.hooks_outside_turns(),
        )
        client = await self.client()
        inp.track_status = wire.SA_STATUS in self._search_attributes
        check_size(client, inp)
        try:
            await client.start_workflow(
                wire.TASK_WORKFLOW,
                inp,
                id=task.id,
                task_queue=agent_task_queue(agent.name, config),
                search_attributes=_task_search_attributes(inp, self._search_attributes),
                static_summary=f"{agent.name} task of {inp.owner_id}",
                static_details=f"Query: {_clip(context.query)}",
                id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            )
        except WorkflowAlreadyStartedError:
            raise UserError(f"a task with id {task.id!r} already exists") from None
        queued = task.model_copy(update={"payload": context, "status": TaskStatus.QUEUED})
        queued._orchestrator = self
        return queued

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
        try:
            snapshot = await handle.result()
        except WorkflowFailureError as err:
            if is_cancelled_exception(err.cause):
                raise TaskCancelledError(task_id) from None
            cause = err.cause
            message = cause.message if isinstance(cause, ApplicationError) else str(cause)
            raise TaskFailedError(task_id, message) from None
        return snapshot.output

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
        closed = _CLOSED_STATUS.get(description.status)
        if closed is not None:
            return closed
        snapshot: wire.TaskSnapshot
        try:
            snapshot = await handle.query(
                wire.SNAPSHOT_QUERY, result_type=wire.TaskSnapshot, rpc_timeout=_QUERY_TIMEOUT
            )
        except RPCError:
            # No worker answered: fall back to the status the task last indexed.
            indexed = description.typed_search_attributes.get(
                SearchAttributeKey.for_keyword(wire.SA_STATUS)
            )
            return TaskStatus(indexed) if indexed else TaskStatus.QUEUED
        status = TaskStatus(snapshot.status)
        if status == TaskStatus.PROCESSING and _turn_in_backoff(description):
            return TaskStatus.BACKOFF
        return status

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
        snapshot: wire.TaskSnapshot
        try:
            snapshot = await handle.query(
                wire.SNAPSHOT_QUERY, result_type=wire.TaskSnapshot, rpc_timeout=_QUERY_TIMEOUT
            )
        except RPCError:
            if description.status != WorkflowExecutionStatus.COMPLETED:
                return None
            snapshot = await handle.result()
        data = snapshot.model_dump(mode="json")
        closed = _CLOSED_STATUS.get(description.status)
        if closed is not None:
            data["status"] = closed.value
        return data

    async def cancel_task(self, task_id: str) -> None:
        """Cancel a task: its running turn stops, ``on_run_cancelled`` runs, it ends cancelled.

        Cancelling a task that already ended does nothing.

        Raises:
            TaskNotFoundError: No such task.
        """
        handle, description = await self._describe_task(task_id)
        if description.status != WorkflowExecutionStatus.RUNNING:
            return
        try:
            await handle.cancel()
        except RPCError as err:
            if err.status != RPCStatusCode.NOT_FOUND:
                raise

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
        try:
            await handle.execute_update(
                wire.STEER_UPDATE,
                wire.SteerInput(messages=list(messages)),
                rpc_timeout=_UPDATE_TIMEOUT,
            )
        except WorkflowUpdateFailedError as err:
            raise _update_error(err) from None
        except WorkflowUpdateRPCTimeoutOrCancelledError:
            raise _no_worker(task_id, "steering") from None
        except RPCError as err:
            if err.status == RPCStatusCode.NOT_FOUND:
                raise TaskStateError(f"task {task_id} has already ended") from None
            raise

    async def complete_deferred_tool(self, task_id: str, tool_call_id: str, result: Any) -> bool:
        """Deliver a deferred tool's result; True if the task was waiting for this call.

        Raises:
            TaskNotFoundError: No such task.
        """
        handle, description = await self._describe_task(task_id)
        if description.status != WorkflowExecutionStatus.RUNNING:
            return False
        try:
            accepted: bool = await handle.execute_update(
                wire.COMPLETE_TOOL_UPDATE,
                wire.CompleteToolInput(
                    tool_call_id=tool_call_id, result=format_tool_output(result)
                ),
                result_type=bool,
                rpc_timeout=_UPDATE_TIMEOUT,
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
        validate_id(owner_id, "owner id")
        if not payloads:
            raise InvalidPayloadError("a batch needs at least one payload")
        contexts = []
        for index, payload in enumerate(payloads):
            try:
                contexts.append(agent.validate_payload(payload).model_dump(mode="json"))
            except InvalidPayloadError as err:
                raise InvalidPayloadError(f"payload {index}: {err}") from None
        client = await self.client()
        chunks = chunk_payloads(client, contexts, self.batch_chunk_size)
        if len(chunks) > MAX_LEAVES:
            # The root cancels its leaves one request each; Temporal stalls a run past 2,000.
            raise UserError(
                f"a batch of {len(contexts)} tasks needs {len(chunks)} leaves, over the "
                f"{MAX_LEAVES} one batch runs; raise batch_chunk_size or split the batch"
            )
        inp = wire.BatchInput(
            batch_id=new_batch_id(),
            owner_id=owner_id,
            agent_name=agent.name,
            task_queue=agent_task_queue(agent.name, config),
            total_tasks=len(contexts),
            policy=config.turn_policy(),
            max_turns=agent.max_turns,
            created_at=datetime.now(UTC),
            track_status=wire.SA_STATUS in self._search_attributes,
            hooks=agent.hooks_outside_turns(),
        )
        await start_batch(client, inp, chunks, self.max_running_tasks)
        return new_batch_record(inp)

    async def get_batch(self, batch_id: str) -> Batch:
        """The batch's tasks, progress and status.

        Raises:
            BatchNotFoundError: No such batch.
        """
        handle, description = await self._describe_batch(batch_id)
        try:
            snapshot = await handle.query(
                wire.BATCH_SNAPSHOT_QUERY,
                result_type=wire.BatchSnapshot,
                rpc_timeout=_QUERY_TIMEOUT,
            )
        except RPCError:
            if description.status != WorkflowExecutionStatus.COMPLETED:
                raise
            snapshot = await handle.result()
        return batch_from(snapshot)

    async def cancel_batch(self, batch_id: str) -> Batch:
        """Cancel every task of the batch still running (and any not started yet).

        Emits ``batch_cancelled`` once and returns the updated batch; a batch that has
        already ended is returned as it is.

        Raises:
            BatchNotFoundError: No such batch.
        """
        handle, description = await self._describe_batch(batch_id)
        if description.status == WorkflowExecutionStatus.RUNNING:
            try:
                await handle.cancel()
            except RPCError as err:
                if err.status != RPCStatusCode.NOT_FOUND:
                    raise
            await self._sweep_until_ended(handle, batch_id)
        return await self.get_batch(batch_id)

    async def _sweep_until_ended(self, handle: WorkflowHandle[Any, Any], batch_id: str) -> None:
        """Cancel the batch's running workflows directly until its root has ended.

        The batch's own cancellation reaches every task; these direct cancels only make it
        fast (``factorial._batches.cancel_running``). Each sweep asks the tasks that visibility
        shows running and were not asked yet.
        """
        client, asked = await self.client(), set[str]()
        ended = asyncio.ensure_future(handle.result())
        try:
            while not ended.done():
                await cancel_running(client, batch_id, asked)
                await asyncio.wait([ended], timeout=_SWEEP_INTERVAL)
            with contextlib.suppress(WorkflowFailureError):  # cancelled, as asked
                ended.result()
        finally:
            ended.cancel()

    async def _describe_batch(self, batch_id: str) -> tuple[WorkflowHandle[Any, Any], Any]:
        return await self._describe(
            batch_id, "batch", wire.BATCH_WORKFLOWS, wire.BatchSnapshot, BatchNotFoundError
        )

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
        tasks = set(task_ids) if task_ids is not None else None
        types = set(event_types) if event_types is not None else None
        pattern = re.compile(event_pattern) if event_pattern else None
        feed = self._feeds.get(owner_id)
        if feed is None:
            reader = StreamReader(
                await self.client(), owner_id, self.event_stream, self.reconnect_timeout
            )
            feed = self._feeds[owner_id] = OwnerFeed(reader)
        async for offset, event in feed.items(from_offset):
            if event.get("owner_id") != owner_id:
                continue
            if tasks is not None and event.get("task_id") not in tasks:
                continue
            event_type = event.get("event_type", "")
            if types is not None and event_type not in types:
                continue
            if pattern is not None and not pattern.match(event_type):
                continue
            yield {**event, "offset": offset}

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

    async def _describe_task(self, task_id: str) -> tuple[WorkflowHandle[Any, Any], Any]:
        return await self._describe(
            task_id, "task", (wire.TASK_WORKFLOW,), wire.TaskSnapshot, TaskNotFoundError
        )

    async def _describe(
        self,
        workflow_id: str,
        what: str,
        workflow_types: tuple[str, ...],
        result_type: type[Any],
        not_found: type[NotFoundError],
    ) -> tuple[WorkflowHandle[Any, Any], Any]:
        """A handle and description of a task or batch workflow, or ``not_found``."""
        validate_id(workflow_id, f"{what} id")
        client = await self.client()
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


def _task_search_attributes(
    inp: wire.TaskInput, available: frozenset[str]
) -> TypedSearchAttributes:
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


def _turn_in_backoff(description: Any) -> bool:
    """True when the turn activity failed and waits for its next attempt."""
    for pending in description.raw_description.pending_activities:
        if pending.attempt > 1 and pending.state == 1:  # PENDING_ACTIVITY_STATE_SCHEDULED
            return True
    return False


def _no_worker(task_id: str, what: str) -> TaskStateError:
    return TaskStateError(
        f"no worker took the {what} for task {task_id} within {_UPDATE_TIMEOUT.seconds}s; "
        "is a worker for its agent running? It may still be applied when one starts"
    )


def _update_error(err: WorkflowUpdateFailedError) -> Exception:
    cause = err.cause
    if isinstance(cause, ApplicationError):
        if cause.type == "TaskStateError":
            return TaskStateError(cause.message)
        if cause.type == "InvalidPayloadError":
            return InvalidPayloadError(cause.message)
    return TaskStateError(str(cause or err))


def _clip(text: str, limit: int = 200) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
