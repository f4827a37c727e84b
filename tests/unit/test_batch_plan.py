"""How ``enqueue_batch`` splits a batch into leaves, and how often each leaf reports."""

from __future__ import annotations

import pytest

from factorial import _wire as wire
from factorial._batches import (
    MAX_ROOT_REPORTS,
    MIN_LEAF_REPORTS,
    RUNNING_LEAVES,
    _leaves,
    shares,
)


def plan(tasks: int, chunk: int, max_turns: int | None = 3) -> list[wire.BatchInput]:
    base = wire.BatchInput(
        batch_id="b",
        owner_id="o",
        agent_name="a",
        task_queue="q",
        total_tasks=tasks,
        max_turns=max_turns,
    )
    payloads = [{"i": i} for i in range(tasks)]
    chunks = [payloads[i : i + chunk] for i in range(0, tasks, chunk)]
    running = min(len(chunks), RUNNING_LEAVES)
    return _leaves(base, chunks, running=running, window=4, starting=1)


def test_leaves_cover_the_batch_in_order() -> None:
    leaves = plan(1000, 200)
    assert [leaf.first_index for leaf in leaves] == [0, 200, 400, 600, 800]
    assert [leaf.chunk_index for leaf in leaves] == [0, 1, 2, 3, 4]
    assert all(leaf.report_to == "b" and leaf.total_tasks == 200 for leaf in leaves)


def test_reports_are_bounded_by_the_batch_size_not_its_duration() -> None:
    leaves = plan(10_000, 200)  # 30,000 progress units
    step = leaves[0].report_step
    assert step == 30_000 // MAX_ROOT_REPORTS  # 60, under a leaf's 600 units / 4
    # A leaf reports after its first threshold, then once per step: all leaves together
    # send at most MAX_ROOT_REPORTS progress reports, plus one early report each.
    most = sum(1 + (3 * leaf.total_tasks) // step for leaf in leaves)
    assert most <= MAX_ROOT_REPORTS + len(leaves)


def test_only_the_first_leaves_start_without_waiting() -> None:
    leaves = plan(10_000, 200)
    assert [leaf.wait_for_go for leaf in leaves] == [k >= RUNNING_LEAVES for k in range(50)]
    # The root hears the running leaves about once a second in all.
    assert {leaf.report_every for leaf in leaves} == {float(RUNNING_LEAVES)}
    assert not any(leaf.wait_for_go for leaf in plan(400, 200))


def test_first_reports_are_staggered_across_running_leaves() -> None:
    leaves = plan(10_000, 200)
    firsts = [leaf.report_first for leaf in leaves]
    running = firsts[:RUNNING_LEAVES]
    assert running == sorted(running) and len(set(running)) == RUNNING_LEAVES
    assert firsts == [running[k % RUNNING_LEAVES] for k in range(len(leaves))]
    assert 1 <= running[0] <= running[-1] == leaves[0].report_step


def test_every_leaf_reports_a_few_times_however_many_leaves() -> None:
    leaves = plan(100_000, 100, max_turns=10)  # 1,000 leaves of 1,000 units each
    assert {leaf.report_step for leaf in leaves} == {1000 // MIN_LEAF_REPORTS}


def test_small_batches_report_every_change() -> None:
    assert {(leaf.report_step, leaf.report_first) for leaf in plan(40, 10)} == {(1, 1)}


@pytest.mark.parametrize("leaves", [1, 2, 3, 5, 50, 100])
@pytest.mark.parametrize("max_running", [1, 2, 3, 4, 100, 200, 500])
def test_running_leaves_never_run_more_than_the_bound(leaves: int, max_running: int) -> None:
    running, window, starting = shares(leaves, max_running)
    assert 1 <= running <= min(leaves, RUNNING_LEAVES)
    assert 1 <= window and running * window <= max_running
    assert 1 <= starting <= window
