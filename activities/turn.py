"""The ``run_turn`` and ``run_hook`` activities: one agent turn, and hooks outside a turn.

Errors are mapped once, here, onto Temporal's retry machinery: retryable model errors
(408/409/429/5xx, connection errors, unusable answers) retry with the policy the workflow
set, honouring ``Retry-After``; everything the same input would fail again on
(non-retryable HTTP statuses, ``max_turns``, invalid payloads) fails the turn for good.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Mapping
from datetime import timedelta
from typing import Any

from temporalio import activity
from temporalio.exceptions import ApplicationError

from factorial import events as ev
from factorial._ids import agent_task_queue_name
from factorial._metrics import record_turn
from factorial._payloads import MAX_PAYLOAD_BYTES, payload_size
from factorial._spawn import Spawner, SpawnRequest
from factorial._wire import (
    DEFAULT_TURN_EXECUTION,
    RUN_HOOK_ACTIVITY,
    RUN_TURN_ACTIVITY,
    ChildBatchRequest,
    FailureType,
    HookInput,
    PendingToolCall,
    TaskTurnReport,
    TurnInput,
    TurnOutput,
    TurnPolicy,
)
from factorial.activities.interruption import Interruption
from factorial.activities.publishing import EventStreams, TurnReporter
from factorial.agent import BaseAgent, TurnCompletion
from factorial.context import ExecutionContext
from factorial.errors import FactorialError, ModelBehaviorError, ModelHTTPError, UserError
from factorial.events import EventPublisher, EventStreamConfig
from factorial.models import ModelClients

#: Seconds between heartbeats, and between flushes of a long turn's events.
_TICK = 1.0


def to_application_error(err: FactorialError) -> ApplicationError:
    """Map a Factorial error onto a retryable or non-retryable ``ApplicationError``."""
    if isinstance(err, ModelHTTPError):
        delay = timedelta(seconds=err.retry_after) if err.retry_after else None
        status = f"HTTP {err.status_code}" if err.status_code else "no response"
        return ApplicationError(
            f"{status}: {err}",
            {"status_code": err.status_code},
            type=FailureType.MODEL_HTTP,
            non_retryable=not err.retryable,
            next_retry_delay=delay,
        )
    retryable = isinstance(err, ModelBehaviorError)
    return ApplicationError(str(err), type=type(err).__name__, non_retryable=not retryable)


class AgentActivities:
    """Activities bound to the agents registered in this worker process."""

    def __init__(
        self,
        agents: Mapping[str, BaseAgent[Any]],
        clients: ModelClients,
        routes: Mapping[str, tuple[str, TurnPolicy]] | None = None,
        stream_config: EventStreamConfig | None = None,
    ) -> None:
        """Bind the activities to agents.

        Args:
            agents: The registered agents by name.
            clients: Model clients shared by all turns of this worker.
            routes: Task queue and turn policy by agent name, for children a forking
                tool spawns (defaults to ``factorial-agent-{name}`` and default policy).
            stream_config: How owners' event streams this worker (re)starts retain events.
        """
        self._agents = agents
        self._clients = clients
        self._stream_config = stream_config or EventStreamConfig()
        self._routes = dict(routes or {})
        self._spawner = Spawner(lambda name: name in self._agents)
        self._streams: EventStreams | None = None
        self._reporter: TurnReporter | None = None

    def _agent(self, name: str) -> BaseAgent[Any]:
        agent = self._agents.get(name)
        if agent is None:
            raise ApplicationError(
                f"agent {name!r} is not registered in this worker",
                type=FailureType.AGENT_NOT_REGISTERED,
                non_retryable=True,
            )
        return agent

    def _publishing(self) -> tuple[EventStreams, TurnReporter]:
        """This worker's shared publishers (built on first use, with the worker's client)."""
        if self._streams is None or self._reporter is None:
            client = activity.client()
            self._streams = EventStreams(client, self._stream_config)
            self._reporter = TurnReporter(client)
        return self._streams, self._reporter

    @activity.defn(name=RUN_TURN_ACTIVITY)
    async def run_turn(self, inp: TurnInput) -> TurnOutput:
        """Run one turn of the task's agent."""
        started = time.monotonic()
        agent = self._agent(inp.agent_name)
        info = activity.info()
        try:
            ctx = agent.validate_payload(inp.context)
        except UserError as err:
            raise to_application_error(err) from err
        ctx.attempt = info.attempt
        streams, reporter = self._publishing()
        events = EventPublisher(
            streams.publisher(inp.owner_id),
            task_id=inp.task_id,
            owner_id=inp.owner_id,
            agent_name=agent.name,
            flush=lambda: streams.flush(inp.owner_id),
        )
        execution_ctx = ExecutionContext(
            task_id=inp.task_id,
            owner_id=inp.owner_id,
            agent_name=agent.name,
            retries=info.attempt - 1,
            iterations=ctx.turn,
            batch_id=inp.batch_id,
            parent_task_id=inp.parent_task_id,
            events=events,
            _spawner=self._spawner,
            _clients=self._clients,
        )
        resumed = [(r.tool_call_id, r.content) for r in inp.resumed_results]
        if ctx.turn == 0:
            # Here rather than in the workflow so it lands before the turn's own events
            # (a retried first turn announces itself again).
            events.emit(ev.RUN_STARTED, attempt=info.attempt)
        outcome = "failed"
        watch = None
        if info.is_local and info.workflow_id:
            watch = Interruption(activity.client(), info.workflow_id, info.workflow_run_id)
        try:
            async with _live(streams, inp.owner_id, watch):
                try:
                    completion = await agent.execute_turn(ctx, execution_ctx, resumed)
                except FactorialError as err:
                    app_err = to_application_error(err)
                    _report_failure(events, app_err, info)
                    raise app_err from err
                except Exception as err:
                    _report_failure(events, err, info)
                    raise
                output = self._output(agent, completion, time.monotonic() - started)
                output.encoded_bytes = _checked_state_size(output, events, info)
            outcome = "succeeded"
        except asyncio.CancelledError:
            outcome = "cancelled"
            if watch is None or not watch.happened:
                raise
            watch.handled()
            return TurnOutput(context=inp.context, interrupted=True)
        finally:
            record_turn(agent.name, outcome, time.monotonic() - started, info.attempt)
        if inp.report_to and agent.max_turns is not None:
            # Only turn-based progress needs every turn; otherwise tasks count when they end.
            await reporter.report(
                inp.report_to,
                TaskTurnReport(task_id=inp.task_id, turns=completion.context.turn, index=inp.index),
                delay=inp.report_delay,
            )
        return output

    def _output(
        self, agent: BaseAgent[Any], completion: TurnCompletion[Any], seconds: float
    ) -> TurnOutput:
        exhausted = agent.turns_exhausted(completion)
        return TurnOutput(
            seconds=round(seconds, 3),
            child_batches=[self._child_batch(r) for r in completion.child_batches],
            failure=f"MaxTurnsExceeded: {exhausted}" if exhausted else None,
            context=completion.context.model_dump(mode="json"),
            done=completion.is_done,
            output=completion.output,
            usage=completion.usage,
            pending_tool_calls=[
                PendingToolCall(
                    tool_call_id=p.tool_call_id, tool_name=p.tool_name, timeout=p.timeout
                )
                for p in completion.pending_tool_calls
            ],
        )

    def _child_batch(self, request: SpawnRequest) -> ChildBatchRequest:
        default = (
            agent_task_queue_name(request.agent_name),
            TurnPolicy(turn_execution=DEFAULT_TURN_EXECUTION),
        )
        task_queue, policy = self._routes.get(request.agent_name, default)
        return ChildBatchRequest(
            batch_id=request.batch_id,
            agent_name=request.agent_name,
            task_queue=task_queue,
            policy=policy,
            max_turns=request.max_turns,
            payloads=request.payloads,
            tool_call_id=request.tool_call_id,
            timeout=request.timeout,
            join=request.join,
            hooks=self._agents[request.agent_name].hooks_outside_turns(),
            task_budget=self._agents[request.agent_name].budget,
        )

    @activity.defn(name=RUN_HOOK_ACTIVITY)
    async def run_hook(self, inp: HookInput) -> None:
        """Run ``on_run_end`` for a failed run or ``on_run_cancelled``."""
        agent = self._agent(inp.agent_name)
        if agent.hooks.get(inp.hook) is None:
            return
        ctx = agent.validate_payload(inp.context)
        streams, _ = self._publishing()
        execution_ctx = ExecutionContext(
            task_id=inp.task_id,
            owner_id=inp.owner_id,
            agent_name=agent.name,
            iterations=ctx.turn,
            batch_id=inp.batch_id,
            parent_task_id=inp.parent_task_id,
            events=EventPublisher(
                streams.publisher(inp.owner_id),
                task_id=inp.task_id,
                owner_id=inp.owner_id,
                agent_name=agent.name,
            ),
            _clients=self._clients,
        )
        async with _live(streams, inp.owner_id):
            await agent.run_hook(inp.hook, ctx, execution_ctx, error=inp.error)


