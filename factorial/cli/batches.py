"""``factorial batch status|cancel``."""

from __future__ import annotations

import asyncio
from typing import Annotated

import typer
from temporalio.client import RPCTimeoutOrCancelledError
from temporalio.service import RPCError

from factorial.cli._common import (
    AddressOption,
    CliError,
    NamespaceOption,
    TimeoutOption,
    batch_app,
    console,
    run,
    with_orchestrator,
)
from factorial.orchestrator import Orchestrator
from factorial.task import Batch


def _print_batch(batch: Batch) -> None:
    """A batch's status, progress and task counts, one ``key: value`` per line."""
    meta = batch.metadata
    total = meta.total_tasks or len(batch.task_ids)
    remaining = len(batch.remaining_task_ids)
    lines = [
        f"batch: {batch.id}",
        f"status: {meta.status}",
        f"progress: {batch.progress:g}%",
        f"tasks: {total - remaining}/{total} ended, {remaining} remaining",
        f"owner: {meta.owner_id}",
    ]
    if meta.parent_id:
        lines.append(f"parent task: {meta.parent_id}")
    for line in lines:
        console.print(line, markup=False, soft_wrap=True)


@batch_app.command("status")
def batch_status(
    batch_id: Annotated[str, typer.Argument(metavar="ID", help="The batch id.")],
    address: AddressOption = None,
    namespace: NamespaceOption = None,
    timeout: TimeoutOption = 15.0,
) -> None:
    """Print a batch's status, progress, and how many of its tasks have ended."""

    async def action(orchestrator: Orchestrator) -> None:
        try:
            batch = await asyncio.wait_for(orchestrator.get_batch(batch_id), timeout)
        except (TimeoutError, RPCError, RPCTimeoutOrCancelledError):
            # The batch's counters are read through a query, which needs a worker.
            raise CliError(
                f"no worker answered for batch {batch_id} within {timeout:g}s; "
                "is a worker for its agent running?"
            ) from None
        _print_batch(batch)

    run(lambda: with_orchestrator(address, namespace, action))


@batch_app.command("cancel")
def batch_cancel(
    batch_id: Annotated[str, typer.Argument(metavar="ID", help="The batch id.")],
    address: AddressOption = None,
    namespace: NamespaceOption = None,
    timeout: Annotated[
        float,
        typer.Option(min=0.1, help="Seconds to wait for the batch's tasks to wind down."),
    ] = 60.0,
) -> None:
    """Cancel every task of a batch still running, then print its status."""

    async def action(orchestrator: Orchestrator) -> None:
        try:
            batch = await asyncio.wait_for(orchestrator.cancel_batch(batch_id), timeout)
        except (TimeoutError, RPCTimeoutOrCancelledError):
            raise CliError(
                f"cancellation of batch {batch_id} was requested but it did not end within "
                f"{timeout:g}s; is a worker for its agent running?"
            ) from None
        _print_batch(batch)

    run(lambda: with_orchestrator(address, namespace, action))


# -- events ---------------------------------------------------------------------------------
