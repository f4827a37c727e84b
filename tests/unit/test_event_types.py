"""The built-in event types, named once, and which ``--type`` names are accepted."""

from __future__ import annotations

import pytest

from factorial import events as ev
from factorial._subscriptions import batch_of


def test_builtin_event_types_name_every_constant_once() -> None:
    not_types = {"EVENTS_TOPIC", "PROGRESS_PREFIX"}
    constants = {
        value
        for name, value in vars(ev).items()
        if name.isupper() and isinstance(value, str) and name not in not_types
    }
    assert constants <= set(ev.BUILTIN_EVENT_TYPES)
    assert len(set(ev.BUILTIN_EVENT_TYPES)) == len(ev.BUILTIN_EVENT_TYPES)
    for operation in ev.PROGRESS_OPERATIONS:
        for phase in ev.PROGRESS_PHASES:
            assert ev.progress_event_type(operation, phase) in ev.BUILTIN_EVENT_TYPES


@pytest.mark.parametrize(
    ("name", "known"),
    [
        ("run_completed", True),
        ("batch_progress", True),
        ("progress_update_tool_action_failed", True),
        ("progress_update_my_upload_started", True),  # a custom progress event
        ("progress_update_", False),
        ("run_complete", False),
        ("", False),
    ],
)
def test_is_known_event_type(name: str, known: bool) -> None:
    assert ev.is_known_event_type(name) is known


@pytest.mark.parametrize(
    ("event", "batch"),
    [
        ({"batch_id": "batch-1", "event_type": "batch_progress"}, "batch-1"),
        ({"task_id": "batch-1-7", "event_type": "run_started"}, "batch-1"),
        ({"task_id": "task-1-t0-call_0_0-3"}, "task-1-t0-call_0_0"),
        ({"task_id": "task-abc"}, None),
        ({"event_type": "custom"}, None),
    ],
)
def test_batch_of_an_event(event: dict[str, str], batch: str | None) -> None:
    assert batch_of(event) == batch
