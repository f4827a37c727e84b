"""``factorial batch watch``: a live progress bar for any batch, until it ends.

It polls the batch's own counters (``Orchestrator.get_batch`` while it runs, its result once
it has ended), so the bar, the counts and the end are exactly the batch's: an event stream
would need the owner's stream workflow and filtering, and could miss nothing only by
replaying it. It works on a running batch and on one that has ended (no worker needed then),
and exits with a code that tells how the batch ended (``ExitCode``).
"""

from __future__ import annotations

import asyncio
from typing import Annotated

import typer
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn
from temporalio.client import RPCTimeoutOrCancelledError
from temporalio.service import RPCError

from factorial.cli._common import (
    AddressOption,
    ExitCode,
    NamespaceOption,
    batch_app,
    console,
    run,
    with_orchestrator,
)
from factorial.errors import TemporalUnavailableError
from factorial.orchestrator import Orchestrator
from factorial.task import Batch

#: Seconds one look at the batch may take before the bar says no worker answers.
_LOOK_TIMEOUT = 5.0


def outcome(batch: Batch) -> ExitCode:
    """The exit code of an ended batch: failed, cancelled, some tasks failed, or all completed.

    A batch that ended ``failed`` (its budget or its ``FailurePolicy`` stopped it) exits with
    ``TASKS_FAILED`` even though it cancelled its remaining tasks.
    """
    meta = batch.metadata
    if meta.status == "failed":
        return ExitCode.TASKS_FAILED
    if meta.status == "cancelled" or meta.cancelled:
        return ExitCode.CANCELLED
    if meta.failed:
        return ExitCode.TASKS_FAILED
    return ExitCode.OK


def short_counts(batch: Batch) -> str:
    """``2/3 · 1 ok · 1 failed · 0 cancelled``: the counts on the bar's line."""
    meta = batch.metadata
    total = meta.total_tasks or len(batch.task_ids)
    ended = meta.completed + meta.failed + meta.cancelled
    return (
        f"{ended}/{total} · {meta.completed} ok · {meta.failed} failed · {meta.cancelled} cancelled"
    )


def counts(batch: Batch) -> str:
    """``2/3 tasks ended: 1 completed, 1 failed, 0 cancelled``."""
    meta = batch.metadata
    total = meta.total_tasks or len(batch.task_ids)
    ended = meta.completed + meta.failed + meta.cancelled
    return (
        f"{ended}/{total} tasks ended: {meta.completed} completed, "
        f"{meta.failed} failed, {meta.cancelled} cancelled"
    )


async def watch(orchestrator: Orchestrator, batch_id: str, interval: float) -> Batch:
    """Show the batch's progress until it has ended; return it as it ended."""
    info = await orchestrator.get_batch_info(batch_id)  # an unknown batch fails here, at once
    console.print(
        f"batch {batch_id} ({info.agent or '?'} tasks of {info.owner_id or '?'})",
        markup=False,
        soft_wrap=True,
    )
    columns = (
        TextColumn("{task.description:<9}"),
        BarColumn(bar_width=24),
        TaskProgressColumn(),
        TextColumn("{task.fields[counts]}"),
    )
    with Progress(*columns, console=console, transient=False) as progress:
        bar = progress.add_task("active", total=100.0, counts="")
        while True:
            if (await orchestrator.get_batch_info(batch_id)).closed_at is not None:
                # Ended: its result has the final counts, no worker needed.
                batch = await orchestrator.read_ended_batch(batch_id)
            else:
                try:
                    batch = await asyncio.wait_for(orchestrator.get_batch(batch_id), _LOOK_TIMEOUT)
                except (TimeoutError, RPCError, RPCTimeoutOrCancelledError):
                    if not await _reachable(orchestrator):
                        raise TemporalUnavailableError(
                            f"lost the Temporal server at {orchestrator.temporal_address}"
                        ) from None
                    progress.update(bar, counts="no worker answers yet; is one running?")
                    await asyncio.sleep(interval)
                    continue
            status = batch.metadata.status
            progress.update(
                bar, description=status, completed=batch.progress, counts=short_counts(batch)
            )
            if status != "active":
                return batch
            await asyncio.sleep(interval)


async def _reachable(orchestrator: Orchestrator) -> bool:
    try:
        client = await orchestrator.client()
        await client.service_client.check_health(timeout=None)
    except (RPCError, RuntimeError):
        return False
    return True


@batch_app.command("watch")
def batch_watch(
    batch_id: Annotated[str, typer.Argument(metavar="ID", help="The batch id.")],
    interval: Annotated[
        float, typer.Option(min=0.1, help="Seconds between looks at the batch.")
    ] = 1.0,
    address: AddressOption = None,
    namespace: NamespaceOption = None,
) -> None:
    """Show a live progress bar of a batch until it ends.

    Exit code 0: every task completed; 4: some failed; 5: the batch (or a task) was cancelled.
    """

    async def action(orchestrator: Orchestrator) -> Batch:
        return await watch(orchestrator, batch_id, interval)

    ended = run(lambda: with_orchestrator(address, namespace, action))
    if ended is None:  # interrupted
        raise typer.Exit(130)
    console.print(
        f"batch {batch_id} {ended.metadata.status}: {counts(ended)}", markup=False, soft_wrap=True
    )
    raise typer.Exit(int(outcome(ended)))
