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

from factorial._usage import TokenUsage
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
    """A batch's status, progress, outcomes and tokens, one ``key: value`` per line."""
    meta = batch.metadata
    lines = [
        f"batch: {batch.id}",
        f"status: {batch_status_text(batch)}",
        f"progress: {progress_text(batch)}",
        f"tasks: {tasks_text(batch)}",
        f"tokens: {usage_text(meta.usage)}",
        f"owner: {meta.owner_id}",
    ]
    if meta.parent_id:
        lines.append(f"parent task: {meta.parent_id}")
    if meta.retry_of:
        lines.append(f"retry of: {meta.retry_of}")
    if meta.reason:
        lines.append(f"reason: {meta.reason}")
    for line in lines:
        console.print(line, markup=False, soft_wrap=True)


def batch_status_text(batch: Batch) -> str:
    """The status, and how many tasks failed where any did: ``completed (all 3 tasks failed)``."""
    meta = batch.metadata
    ended = meta.completed + meta.failed + meta.cancelled
    if not meta.failed:
        return meta.status
    if meta.failed == ended == meta.total_tasks:
        return f"{meta.status} (all {meta.failed} tasks failed)"
    return f"{meta.status} ({meta.failed} of {ended} ended tasks failed)"


def progress_text(batch: Batch) -> str:
    """The progress; for a cancelled batch, the share of its tasks that ran to an end."""
    meta = batch.metadata
    if meta.status != "cancelled":
        return f"{batch.progress:g}%"
    ran = meta.completed + meta.failed
    share = round(100 * ran / max(1, meta.total_tasks), 2)
    return f"cancelled at {share:g}% ({ran} of {meta.total_tasks} tasks completed or failed)"


def tasks_text(batch: Batch) -> str:
    """``5/5 ended (3 completed, 1 failed, 1 cancelled), 0 remaining``."""
    meta = batch.metadata
    total = meta.total_tasks or len(batch.task_ids)
    ended = meta.completed + meta.failed + meta.cancelled
    outcomes = f"{meta.completed} completed, {meta.failed} failed, {meta.cancelled} cancelled"
    return f"{ended}/{total} ended ({outcomes}), {total - ended} remaining"


def usage_text(usage: TokenUsage) -> str:
    """``1,234 (prompt 1,000, completion 234), cost 0.0012``; the cost where known."""
    text = (
        f"{usage.total_tokens:,} (prompt {usage.prompt_tokens:,}, "
        f"completion {usage.completion_tokens:,})"
    )
    return text if usage.cost is None else f"{text}, cost {usage.cost:.6g}"


@batch_app.command("status")
def batch_status(
    batch_id: BatchIdArgument,
    json_: JsonOption = False,
    address: AddressOption = None,
    namespace: NamespaceOption = None,
    timeout: TimeoutOption = 15.0,
) -> None:
    """Print a batch's status, progress, its tasks' outcomes and its tokens.

    It needs no worker: a batch keeps its counters in its memo, which the server stores.
    """

    async def action(orchestrator: Orchestrator) -> None:
        try:
            batch = await asyncio.wait_for(orchestrator.get_batch(batch_id), timeout)
        except TimeoutError:
            raise CliError(f"batch {batch_id} could not be read within {timeout:g}s") from None
        except (RPCError, RPCTimeoutOrCancelledError):
            # Only a batch started before batches kept their counters in their memo.
            raise CliError(
                f"no worker answered a query for batch {batch_id} (it predates the counters "
                "batches keep in their memo); is a worker for its agent running?"
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
