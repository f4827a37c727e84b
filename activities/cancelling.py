"""A batch workflow asks its leaves or tasks to cancel, through the client.

A ``RequestCancelExternalWorkflowExecution`` command per leaf queues behind the server's
other cross-workflow work: cancelling a 20,000-task batch on 2 cores, the root's 100 requests
were confirmed at about 5 a second, and the root could not end until the last one was. One
cancel RPC per leaf from a local activity is recorded at once, and costs the root's history
one marker instead of two events per leaf.

``cancel_and_wait`` also waits, a bounded time, until the workflows it asked have closed,
and says which closed cancelled: a stopped leaf learns its tasks' ends from it rather than
from its own history, where the server records them one by one (see
``factorial._cancelling.cancel_and_wait``).
"""

from __future__ import annotations

from temporalio import activity

from factorial import _cancelling
from factorial._wire import CANCEL_AND_WAIT_ACTIVITY, CANCEL_WORKFLOWS_ACTIVITY


@activity.defn(name=CANCEL_WORKFLOWS_ACTIVITY)
async def cancel_workflows(workflow_ids: list[str]) -> None:
    """Request cancellation of each workflow; one that has already ended is skipped."""
    await _cancelling.cancel_each(activity.client(), workflow_ids, best_effort=False)


@activity.defn(name=CANCEL_AND_WAIT_ACTIVITY)
async def cancel_and_wait(workflow_ids: list[str], seconds: float) -> list[str]:
    """Request cancellation of each workflow, wait up to ``seconds``; return those cancelled."""
    return await _cancelling.cancel_and_wait(activity.client(), workflow_ids, seconds)
