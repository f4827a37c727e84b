"""Asking other workflows to cancel, from a batch workflow: one local activity of cancel RPCs.

Recorded in the workflow task that asks (a marker), instead of a ``RequestCancelExternal``
command per workflow, each of which costs two events, a cross-workflow transfer queued behind
the server's other work, and one more workflow task for its confirmation (see
``factorial.activities.cancelling``).
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from factorial import _wire as wire

_TIMEOUT = timedelta(seconds=30)


async def cancel_workflows(workflow_ids: list[str]) -> None:
    """Request cancellation of each workflow (one that has already ended is skipped)."""
    await workflow.execute_local_activity(
        wire.CANCEL_WORKFLOWS_ACTIVITY, workflow_ids, start_to_close_timeout=_TIMEOUT
    )
