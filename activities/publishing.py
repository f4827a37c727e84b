"""Publishing a task's events from an activity to its owner's stream.

Events are batched by ``WorkflowStreamClient`` and flushed before the activity returns, so
they land before anything the workflow publishes afterwards. Dedup identity: the publisher
id is the task id and every flush carries a sequence number above any earlier attempt's
(``sequence_base``), so a flush the client retries is dropped once, while a retried turn
(a new attempt) publishes its own events.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from temporalio.client import Client
from temporalio.common import WorkflowIDConflictPolicy
from temporalio.contrib.workflow_streams import WorkflowStreamClient
from temporalio.service import RPCError, RPCStatusCode

from factorial._ids import events_workflow_id
from factorial._wire import EVENTS_WORKFLOW, EventsInput
from factorial.events import EVENTS_TOPIC

EVENTS_TASK_QUEUE = "factorial-events"
_TURN_STRIDE = 1_000_000
_ATTEMPT_STRIDE = 10_000


def sequence_base(turn: int, attempt: int, phase: int = 0) -> int:
    """Base sequence for a turn attempt; phase 1 is for hooks that run after a turn."""
    return turn * _TURN_STRIDE + phase * (_TURN_STRIDE // 2) + attempt * _ATTEMPT_STRIDE


async def ensure_events_workflow(client: Client, owner_id: str) -> None:
    """Start the owner's event-stream workflow unless it is already running."""
    await client.start_workflow(
        EVENTS_WORKFLOW,
        EventsInput(owner_id=owner_id),
        id=events_workflow_id(owner_id),
        task_queue=EVENTS_TASK_QUEUE,
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        static_summary=f"Factorial event stream of owner {owner_id}",
    )


class TaskEventStream(WorkflowStreamClient):
    """A ``WorkflowStreamClient`` with the task's deterministic dedup identity."""

    def __init__(self, client: Client, owner_id: str, publisher_id: str, base: int) -> None:
        super().__init__(
            client.get_workflow_handle(events_workflow_id(owner_id)),
            client=client,
            batch_interval=timedelta(seconds=1),
            max_retry_duration=timedelta(minutes=2),
        )
        self._publisher_id = publisher_id
        self._sequence = base
        self._temporal = client
        self._owner_id = owner_id
        self._topic = self.topic(EVENTS_TOPIC)

    def publish(self, event: dict[str, Any]) -> None:
        """Buffer one event dict."""
        self._topic.publish(event)

    async def __aexit__(self, *exc: object) -> None:
        try:
            await super().__aexit__(*exc)
        except RPCError as err:
            if err.status != RPCStatusCode.NOT_FOUND:
                raise
            # The owner's stream is gone (terminated by hand): start it and flush again.
            await ensure_events_workflow(self._temporal, self._owner_id)
            await super().__aexit__(*exc)
