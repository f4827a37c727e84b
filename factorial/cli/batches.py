"""``factorial batch status|cancel|results|retry-failed`` (``watch`` is in ``_watch``)."""

from __future__ import annotations

import asyncio
import contextlib
import sys
from pathlib import Path
from typing import Annotated

import typer
from temporalio.client import RPCTimeoutOrCancelledError
from temporalio.service import RPCError

from factorial.cli._common import (
    AddressOption,
    CliError,
    JsonOption,
    NamespaceOption,
    TimeoutOption,
    batch_app,
    console,
    print_json,
    run,
    with_orchestrator,
)
from factorial.orchestrator import Orchestrator
from factorial.task import Batch

BatchIdArgument = Annotated[str, typer.Argument(metavar="ID", help="The batch id.")]


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
    if meta.retry_of:
        lines.append(f"retry of: {meta.retry_of}")
    for line in lines:
        console.print(line, markup=False, soft_wrap=True)


@batch_app.command("status")
def batch_status(
    batch_id: BatchIdArgument,
    json_: JsonOption = False,
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
        if json_:
            print_json(batch)
        else:
            _print_batch(batch)

    run(lambda: with_orchestrator(address, namespace, action))


@batch_app.command("cancel")
def batch_cancel(
    batch_id: BatchIdArgument,
    json_: JsonOption = False,
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
        if json_:
            print_json(batch)
        else:
            _print_batch(batch)

    run(lambda: with_orchestrator(address, namespace, action))


@batch_app.command("results")
def batch_results(
    batch_id: BatchIdArgument,
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="Write to this file instead of stdout."),
    ] = None,
    address: AddressOption = None,
    namespace: NamespaceOption = None,
) -> None:
    """Export each task's status and output or error as JSON Lines, in task order.

    Tasks still running have neither yet. No worker is needed.
    """

    async def action(orchestrator: Orchestrator) -> None:
        results = orchestrator.batch_results(batch_id)
        first = await anext(results)  # fails here for an unknown batch, before the file opens
        with contextlib.ExitStack() as stack:
            out = stack.enter_context(output.open("w")) if output else sys.stdout
            out.write(first.model_dump_json() + "\n")
            count = 1
            async for result in results:
                out.write(result.model_dump_json() + "\n")
                count += 1
            out.flush()
        if output:
            typer.echo(f"{count} results of batch {batch_id} written to {output}", err=True)

    run(lambda: with_orchestrator(address, namespace, action))


@batch_app.command("retry-failed")
def batch_retry_failed(
    batch_id: BatchIdArgument,
    json_: JsonOption = False,
    address: AddressOption = None,
    namespace: NamespaceOption = None,
) -> None:
    """Enqueue the failed tasks of an ended batch as a new batch; print the new batch's id.

    The new batch runs the same agent for the same owner; its status shows ``retry of``.
    """

    async def action(orchestrator: Orchestrator) -> None:
        batch = await orchestrator.retry_failed_tasks(batch_id)
        if json_:
            print_json(batch)
        elif batch is None:
            typer.echo(f"no failed tasks in batch {batch_id}: nothing to retry", err=True)
        else:
            typer.echo(batch.id)
            typer.echo(
                f"retrying {batch.metadata.total_tasks} failed tasks of {batch_id}", err=True
            )

    run(lambda: with_orchestrator(address, namespace, action))
