"""The Orchestrator's event method: follow an owner's events.

How the events are read and filtered is in ``factorial._subscriptions``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from typing import Any

from factorial._ids import validate_id
from factorial._orchestrator_base import OrchestratorBase
from factorial._streams import StreamReader
from factorial._subscriptions import OwnerFeed, owner_events
from factorial.events import EventStreamConfig


class EventAPI(OrchestratorBase):
    """``Orchestrator``'s method for events, and the owners' feeds it keeps."""

    event_stream: EventStreamConfig
    reconnect_timeout: float
    _feeds: dict[str, OwnerFeed]

    async def subscribe_to_updates(
        self,
        owner_id: str,
        task_ids: Iterable[str] | None = None,
        event_types: Iterable[str] | None = None,
        event_pattern: str | None = None,
        from_offset: int | None = None,
        *,
        batch_ids: Iterable[str] | None = None,
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
            batch_ids: Only events of these batches: their own, and their tasks' (a sub-agent
                batch's tasks belong to it, not to their parent's batch).
        """
        validate_id(owner_id, "owner id")
        feed = self._feeds.get(owner_id)
        if feed is None:
            reader = StreamReader(
                await self.client(), owner_id, self.event_stream, self.reconnect_timeout
            )
            feed = self._feeds[owner_id] = OwnerFeed(reader)
        events = owner_events(
            feed, owner_id, task_ids, event_types, event_pattern, from_offset, batch_ids
        )
        async for event in events:
            yield event
