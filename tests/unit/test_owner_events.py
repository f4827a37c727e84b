"""What the owner's event stream keeps across continue-as-new, and when it closes."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta

from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.contrib.workflow_streams import PublisherState, WorkflowStreamState
from temporalio.contrib.workflow_streams._types import _WorkflowStreamWireItem

from factorial.events import EventStreamConfig
from factorial.workflows.owner_events import retain

NOW = datetime(2026, 12, 1, 12, tzinfo=UTC)


def item(age: timedelta, size: int = 10) -> _WorkflowStreamWireItem:
    event = {"event_type": "e", "timestamp": (NOW - age).isoformat(), "pad": "x" * size}
    payload = pydantic_data_converter.payload_converter.to_payloads([event])[0]
    data = base64.b64encode(payload.SerializeToString()).decode("ascii")
    return _WorkflowStreamWireItem(topic="events", data=data)


def state_of(items: list[_WorkflowStreamWireItem]) -> WorkflowStreamState:
    return WorkflowStreamState(
        log=items,
        base_offset=100,
        publishers={"p": PublisherState(sequence=3, last_seen=NOW)},
    )


def test_small_logs_are_kept_whole() -> None:
    state = retain(state_of([item(timedelta(0))] * 10), EventStreamConfig(), NOW)
    assert len(state.log) == 10 and state.base_offset == 100
    assert state.publishers["p"].sequence == 3


def test_count_limit_keeps_the_newest() -> None:
    items = [item(timedelta(0))] * 600
    items[-1] = item(timedelta(0), size=11)
    state = retain(state_of(items), EventStreamConfig(max_events=100), NOW)
    assert len(state.log) == 100
    assert state.base_offset == 100 + 500
    assert state.log[-1] == items[-1]


def test_byte_limit_keeps_the_input_small() -> None:
    config = EventStreamConfig(max_bytes=64 * 1024)
    state = retain(state_of([item(timedelta(0), size=800)] * 1_500), config, NOW)  # ~1.5 MB
    kept = sum(len(i.data) + len(i.topic) for i in state.log)
    assert kept <= config.max_bytes
    assert kept + len(state.log[0].data) + len("events") > config.max_bytes  # no more fits
    assert state.base_offset == 100 + 1_500 - len(state.log)


def test_age_limit_drops_old_events() -> None:
    ages = [timedelta(hours=h) for h in (30, 26, 25, 23, 2, 0)]
    state = retain(state_of([item(a) for a in ages]), EventStreamConfig(), NOW)
    assert len(state.log) == 3  # 23 h, 2 h and now are within the default 24 h
    assert state.base_offset == 103


def test_events_without_a_timestamp_count_as_new() -> None:
    payload = pydantic_data_converter.payload_converter.to_payloads([{"event_type": "x"}])[0]
    odd = _WorkflowStreamWireItem(
        topic="events", data=base64.b64encode(payload.SerializeToString()).decode("ascii")
    )
    state = retain(state_of([item(timedelta(days=3)), odd]), EventStreamConfig(), NOW)
    assert state.log == [odd]
