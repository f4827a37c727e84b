"""What an owner's event stream workflow and the ``publish_events`` activity receive."""

from __future__ import annotations

from pydantic import BaseModel, Field
from temporalio.contrib.workflow_streams import PublishInput, WorkflowStreamState

from factorial.events import EventStreamConfig

__all__ = [
    "EventsInput",
    "PublishEventsInput",
]


class EventsInput(BaseModel):
    """Input of the owner's event-stream workflow (carried through continue-as-new).

    Also its result when it closes idle: what the next run starts from.
    """

    owner_id: str
    stream_state: WorkflowStreamState | None = None
    config: EventStreamConfig = Field(default_factory=EventStreamConfig)


class PublishEventsInput(BaseModel):
    """Input of ``publish_events``: a workflow's events its stream signal could not deliver.

    ``batch`` carries a publisher id and sequence, so a retried delivery lands once.
    """

    owner_id: str
    batch: PublishInput
