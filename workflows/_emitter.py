"""Workflow-side publishing to an owner's event stream, exactly once and in order.

Each send is a ``SignalExternalWorkflowExecution`` command carrying a
``temporalio.contrib.workflow_streams`` publish batch; Temporal records it once in history, so
replaying or crashing can never send an event twice. One sender runs at a time, so events
land in the order they were emitted; events emitted while a send is in flight go out
together in the next one. A workflow must ``drain`` before it ends: a signal still in flight
when its sender closes is dropped.

A signal fails when the stream is not running (it closed while idle). The batch then goes
through the ``publish_events`` activity, which restarts the stream and delivers it; the
batch carries this run's publisher id and a sequence number, so a retried activity lands it
once.
"""

from __future__ import annotations

import asyncio
import base64
from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from temporalio.contrib.workflow_streams import PublishEntry, PublishInput

    from factorial._ids import events_workflow_id
    from factorial._wire import PUBLISH_EVENTS_ACTIVITY, STREAM_PUBLISH_SIGNAL, PublishEventsInput
    from factorial.events import EVENTS_TOPIC

#: Histories recorded before the fallback existed logged and dropped such a batch instead.
FALLBACK_PATCH = "publish-events-fallback"
_FALLBACK_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1), maximum_interval=timedelta(seconds=10)
)


class StreamEmitter:
    """Queues events for one owner's stream and sends them with a single sender."""

    def __init__(self, owner_id: str, defaults: dict[str, Any]) -> None:
        self._owner_id = owner_id
        self._defaults = defaults
        self._outbox: list[dict[str, Any]] = []
        self._sender: asyncio.Task[None] | None = None
        self._fallbacks = 0

    def emit(self, event_type: str, *, coalesce: bool = False, **fields: Any) -> None:
        """Queue an event. ``coalesce`` replaces a queued, unsent event of the same type."""
        event = {
            "event_type": event_type,
            **self._defaults,
            "timestamp": workflow.now().isoformat(),
            **fields,
        }
        if coalesce:
            self._outbox = [e for e in self._outbox if e["event_type"] != event_type]
        self._outbox.append(event)
        if self._sender is None or self._sender.done():
            self._sender = asyncio.create_task(self._send())

    async def drain(self) -> None:
        """Wait until every queued event has been sent."""
        while self._sender is not None and not self._sender.done():
            await self._sender

    async def _send(self) -> None:
        stream = workflow.get_external_workflow_handle(events_workflow_id(self._owner_id))
        converter = workflow.payload_converter()
        while self._outbox:
            batch, self._outbox = self._outbox, []
            entries = [
                PublishEntry(
                    topic=EVENTS_TOPIC,
                    data=base64.b64encode(
                        converter.to_payloads([event])[0].SerializeToString()
                    ).decode("ascii"),
                )
                for event in batch
            ]
            try:
                await stream.signal(STREAM_PUBLISH_SIGNAL, PublishInput(items=entries))
            except Exception as err:  # the stream is not running
                if not workflow.patched(FALLBACK_PATCH):
                    workflow.logger.warning("could not publish %d events: %s", len(batch), err)
                    continue
                await self._publish_by_activity(entries)

    async def _publish_by_activity(self, entries: list[PublishEntry]) -> None:
        self._fallbacks += 1
        info = workflow.info()
        await workflow.execute_activity(
            PUBLISH_EVENTS_ACTIVITY,
            PublishEventsInput(
                owner_id=self._owner_id,
                batch=PublishInput(
                    items=entries,
                    publisher_id=f"{info.workflow_id}/{info.run_id}",
                    sequence=self._fallbacks,
                ),
            ),
            start_to_close_timeout=timedelta(seconds=30),
            schedule_to_close_timeout=timedelta(hours=1),
            retry_policy=_FALLBACK_RETRY,
            summary=f"publish {len(entries)} events",
        )
