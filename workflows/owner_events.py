"""``OwnerEventsWorkflow``: one long-lived workflow per owner hosting its durable event stream.

Publishers (turn activities, task and batch workflows) append events with the
``temporalio.contrib.workflow_streams`` publish signal; subscribers long-poll it with
offsets, so a subscriber that reconnects resumes where it stopped. The workflow keeps
running; when Temporal suggests continue-as-new it carries the newest events (at most
``RETAINED_EVENTS`` and ``RETAINED_BYTES``, so the new run's input stays under Temporal's
512 KB blob warning) and the publishers' dedup state into the next run.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from temporalio.contrib.workflow_streams import WorkflowStream, WorkflowStreamState

    from factorial._wire import EVENTS_WORKFLOW, EventsInput

#: How many of the newest events survive a continue-as-new (older offsets are truncated)...
RETAINED_EVENTS = 2_000
#: ...and how many bytes of them at most.
RETAINED_BYTES = 256 * 1024
#: Continue-as-new after this many events even if Temporal does not suggest it yet.
MAX_EVENTS_PER_RUN = 10_000
#: Dedup state of a publisher idle this long is dropped at continue-as-new; it must exceed
#: the longest a publisher retries one flush (two minutes, see ``activities.publishing``).
PUBLISHER_TTL = timedelta(minutes=10)


@workflow.defn(name=EVENTS_WORKFLOW)
class OwnerEventsWorkflow:
    """Hosts one owner's event stream."""

    @workflow.init
    def __init__(self, inp: EventsInput) -> None:
        self.stream = WorkflowStream(prior_state=inp.stream_state)

    @workflow.run
    async def run(self, inp: EventsInput) -> None:
        start = self._offset()
        await workflow.wait_condition(
            lambda: (
                workflow.info().is_continue_as_new_suggested()
                or self._offset() - start >= MAX_EVENTS_PER_RUN
            )
        )
        self.stream.detach_pollers()
        await workflow.wait_condition(workflow.all_handlers_finished)
        state = retain_newest(self.stream.get_state(publisher_ttl=PUBLISHER_TTL))
        workflow.continue_as_new(EventsInput(owner_id=inp.owner_id, stream_state=state))

    def _offset(self) -> int:
        # The stream exposes its offset only through its query handler.
        return self.stream._on_offset()


def retain_newest(state: WorkflowStreamState) -> WorkflowStreamState:
    """The state with only the newest events that fit ``RETAINED_EVENTS`` and ``RETAINED_BYTES``."""
    keep, size = 0, 0
    for item in reversed(state.log[-RETAINED_EVENTS:]):
        size += len(item.data) + len(item.topic)
        if size > RETAINED_BYTES:
            break
        keep += 1
    drop = len(state.log) - keep
    return WorkflowStreamState(
        log=state.log[drop:],
        base_offset=state.base_offset + drop,
        publishers=state.publishers,
    )
