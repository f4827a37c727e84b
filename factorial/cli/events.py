"""``factorial events``: an owner's events as JSON lines.

The filters are checked before anything is followed: an unknown ``--type`` (neither built
in, ``events.BUILTIN_EVENT_TYPES``, nor a ``progress_update_*`` name) is refused with the
known ones listed, and a ``--task`` or ``--batch`` that does not exist, or belongs to another
owner, is refused too, instead of waiting forever for events that cannot come.
"""

from __future__ import annotations

import asyncio
import json
import re
import sys
from typing import Annotated

import typer

from factorial._batch_wire import batch_task_of
from factorial.cli._common import (
    AddressOption,
    CliError,
    NamespaceOption,
    app,
    fail,
    run,
    with_orchestrator,
)
from factorial.errors import TaskNotFoundError
from factorial.events import BUILTIN_EVENT_TYPES, is_known_event_type
from factorial.orchestrator import Orchestrator

#: Seconds ``factorial events`` waits for a first event before printing a hint.
_EVENTS_HINT_AFTER = 5.0


@app.command()
def events(
    owner: Annotated[str, typer.Argument(help="Whose events to follow.")],
    from_offset: Annotated[
        int | None,
        typer.Option(help="First offset to print (the last seen offset + 1 to resume)."),
    ] = None,
    task: Annotated[
        list[str] | None, typer.Option("--task", help="Only this task's events (repeatable).")
    ] = None,
    batch: Annotated[
        list[str] | None,
        typer.Option("--batch", help="Only this batch's events and its tasks' (repeatable)."),
    ] = None,
    type_: Annotated[
        list[str] | None,
        typer.Option(
            "--type",
            help="Only this event type (repeatable); custom types: use --pattern.",
        ),
    ] = None,
    pattern: Annotated[
        str | None, typer.Option(help="Only event types matching this regular expression.")
    ] = None,
    address: AddressOption = None,
    namespace: NamespaceOption = None,
) -> None:
    """Follow an owner's events, one JSON line each, until Ctrl-C."""
    if pattern is not None:
        try:
            re.compile(pattern)
        except re.error as err:
            fail(f"invalid --pattern {pattern!r}: {err}")
    unknown = [t for t in type_ or [] if not is_known_event_type(t)]
    if unknown:
        fail(
            f"unknown event type {unknown[0]!r}; known types: {', '.join(BUILTIN_EVENT_TYPES)} "
            "(and progress_update_* names); for custom event types use --pattern"
        )
    filtered = bool(task or batch or type_ or pattern)

    async def action(orchestrator: Orchestrator) -> None:
        await _check_owned(orchestrator, owner, task or [], batch or [])
        seen = asyncio.Event()

        async def hint() -> None:
            await asyncio.sleep(_EVENTS_HINT_AFTER)
            if seen.is_set():
                return
            if filtered:
                typer.echo(f"note: no events of {owner!r} match these filters yet", err=True)
            else:
                typer.echo(
                    f"note: no events for {owner!r} yet; event streams are served by running "
                    "factorial workers (`factorial worker MODULE:ATTR`)",
                    err=True,
                )

        hint_task = asyncio.create_task(hint())
        try:
            async for event in orchestrator.subscribe_to_updates(
                owner,
                task_ids=task or None,
                event_types=type_ or None,
                event_pattern=pattern,
                from_offset=from_offset,
                batch_ids=batch or None,
            ):
                seen.set()
                sys.stdout.write(json.dumps(event, default=str) + "\n")
                sys.stdout.flush()
        finally:
            hint_task.cancel()

    run(lambda: with_orchestrator(address, namespace, action))


async def _check_owned(
    orchestrator: Orchestrator, owner: str, task_ids: list[str], batch_ids: list[str]
) -> None:
    """Refuse a task or batch that does not exist or is not ``owner``'s."""
    for task_id in task_ids:
        try:
            found = (await orchestrator.get_task_info(task_id)).owner_id
        except TaskNotFoundError:
            await orchestrator.get_task_status(task_id)  # a batch's task not started yet
            parsed = batch_task_of(task_id)
            assert parsed is not None  # only those have a status without a workflow
            found = (await orchestrator.get_batch_info(parsed[0])).owner_id
        if found is not None and found != owner:
            raise CliError(f"task {task_id} belongs to owner {found!r}, not {owner!r}")
    for batch_id in batch_ids:
        found = (await orchestrator.get_batch_info(batch_id)).owner_id
        if found is not None and found != owner:
            raise CliError(f"batch {batch_id} belongs to owner {found!r}, not {owner!r}")
