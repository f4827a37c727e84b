"""When a batch stops early, checked from its counters: its join, its failure policy.

A sub-agent batch (a lone leaf) with ``join`` set stops once that many of its tasks have
completed: the forking tool's parent resumes with the results so far, and the batch ends
``completed``. A batch with ``on_failure`` set stops once more tasks have failed than the
policy tolerates, and ends ``failed`` with the reason; a batch of several leaves checks it at
its root, from the counts its leaves report.

Batches recorded before these policies had neither set, so neither check runs on replay of
them; the patches mark the histories that used one.
"""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from factorial import _wire as wire

JOIN_PATCH = "batch-join-policy"
FAILURE_PATCH = "batch-failure-policy"


def join_reason(inp: wire.BatchInput, completed: int) -> str | None:
    """Why the batch stops now that ``completed`` tasks have completed; None to go on."""
    if inp.join is None or completed < inp.join or not workflow.patched(JOIN_PATCH):
        return None
    return f"the forking tool's join policy was met ({completed} completed)"


def failure_reason(inp: wire.BatchInput, failed: int) -> str | None:
    """Why the batch fails now that ``failed`` tasks have failed; None to go on."""
    if inp.on_failure is None:
        return None
    reason = inp.on_failure.tripped(failed, inp.total_tasks)
    if reason is None or not workflow.patched(FAILURE_PATCH):
        return None
    return reason
