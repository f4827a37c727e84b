"""The demo's progress bar: sub-agents' progress moves it while their parents wait."""

from __future__ import annotations

from typing import Any

from rich.console import Console

from factorial.cli._demo_view import BatchView, Watch
from factorial.task import Batch, BatchMetadata


def watch(tasks: int = 4, max_turns: int | None = 3) -> Watch:
    meta = BatchMetadata(owner_id="demo", total_tasks=tasks, max_progress=tasks * (max_turns or 1))
    ids = [f"batch-1-{i}" for i in range(tasks)]
    return Watch(batch=Batch(id="batch-1", task_ids=ids, metadata=meta))


def sub(
    batch_id: str, parent: str, progress: float, kind: str = "batch_progress"
) -> dict[str, Any]:
    return {
        "event_type": kind,
        "batch_id": batch_id,
        "parent_task_id": parent,
        "progress": progress,
    }


def test_running_sub_agents_credit_the_turn_their_parent_waits_on() -> None:
    w = watch()
    w.progress = 100 * 4 / 12  # every task finished its forking turn: 4 of 12 turns
    assert w.shown_progress() == 33.33
    w.sub_batch_event(sub("s0", "batch-1-0", 50.0))
    # half of one turn of 12
    assert w.shown_progress() == round(100 * 4.5 / 12, 2)
    w.sub_batch_event(sub("s1", "batch-1-1", 100.0))
    assert w.shown_progress() == round(100 * 5.5 / 12, 2)


def test_several_sub_batches_of_one_parent_share_its_turn() -> None:
    w = watch()
    w.progress = 0.0
    w.sub_batch_event(sub("s0", "batch-1-0", 100.0))
    w.sub_batch_event(sub("s1", "batch-1-0", 0.0))
    assert w.shown_progress() == round(100 * 0.5 / 12, 2)


def test_the_bar_never_moves_back() -> None:
    w = watch()
    w.progress = 100 * 4 / 12
    w.sub_batch_event(sub("s0", "batch-1-0", 100.0))
    high = w.shown_progress()
    # The sub-batch ended: its credit goes, until the parent's next turn is counted.
    w.sub_batch_event(sub("s0", "batch-1-0", 100.0, kind="batch_completed"))
    assert w.sub_batches == {}
    assert w.shown_progress() == high
    w.progress = 100 * 5 / 12
    assert w.shown_progress() == high  # the parent's turn, which the bar already showed
    w.progress = 100 * 6 / 12
    assert w.shown_progress() == 50.0


def test_a_batch_counted_by_tasks_credits_half_a_task() -> None:
    w = watch(tasks=2, max_turns=None)
    w.sub_batch_event(sub("s0", "batch-1-0", 100.0))
    assert w.shown_progress() == 25.0


def test_the_view_moves_its_bar_on_sub_batch_events() -> None:
    console = Console(record=True, width=100, force_terminal=False)
    w = watch()
    view = BatchView(console, w)
    with view:
        view.batch_event({"event_type": "batch_progress", "progress": 100 * 4 / 12})
        view.sub_batch_event(sub("s0", "batch-1-0", 100.0))
        view.batch_event({"event_type": "batch_progress", "progress": 100 * 4 / 12})
        view.batch_event(
            {
                "event_type": "batch_completed",
                "progress": 100.0,
                "completed_tasks": 4,
                "usage": {"total_tokens": 12345},
            }
        )
    lines = console.export_text().splitlines()
    # Not a live terminal: one line per change; the second event shows the credited turn.
    assert lines == [
        "batch_progress    33.3%  0/4 tasks, 4/12 turns",
        "batch_progress    41.7%  0/4 tasks, 5/12 turns",
        "batch_completed  100.0%  4/4 tasks, 12/12 turns, 12,345 tokens",
    ]
