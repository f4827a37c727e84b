"""Client side of the owners' event streams: (re)starting them and reading them.

``open_stream`` makes sure an owner's ``OwnerEventsWorkflow`` runs. A stream that closed
because it was idle is restarted from the retained state its last run returned, so nothing
is lost and offsets continue; one terminated by hand restarts at the offset where it stopped.

``StreamReader`` speaks the ``temporalio.contrib.workflow_streams`` poll protocol for one
owner: ``poll`` (a long-poll update, for the live tail) and ``read`` (a query, for catching
up; it costs no history and no update slot). Both retry what a server outage or a restarting
stream throws at them, with backoff, for at most ``reconnect_timeout`` seconds of continuous
failure, then raise ``TemporalUnavailableError``.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import time
from datetime import timedelta
from typing import Any

from temporalio.api.common.v1 import Payload
from temporalio.client import (
    Client,
    WorkflowExecutionStatus,
    WorkflowHandle,
    WorkflowQueryFailedError,
    WorkflowUpdateFailedError,
    WorkflowUpdateRPCTimeoutOrCancelledError,
    WorkflowUpdateStage,
)
from temporalio.common import WorkflowIDConflictPolicy
from temporalio.contrib.workflow_streams import PollInput, PollResult, WorkflowStreamState
from temporalio.service import RPCError, RPCStatusCode

from factorial._ids import events_workflow_id
from factorial._wire import (
    EVENTS_TASK_QUEUE,
    EVENTS_WORKFLOW,
    STREAM_DRAINING,
    STREAM_OFFSET_QUERY,
    STREAM_POLL,
    STREAM_TRUNCATED,
    EventsInput,
    FailureType,
)
from factorial.errors import EventStreamError, TemporalUnavailableError
from factorial.events import EVENTS_TOPIC, EventStreamConfig

logger = logging.getLogger(__name__)

_QUERY_TIMEOUT = timedelta(seconds=10)
#: How long a long-poll may take to be accepted before the stream counts as busy.
_ACCEPT_TIMEOUT = timedelta(seconds=5)
_MAX_BACKOFF = 5.0
#: Seconds between checks that the server is up while a long-poll waits.
_ALIVE_CHECK = 10.0


async def open_stream(
    client: Client, owner_id: str, config: EventStreamConfig, *, create: bool = True
) -> bool:
    """Make sure ``owner_id``'s stream runs, restarting a closed one with what it retained.

    Returns:
        False, without starting anything, when the owner never had a stream and ``create`` is
        False; True otherwise.
    """
    handle = client.get_workflow_handle(events_workflow_id(owner_id))
    try:
        description = await handle.describe()
    except RPCError as err:
        if err.status != RPCStatusCode.NOT_FOUND:
            raise
        if not create:
            return False
        description = None
    if description is not None and description.status == WorkflowExecutionStatus.RUNNING:
        return True
    state = await _prior_state(client, handle.id, description) if description else None
    await client.start_workflow(
        EVENTS_WORKFLOW,
        EventsInput(owner_id=owner_id, stream_state=state, config=config),
        id=handle.id,
        task_queue=EVENTS_TASK_QUEUE,
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        static_summary=f"Factorial event stream of owner {owner_id}",
    )
    return True


async def _prior_state(
    client: Client, workflow_id: str, description: Any
) -> WorkflowStreamState | None:
    """What the closed run left: its retained events, or at least where its offsets stopped."""
    run = client.get_workflow_handle(
        workflow_id, run_id=description.run_id, result_type=EventsInput
    )
    if description.status == WorkflowExecutionStatus.COMPLETED:
        closed: EventsInput = await run.result()
        return closed.stream_state
    try:  # terminated by hand: its events are gone, but offsets must not restart at 0
        end = await run.query(STREAM_OFFSET_QUERY, result_type=int, rpc_timeout=_QUERY_TIMEOUT)
    except (RPCError, WorkflowQueryFailedError) as err:
        logger.error(
            "stream %s ended %s; offsets restart at 0: %s", workflow_id, description.status, err
        )
        return None
    return WorkflowStreamState(base_offset=end)


class StreamGone(Exception):
    """The offset a long-poll asked for is no longer retained (``TruncatedOffset``)."""


class StreamReader:
    """Polls and reads one owner's stream, retrying transient failures."""

    def __init__(
        self,
        client: Client,
        owner_id: str,
        config: EventStreamConfig,
        reconnect_timeout: float,
    ) -> None:
        self.owner_id = owner_id
        self._client = client
        self._config = config
        self._reconnect_timeout = reconnect_timeout
        self._handle: WorkflowHandle[Any, Any] = client.get_workflow_handle(
            events_workflow_id(owner_id)
        )
        self._failing_since: float | None = None

    def decode(self, data: str) -> dict[str, Any]:
        """One stored event, as the dict its publisher sent."""
        payload = Payload()
        payload.ParseFromString(base64.b64decode(data))
        event: dict[str, Any] = self._client.data_converter.payload_converter.from_payload(payload)
        return event

    async def read(self, from_offset: int) -> PollResult:
        """Retained events from ``from_offset`` (clamped to the oldest retained), at once."""
        while True:
            started = time.monotonic()
            try:
                result: PollResult = await self._handle.query(
                    STREAM_POLL,
                    PollInput(topics=[EVENTS_TOPIC], from_offset=from_offset),
                    result_type=PollResult,
                    rpc_timeout=_QUERY_TIMEOUT,
                )
            except RPCError as err:
                if err.status == RPCStatusCode.NOT_FOUND:
                    await self.wait_for_stream()
                    continue
                await self._failed(err, started)
                continue
            except WorkflowQueryFailedError as err:
                await self._failed(err, started)
                continue
            self._failing_since = None
            return result

    async def poll(self, from_offset: int) -> PollResult | None:
        """Events from ``from_offset`` once there are any; None if the stream is too busy.

        Busy: it refused the long-poll (``StreamBusy``), Temporal's limit of 10 updates in
        flight was reached, or the long-poll was not accepted within ``_ACCEPT_TIMEOUT``.

        Raises:
            StreamGone: The offset is no longer retained (``TruncatedOffset``).
        """
        while True:
            started: float | None = time.monotonic()
            try:
                update = await self._handle.start_update(
                    STREAM_POLL,
                    PollInput(topics=[EVENTS_TOPIC], from_offset=from_offset),
                    wait_for_stage=WorkflowUpdateStage.ACCEPTED,
                    result_type=PollResult,
                    rpc_timeout=_ACCEPT_TIMEOUT,
                )
                started = None  # accepted: it may wait for events as long as it likes
                result = await self._await_result(update)
            except WorkflowUpdateFailedError as err:
                kind = getattr(err.cause, "type", None)
                if kind == FailureType.STREAM_BUSY:
                    return None
                if kind == STREAM_TRUNCATED:
                    raise StreamGone(str(err.cause)) from None
                if kind == STREAM_DRAINING:  # continuing as new: the next run takes it
                    await asyncio.sleep(0.1)
                    continue
                await self._failed(err, started)
                continue
            except RPCError as err:
                if err.status == RPCStatusCode.NOT_FOUND:  # closed (idle) or never started
                    await self.wait_for_stream()
                    continue
                if err.status == RPCStatusCode.RESOURCE_EXHAUSTED and started is not None:
                    return None
                await self._failed(err, started)
                continue
            except WorkflowUpdateRPCTimeoutOrCancelledError as err:
                if started is not None:  # not accepted in time; reads will tell an outage
                    self._cancel_check(err)
                    return None
                await self._failed(err, started)
                continue
            self._failing_since = None
            return result

    async def _await_result(self, update: Any) -> PollResult:
        """An accepted long-poll's answer; checking the server is up every so often.

        The client retries a waiting call through an outage, so without the checks a
        subscriber would never notice one and never give up after ``reconnect_timeout``.
        """
        every = max(1.0, min(_ALIVE_CHECK, self._reconnect_timeout / 2))
        waiting = self._result_of(update)
        try:
            while True:
                done, _ = await asyncio.wait([waiting], timeout=every)
                if done:
                    return waiting.result()
                started = time.monotonic()
                try:
                    await self._handle.describe(rpc_timeout=_ACCEPT_TIMEOUT)
                except RPCError as err:
                    waiting.cancel()
                    await self._failed(err, started)  # raises once it has lasted too long
                    waiting = self._result_of(update)
                else:
                    self._failing_since = None
        finally:
            waiting.cancel()

    @staticmethod
    def _result_of(update: Any) -> asyncio.Future[PollResult]:
        """``update.result()`` as a future whose failure is never left unretrieved."""
        waiting: asyncio.Future[PollResult] = asyncio.ensure_future(update.result())
        waiting.add_done_callback(lambda f: f.cancelled() or f.exception())
        return waiting

    async def wait_for_stream(self) -> None:
        """Return once the stream runs: restart it if it closed, wait if it never existed.

        Raises:
            EventStreamError: The stream was terminated or failed.
        """
        delay = 0.25
        while True:
            started = time.monotonic()
            try:
                description = await self._handle.describe()
            except RPCError as err:
                if err.status != RPCStatusCode.NOT_FOUND:
                    await self._failed(err, started)
                    continue
                description = None  # never existed: wait for its first publisher
            if description is not None:
                status = description.status
                if status == WorkflowExecutionStatus.RUNNING:
                    return
                if status not in (
                    WorkflowExecutionStatus.COMPLETED,
                    WorkflowExecutionStatus.CONTINUED_AS_NEW,
                ):
                    raise EventStreamError(
                        f"the event stream of owner {self.owner_id!r} ended {status.name}"
                        if status
                        else f"the event stream of owner {self.owner_id!r} ended"
                    )
                await open_stream(self._client, self.owner_id, self._config, create=False)
                continue
            self._failing_since = None
            await asyncio.sleep(delay)
            delay = min(delay * 2, 2.0)

    @staticmethod
    def _cancel_check(err: BaseException) -> None:
        task = asyncio.current_task()
        if isinstance(err.__cause__, asyncio.CancelledError) or (task and task.cancelling()):
            raise asyncio.CancelledError  # the client turns a cancelled call into an error

    async def _failed(self, err: BaseException, started: float | None) -> None:
        """Back off after a transient failure; give up after ``reconnect_timeout`` of them.

        The failure counts from when the failed call began (the client retries a call for a
        while before it gives up), or from now for a long-poll that had been waiting.
        """
        self._cancel_check(err)
        now = time.monotonic()
        if self._failing_since is None:
            self._failing_since = now if started is None else started
        failing = now - self._failing_since
        if failing > self._reconnect_timeout:
            raise TemporalUnavailableError(
                f"the event stream of owner {self.owner_id!r} has been unreachable for "
                f"{failing:.0f}s: {err}"
            ) from err
        logger.debug("event stream of %s: %r; retrying", self.owner_id, err)
        await asyncio.sleep(min(_MAX_BACKOFF, 0.2 * 2 ** min(10, int(failing))))
