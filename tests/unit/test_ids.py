"""The ids Factorial derives: from an owner's idempotency key, and for a resumed task."""

from __future__ import annotations

import pytest

from factorial._batch_wire import batch_task_of
from factorial._ids import idempotent_id, resumed_task_id, validate_id
from factorial.errors import InvalidIdError


def test_an_idempotency_key_names_one_id_per_owner() -> None:
    task = idempotent_id("task", "owner-1", "order 7/ünïcode")
    assert task == idempotent_id("task", "owner-1", "order 7/ünïcode")
    assert validate_id(task, "task id") == task and task.startswith("task-idem-")
    assert task != idempotent_id("task", "owner-2", "order 7/ünïcode")
    assert idempotent_id("batch", "owner-1", "k").startswith("batch-idem-")
    # Owner and key are not simply joined: ("a", "bc") and ("ab", "c") differ.
    assert idempotent_id("task", "a", "bc") != idempotent_id("task", "ab", "c")
    with pytest.raises(InvalidIdError, match="idempotency key"):
        idempotent_id("task", "owner-1", "")
    with pytest.raises(InvalidIdError, match="owner id"):
        idempotent_id("task", "no spaces", "k")


def test_a_resumed_id_keeps_the_first_task_and_stays_valid() -> None:
    first = resumed_task_id("task-abc")
    assert first.startswith("task-abc.resumed.") and first != resumed_task_id("task-abc")
    again = resumed_task_id(first)
    assert again.startswith("task-abc.resumed.") and again.count(".resumed.") == 1
    longest = resumed_task_id("t" * 200)
    assert validate_id(longest, "task id") == longest
    # A resumed batch task is not mistaken for a task of the batch.
    assert batch_task_of(resumed_task_id("batch-x-3")) is None
