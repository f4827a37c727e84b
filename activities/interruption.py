"""A local turn watches its task for a cancel request that its workflow cannot see yet.

A local turn runs inside its workflow's workflow task. A cancel request that arrives meanwhile
reaches the workflow only when that workflow task ends, or when the worker heartbeats it
(8 s in, with the 10 s workflow-task timeout); a regular turn hears of it through its
heartbeat instead. So a local turn still running after a tick asks the server, every tick,
whether its task was asked to cancel (one ``DescribeWorkflowExecution`` a second, and only
for local turns longer than a second). Once it was, the turn stops its model call and
returns ``TurnOutput(interrupted=True)``; the workflow ends its workflow task, the cancel
reaches it, and the task ends ``cancelled`` (``factorial.workflows._turn``).
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

from temporalio.client import Client, RPCError, RPCTimeoutOrCancelledError

#: How long one look at the task may take; a look that fails counts as "not asked".
_LOOK_TIMEOUT = timedelta(seconds=2)


class Interruption:
    """Cancels the running turn once its task's cancellation has been requested.

    Made in the turn's own asyncio task, which is the one it cancels.
    """

    def __init__(self, client: Client, workflow_id: str, run_id: str | None) -> None:
        self._handle = client.get_workflow_handle(workflow_id, run_id=run_id)
        self._turn = asyncio.current_task()
        self.happened = False

    async def check(self) -> bool:
        """Interrupt the turn if its task was asked to cancel; whether it was."""
        try:
            description = await self._handle.describe(rpc_timeout=_LOOK_TIMEOUT)
        except (RPCError, RPCTimeoutOrCancelledError):
            return False  # the next tick looks again; the heartbeat of the workflow task remains
        if not description.raw_description.workflow_extended_info.cancel_requested:
            return False
        self.happened = True
        if self._turn is not None:
            self._turn.cancel()
        return True

    def handled(self) -> None:
        """Take back the cancel sent to the turn, once the turn has stopped for it."""
        if self._turn is not None:
            self._turn.uncancel()
