"""What the owner's event stream keeps across continue-as-new."""

from __future__ import annotations

from datetime import UTC, datetime

from temporalio.contrib.workflow_streams import PublisherState, WorkflowStreamState
from temporalio.contrib.workflow_streams._types import _WorkflowStreamWireItem

from workflows.owner_events import RETAINED_BYTES, RETAINED_EVENTS, retain_newest


def state_of(count: int, size: int) -> WorkflowStreamState:
    return WorkflowStreamState(
        log=[_WorkflowStreamWireItem(topic="events", data="x" * size) for _ in range(count)],
        base_offset=100,
        publishers={"p": PublisherState(sequence=3, last_seen=datetime.now(UTC))},
    )


def test_small_logs_are_kept_whole() -> None:
    state = retain_newest(state_of(10, 50))
    assert len(state.log) == 10 and state.base_offset == 100
    assert state.publishers["p"].sequence == 3


def test_count_limit_keeps_the_newest() -> None:
    full = state_of(RETAINED_EVENTS + 500, 10)
    full.log[-1] = _WorkflowStreamWireItem(topic="events", data="newest")
    state = retain_newest(full)
    assert len(state.log) == RETAINED_EVENTS
    assert state.base_offset == 100 + 500
    assert state.log[-1].data == "newest"


def test_byte_limit_keeps_the_input_small() -> None:
    state = retain_newest(state_of(1_500, 800))  # 1.2 MB of events
    kept = sum(len(item.data) + len(item.topic) for item in state.log)
    assert kept <= RETAINED_BYTES
    assert len(state.log) == RETAINED_BYTES // 806
    assert state.base_offset == 100 + 1_500 - len(state.log)
