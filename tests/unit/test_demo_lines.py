"""The demo's completion lines: one row each at 100 columns, however long the output."""

from __future__ import annotations

import io

import pytest
from rich.console import Console

from factorial import events as ev
from factorial.cli._demo_view import BatchView, Watch
from factorial.task import Batch, BatchMetadata

TASK_IDS = [f"batch-{'0123456789abcdef' * 2}-{i}" for i in range(3)]


@pytest.mark.parametrize("terminal", [True, False], ids=["terminal", "pipe"])
def test_each_completion_line_is_one_row_at_100_columns(terminal: bool) -> None:
    console = Console(width=100, file=io.StringIO(), record=True, force_terminal=terminal)
    batch = Batch(
        id="batch-" + "0123456789abcdef" * 2,
        task_ids=TASK_IDS,
        metadata=BatchMetadata(owner_id="demo-user", total_tasks=3, max_progress=9),
    )
    view = BatchView(console, Watch(batch))
    long_output = "Temporal keeps agent tasks durable " * 10
    view.task_ended(TASK_IDS[0], ev.RUN_COMPLETED, long_output)
    view.task_ended(TASK_IDS[1], ev.RUN_FAILED, {"error": "x " * 200})
    view.task_ended(TASK_IDS[2], ev.RUN_CANCELLED, None)

    rows = console.export_text().splitlines()
    assert len(rows) == 3, rows
    assert all(len(row) <= 100 for row in rows), rows
    assert rows[0].startswith("✓ batch-01234567") and "run_completed" in rows[0]
    assert rows[0].rstrip().endswith("…")  # cut at the width, not wrapped
    assert "run_failed" in rows[1] and "run_cancelled" in rows[2]
