"""Cancel requests sent straight to the server, many at once (not through a workflow).

Used by the ``cancel_workflows`` activity (a batch asking its leaves or tasks), by
``cancel_batch``'s sweeps and by a batch whose start failed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

#: Cancel requests in flight at once.
_CONCURRENT = 50


async def cancel_each(client: Client, workflow_ids: Iterable[str], *, best_effort: bool) -> None:
    """Request cancellation of each workflow, at most ``_CONCURRENT`` at a time.

    A workflow that has already ended is skipped. Any other failure is raised, unless
    ``best_effort``: then it is skipped too (another path guarantees the cancel).
    """
    limit = asyncio.Semaphore(_CONCURRENT)

    async def cancel(workflow_id: str) -> None:
        async with limit:
            try:
                await client.get_workflow_handle(workflow_id).cancel()
            except RPCError as err:
                if not best_effort and err.status != RPCStatusCode.NOT_FOUND:
                    raise

    await asyncio.gather(*(cancel(i) for i in workflow_ids))
