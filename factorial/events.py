"""Event types and the publisher agents use to emit them.

Every event is a flat dict with ``event_type``, ``task_id``, ``owner_id``, ``agent_name`` and an
ISO ``timestamp`` plus its own fields. Events reach subscribers through the owner's durable
stream (see ``factorial.workflows.owner_events``); subscribers also see an ``offset`` to resume
from.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict, Field

RUN_STARTED = "run_started"
RUN_COMPLETED = "run_completed"
RUN_FAILED = "run_failed"
RUN_CANCELLED = "run_cancelled"
AGENT_OUTPUT = "agent_output"
TASK_FAILED = "task_failed"
TASK_RETRIED = "task_retried"
TASK_PENDING_TOOL_CALL_RESULTS = "task_pending_tool_call_results"
TASK_PENDING_CHILD_TASK_RESULTS = "task_pending_child_task_results"
RUN_STEERING_APPLIED = "run_steering_applied"
RUN_STEERING_FAILED = "run_steering_failed"
BATCH_PROGRESS = "batch_progress"
BATCH_COMPLETED = "batch_completed"
BATCH_CANCELLED = "batch_cancelled"
#: A piece of a streamed model answer (``Agent(stream=True)``): ``turn``, ``attempt``, ``data``.
COMPLETION_CHUNK = "progress_update_completion_chunk"
#: A batch stopped early and ended ``failed``: its budget was spent or its failure policy
#: tripped; the rest were cancelled, and ``reason`` says why.
BATCH_FAILED = "batch_failed"

#: Events a subscriber receives exactly once per task (or batch), even across worker crashes.
TERMINAL_EVENTS = frozenset(
    {
        AGENT_OUTPUT,
        RUN_COMPLETED,
        RUN_FAILED,
        RUN_CANCELLED,
        BATCH_COMPLETED,
        BATCH_CANCELLED,
        BATCH_FAILED,
    }
)

#: The operations a turn reports progress of: ``progress_update_{operation}_{phase}``.
PROGRESS_OPERATIONS = ("completion", "tool_action", "run_turn")
PROGRESS_PHASES = ("started", "completed", "failed")
#: The prefix of progress events; custom ones (``publish_event``) may use it too.
PROGRESS_PREFIX = "progress_update_"

#: Every event type Factorial itself publishes (custom events come on top).
BUILTIN_EVENT_TYPES: tuple[str, ...] = (
    RUN_STARTED,
    RUN_COMPLETED,
    RUN_FAILED,
    RUN_CANCELLED,
    AGENT_OUTPUT,
    TASK_FAILED,
    TASK_RETRIED,
    TASK_PENDING_TOOL_CALL_RESULTS,
    TASK_PENDING_CHILD_TASK_RESULTS,
    RUN_STEERING_APPLIED,
    RUN_STEERING_FAILED,
    BATCH_PROGRESS,
    BATCH_COMPLETED,
    BATCH_CANCELLED,
    BATCH_FAILED,
    *(f"{PROGRESS_PREFIX}{op}_{phase}" for op in PROGRESS_OPERATIONS for phase in PROGRESS_PHASES),
    COMPLETION_CHUNK,
)


def is_known_event_type(event_type: str) -> bool:
    """True for a built-in event type, or any ``progress_update_*`` name (custom progress)."""
    return event_type in BUILTIN_EVENT_TYPES or (
        event_type.startswith(PROGRESS_PREFIX) and len(event_type) > len(PROGRESS_PREFIX)
    )


#: The stream topic every Factorial event is published on.
EVENTS_TOPIC = "events"


class EventStreamConfig(BaseModel):
    """What an owner's event stream retains, and when an idle one closes.

    The stream always keeps the newest events that satisfy all three bounds below, and often
    more (everything since its last continue-as-new). A subscriber that resumes from an offset
    the stream no longer has gets ``EventsExpiredError`` naming the oldest offset still there;
    events are never skipped silently. A stream with no publisher and no subscriber for
    ``idle_timeout`` closes, keeping its retained events; the next publisher or subscriber
    restarts it with them, and offsets continue where they stopped.

    Attributes:
        max_events: Newest events kept, at most.
        max_bytes: Bytes of newest events kept, at most (as encoded in the stream); bounded
            so the stream's continue-as-new input stays far below Temporal's 2 MiB limit.
        max_age: Events older than this (by their ``timestamp``) may be dropped.
        idle_timeout: Close the stream after this long without a publish or a poll.
    """

    model_config = ConfigDict(frozen=True)

    max_events: int = Field(default=10_000, ge=1, le=100_000)
    max_bytes: int = Field(default=1024 * 1024, ge=16 * 1024, le=1536 * 1024)
    max_age: timedelta = Field(default=timedelta(hours=24), gt=timedelta(0))
    idle_timeout: timedelta = Field(default=timedelta(minutes=10), ge=timedelta(seconds=1))


def terminal_events(
    status: str,
    *,
    turn: int | None = None,
    output: Any = None,
    error: str | None = None,
    usage: dict[str, Any] | None = None,
    reason: str | None = None,
) -> list[tuple[str, dict[str, Any]]]:
    """How a run's end is announced, the one definition for every way a run ends.

    ``completed``: ``agent_output`` then ``run_completed``; ``cancelled``: ``run_cancelled``;
    else ``run_failed`` with the error. The ending event carries the run's token ``usage``
    where it is known; ``run_cancelled``, the ``reason`` a batch stopped the run, if it did.
    Used by the task workflow, a batch announcing its tasks' ends, and ``run_inline``.
    """
    extra = {"usage": usage} if usage is not None else {}
    if status == "completed":
        return [
            (AGENT_OUTPUT, {"turn": turn, "data": output}),
            (RUN_COMPLETED, {"turn": turn, **extra}),
        ]
    if status == "cancelled":
        return [(RUN_CANCELLED, {**extra, **({"reason": reason} if reason else {})})]
    return [(RUN_FAILED, {"error": error, **extra})]


def progress_event_type(operation: str, phase: str) -> str:
    """``progress_update_{operation}_{phase}``, e.g. ``progress_update_completion_started``."""
    return f"{PROGRESS_PREFIX}{operation}_{phase}"


def utc_now_iso() -> str:
    """The current UTC time as an ISO 8601 string."""
    return datetime.now(UTC).isoformat()


class AgentEvent(BaseModel):
    """An event; extra keyword fields become top-level event fields."""

    model_config = ConfigDict(extra="allow")

    event_type: str
    task_id: str | None = None
    owner_id: str
    agent_name: str | None = None
    timestamp: str = Field(default_factory=utc_now_iso)

    def to_dict(self) -> dict[str, Any]:
        """The event as the flat JSON-able dict subscribers receive."""
        return self.model_dump(mode="json")


class EventSink(Protocol):
    """Where a publisher's events go (the owner stream in a worker, a list inline)."""

    def __call__(self, event: dict[str, Any], /) -> None:
        """Take one event."""


