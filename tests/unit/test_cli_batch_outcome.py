"""How the CLI reports an ended batch: ``batch watch``'s exit code and ``batch status``'s lines."""

from __future__ import annotations

import pytest

from factorial.cli import batches
from factorial.cli._common import ExitCode
from factorial.cli._watch import outcome
from factorial.task import Batch, BatchMetadata


def ended(status: str, **counts: int | str) -> Batch:
    meta = BatchMetadata.model_validate(
        {"owner_id": "user-1", "total_tasks": 4, "status": status, **counts}
    )
    return Batch(id="batch-1", task_ids=[f"batch-1-{i}" for i in range(4)], metadata=meta)


@pytest.mark.parametrize(
    ("batch", "code"),
    [
        (ended("completed", completed=4), ExitCode.OK),
        (ended("completed", completed=3, failed=1), ExitCode.TASKS_FAILED),
        (ended("cancelled", completed=1, cancelled=3), ExitCode.CANCELLED),
        # Stopped by its failure policy or budget: failed, though it cancelled the rest.
        (ended("failed", failed=2, cancelled=2, reason="2 tasks failed"), ExitCode.TASKS_FAILED),
        (ended("failed", completed=2, cancelled=2, reason="BudgetExceeded: used 9 turns"), 4),
    ],
)
def test_watch_exit_code(batch: Batch, code: int) -> None:
    assert outcome(batch) == code


def test_status_prints_why_a_batch_failed(capsys: pytest.CaptureFixture[str]) -> None:
    batches._print_batch(ended("failed", failed=2, cancelled=2, reason="2 tasks failed"))
    lines = capsys.readouterr().out.splitlines()
    assert "status: failed (2 of 4 ended tasks failed)" in lines
    assert "reason: 2 tasks failed" in lines