@contextlib.asynccontextmanager
async def _live(
    streams: EventStreams, owner_id: str, watch: Interruption | None = None
) -> AsyncIterator[None]:
    """Heartbeat (so cancellation reaches a long model call) and stream events as they come.

    A local turn has no heartbeat: ``watch`` looks for its task's cancellation instead.

    On the way out the owner's buffered events are flushed, failure or not, so they land
    before anything the workflow publishes next.
    """

    # A local turn has no heartbeat: its worker cancels it directly.
    heartbeat = not activity.info().is_local

    async def tick() -> None:
        while True:  # a turn shorter than a tick needs no heartbeat at all
            await asyncio.sleep(_TICK)
            if heartbeat:
                activity.heartbeat()
            try:
                await streams.flush(owner_id)
            except Exception:
                activity.logger.warning("could not publish events yet; will retry", exc_info=True)
            if watch is not None and await watch.check():
                return

    ticker = asyncio.create_task(tick())
    failed = True
    try:
        yield
        failed = False
    finally:
        ticker.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await ticker
        try:
            await streams.flush(owner_id)
        except Exception:
            if not failed:
                raise
            activity.logger.warning("could not publish the events of a failed turn", exc_info=True)


def _checked_state_size(output: TurnOutput, events: EventPublisher, info: activity.Info) -> int:
    """The result's encoded size; fail the turn for good if it would not fit in one payload.

    The task then fails with this message and keeps its last good context (the workflow
    never records this turn's), readable with ``get_task_data``.
    """
    size = payload_size(activity.client(), output)
    if size <= MAX_PAYLOAD_BYTES:
        return size
    turn = output.context.get("turn")
    err = ApplicationError(
        f"the task's state grew to {size:,} bytes (compressed) in turn {turn}, over the "
        f"{MAX_PAYLOAD_BYTES:,}-byte limit of one Temporal payload; keep large data "
        "outside the context (store it and pass a reference)",
        type=FailureType.PAYLOAD_TOO_LARGE,
        non_retryable=True,
    )
    _report_failure(events, err, info)
    raise err


def _report_failure(events: EventPublisher, err: BaseException, info: activity.Info) -> None:
    """Publish ``task_failed`` for this attempt, and ``task_retried`` if another follows."""
    kind = err.type if isinstance(err, ApplicationError) else type(err).__name__
    message = f"{kind}: {err.message if isinstance(err, ApplicationError) else err}"
    max_attempts = info.retry_policy.maximum_attempts if info.retry_policy else 0
    retryable = not (isinstance(err, ApplicationError) and err.non_retryable)
    will_retry = retryable and (max_attempts == 0 or info.attempt < max_attempts)
    events.emit(ev.TASK_FAILED, error=message, attempt=info.attempt, will_retry=will_retry)
    if will_retry:
        events.emit(ev.TASK_RETRIED, attempt=info.attempt + 1)
