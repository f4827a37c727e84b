"""Workflow-side publishing to an owner's event stream, exactly once and in order.

Each send is a ``SignalExternalWorkflowExecution`` command carrying a
``temporalio.contrib.workflow_streams`` publish batch; Temporal records it once in history, so
replaying or crashing can never send an event twice. One sender runs at a time, so events
land in the order they were emitted; events emitted while a send is in flight go out
together in the next one.
"""

from __future__ import annotations

import asyncio
import base64
from typing import Any

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from temporalio.contrib.workflow_streams import PublishEntry, PublishInput
    from temporalio.contrib.workflow_streams._stream import _PUBLISH_SIGNAL

    from factorial._ids import events_workflow_id
    from factorial.events import EVENTS_TOPIC


class StreamEmitter:
    """Queues events for one owner's stream and sends them with a single sender."""

    def __init__(self, owner_id: str, defaults: dict[str, Any]) -> None:
        self._owner_id = owner_id
        self._defaults = defaults
        self._outbox: list[dict[str, Any]] = []
        self._sender: asyncio.Task[None] | None = None

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
                await stream.signal(_PUBLISH_SIGNAL, PublishInput(items=entries))
            except Exception as err:  # the stream workflow was terminated by hand
                workflow.logger.warning("could not publish %d events: %s", len(batch), err)