class EventPublisher:
    """Publishes events for one running task; available as ``execution_ctx.events``.

    Built on the turn's event loop; an event emitted from another thread (a sync tool
    runs in one) is handed to that loop, so the sink only ever runs on it, in order.
    """

    def __init__(
        self,
        sink: EventSink | Callable[[dict[str, Any]], None],
        *,
        task_id: str,
        owner_id: str,
        agent_name: str,
        flush: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self._sink = sink
        self._flush = flush
        self.task_id = task_id
        self.owner_id = owner_id
        self.agent_name = agent_name
        self._loop = _running_loop()

    async def flush(self) -> None:
        """Send what the sink buffered now, rather than at its next group commit."""
        if self._flush is not None:
            await self._flush()

    async def publish_event(self, event: AgentEvent | dict[str, Any]) -> None:
        """Publish a custom event (an ``AgentEvent`` or a dict with at least ``event_type``)."""
        self.emit_dict(event if isinstance(event, dict) else event.to_dict())

    def emit(self, event_type: str, **fields: Any) -> None:
        """Publish an event of this task with the standard fields filled in."""
        self.emit_dict({"event_type": event_type, **fields})

    def emit_dict(self, event: dict[str, Any]) -> None:
        """Publish a dict event, filling in any missing standard field."""
        full = {
            "task_id": self.task_id,
            "owner_id": self.owner_id,
            "agent_name": self.agent_name,
            "timestamp": utc_now_iso(),
            **event,
        }
        if "event_type" not in full:
            raise ValueError("an event needs an event_type")
        if self._loop is not None and _running_loop() is not self._loop:
            self._loop.call_soon_threadsafe(self._sink, full)
        else:
            self._sink(full)


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None
