"""Running ``factorial`` commands in-process (typer's runner) from async tests."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from typer.testing import CliRunner, Result

from factorial.cli import app

T = TypeVar("T")


async def cli(*args: str) -> Result:
    """Run ``factorial ARGS`` in a thread (each command runs its own event loop)."""
    return await asyncio.to_thread(CliRunner().invoke, app, list(args))


def ok(result: Result) -> str:
    """The stdout of a command that succeeded."""
    assert result.exit_code == 0, (result.exit_code, result.stdout, result.stderr)
    assert "Traceback" not in result.stdout + result.stderr
    return result.stdout


def as_json(result: Result) -> Any:
    """The JSON document a ``--json`` command printed."""
    return json.loads(ok(result))


async def eventually(look: Callable[[], Awaitable[T]], done: Callable[[T], bool]) -> T:
    """``look()`` until ``done`` says yes (visibility lags the workflows by about a second)."""
    async with asyncio.timeout(60):
        while True:
            value = await look()
            if done(value):
                return value
            await asyncio.sleep(0.3)
