"""The turn-mode rule and the count of local turn results not yet in history."""

from __future__ import annotations

import pytest

from factorial import AgentWorkerConfig
from factorial.workflows._turn_mode import (
    BOUNDARY_BYTES,
    LOCAL_TURN_SECONDS,
    UnrecordedTurns,
    next_turn_is_local,
)


@pytest.mark.parametrize("last", [None, 0.0, 0.5, 5.0, 60.0])
def test_fixed_modes_ignore_the_last_turn(last: float | None) -> None:
    assert next_turn_is_local("local", last) is True
    assert next_turn_is_local("activity", last) is False


def test_auto_runs_the_first_turn_locally() -> None:
    assert next_turn_is_local("auto", None) is True


def test_auto_follows_the_previous_turns_length() -> None:
    assert next_turn_is_local("auto", 0.003) is True
    assert next_turn_is_local("auto", LOCAL_TURN_SECONDS - 0.01) is True
    assert next_turn_is_local("auto", LOCAL_TURN_SECONDS) is False
    assert next_turn_is_local("auto", 20.0) is False


def test_auto_is_the_default_and_reaches_the_workflow() -> None:
    config = AgentWorkerConfig()
    assert config.turn_execution == "auto"
    assert config.turn_policy().turn_execution == "auto"
    assert AgentWorkerConfig(turn_execution="local").turn_policy().turn_execution == "local"


def test_unknown_mode_is_refused() -> None:
    with pytest.raises(ValueError, match="turn_execution"):
        AgentWorkerConfig(turn_execution="sometimes")  # type: ignore[arg-type]  # on purpose


def test_unrecorded_bytes_add_up_within_one_workflow_task() -> None:
    unrecorded = UnrecordedTurns()
    unrecorded.add(1_000, 300_000)
    unrecorded.add(1_000, 300_000)
    assert unrecorded.history_size(1_000) == 601_000
    assert not unrecorded.needs_boundary(1_000)
    unrecorded.add(1_000, BOUNDARY_BYTES)
    assert unrecorded.needs_boundary(1_000)


def test_a_new_workflow_task_has_recorded_them() -> None:
    unrecorded = UnrecordedTurns()
    unrecorded.add(1_000, BOUNDARY_BYTES)
    # The history grew: the earlier results are in it now.
    assert unrecorded.history_size(1_050_000) == 1_050_000
    assert not unrecorded.needs_boundary(1_050_000)
    unrecorded.add(1_050_000, 10)
    assert unrecorded.bytes == 10
