"""The one adapter over ``temporalio.contrib.workflow_streams``'s internals (workflow side).

``WorkflowStream`` answers long-polls (updates) and reads (queries) of up to 1 MB each, and
takes any number of long-polls at once. Temporal, though, admits only 10 updates in flight and
2,000 per run, and several 1 MB answers completed in one workflow task pass gRPC's 4 MiB, which
makes the server terminate the run. ``BoundedStream`` therefore

* caps every answer at ``POLL_BYTES`` (the rest follows with ``more_ready``),
* admits at most ``MAX_LONG_POLLS`` long-polls at a time and refuses more at once with
  ``FailureType.STREAM_BUSY`` (a subscriber then reads by query, which costs no history), and
* counts the long-polls of the run, so the owner's workflow continues as new in time.

It overrides three private methods (``_validate_poll``, ``_on_poll``, ``_collect_batch``), reads
``_on_offset``, ``_log`` and ``_base_offset``, and builds the SDK's wire item;
``tests/unit/test_stream_adapter.py`` fails if the SDK changes any of them.
"""

from __future__ import annotations

import base64

from temporalio import workflow
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from temporalio.contrib.workflow_streams import (
        PollInput,
        PollResult,
        WorkflowStream,
        WorkflowStreamState,
    )
    from temporalio.contrib.workflow_streams._types import _WorkflowStreamWireItem

    from factorial._wire import FailureType

#: Long-polls one run serves at once. Temporal admits 10 updates in flight, and those waiting
#: for their validator count too: leave room for the ones this refuses.
MAX_LONG_POLLS = 4
#: Largest answer to one poll: ``MAX_LONG_POLLS`` answers in one workflow task stay < 2 MiB.
POLL_BYTES = 256 * 1024


class BoundedStream(WorkflowStream):
    """A ``WorkflowStream`` whose answers stay small however many subscribers poll it."""

    def __init__(self, prior_state: WorkflowStreamState | None = None) -> None:
        """Register the stream's handlers; construct from ``@workflow.init`` only."""
        super().__init__(prior_state)
        self.long_polls = 0
        self.long_polls_total = 0

    def end_offset(self) -> int:
        """The offset the next published event gets."""
        return self._on_offset()

    def _validate_poll(self, _payload: PollInput) -> None:
        super()._validate_poll(_payload)
        if self.long_polls >= MAX_LONG_POLLS:
            raise ApplicationError(
                f"{MAX_LONG_POLLS} long-polls are waiting already; read by query instead",
                type=FailureType.STREAM_BUSY,
            )

    async def _on_poll(self, payload: PollInput) -> PollResult:
        self.long_polls += 1
        self.long_polls_total += 1
        try:
            return await super()._on_poll(payload)
        finally:
            self.long_polls -= 1

    def _collect_batch(self, payload: PollInput) -> PollResult:
        """Retained items from ``payload.from_offset`` (clamped), at most ``POLL_BYTES``."""
        base, log = self._base_offset, self._log
        topics = set(payload.topics)
        items: list[_WorkflowStreamWireItem] = []
        size = 0
        for index in range(max(0, payload.from_offset - base), len(log)):
            item = log[index]
            if topics and item.topic not in topics:
                continue
            data = base64.b64encode(item.data.SerializeToString()).decode("ascii")
            size += len(data) + len(item.topic)
            if size > POLL_BYTES and items:
                return PollResult(items=items, next_offset=base + index, more_ready=True)
            items.append(_WorkflowStreamWireItem(topic=item.topic, data=data, offset=base + index))
        return PollResult(items=items, next_offset=base + len(log))
