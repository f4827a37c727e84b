"""``factorial events``: an owner's events as JSON lines."""

from __future__ import annotations

import asyncio
import json
import re
import sys
from typing import Annotated

import typer

from factorial.cli._common import (
    AddressOption,
    NamespaceOption,
    app,
    fail,
    run,
    with_orchestrator,
)
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
    type_: Annotated[
        list[str] | None, typer.Option("--type", help="Only this event type (repeatable).")
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

    async def action(orchestrator: Orchestrator) -> None:
        seen = asyncio.Event()

        async def hint() -> None:
            await asyncio.sleep(_EVENTS_HINT_AFTER)
            if not seen.is_set():
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
            ):
                seen.set()
                sys.stdout.write(json.dumps(event, default=str) + "\n")
                sys.stdout.flush()
        finally:
            hint_task.cancel()

    run(lambda: with_orchestrator(address, namespace, action))
