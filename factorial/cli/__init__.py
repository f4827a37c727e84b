"""The ``factorial`` command: a local dev server, workers, the demo, tasks and events.

Mistakes a user can make (no server, unknown task, bad ``MODULE:ATTR``) print one
``error: ...`` line to stderr and exit with code 1, never a traceback; a task that has
already ended exits with 3, and ``batch watch`` tells how its batch ended (``ExitCode`` in
``_common``, listed in the README).
"""

from __future__ import annotations

import contextlib
import os
import sys
from typing import Any

import typer

from factorial.cli import _common, _watch, batches, events, listing, serve, tasks
from factorial.cli._common import app
from factorial.cli.serve import load_orchestrator

__all__ = ["app", "load_orchestrator", "main"]
# Imported for the commands they register.
_COMMANDS = (_watch, batches, events, listing, serve, tasks)


def main() -> None:
    """Entry point of the ``factorial`` command.

    After a command that talked to Temporal the process ends with ``os._exit`` once its
    output is flushed: the SDK's core threads can otherwise abort the interpreter at
    shutdown (temporalio/sdk-python#300), turning a clean stop into a crash.
    """
    try:
        app()
        code: Any = 0
    except SystemExit as exc:
        code = exc.code
    if isinstance(code, str):
        typer.echo(code, err=True)
        code = 1
    code = int(code or 0)
    if not _common.used_temporal:
        sys.exit(code)
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(code)
