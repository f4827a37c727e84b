"""What every ``factorial`` command shares: the app, its options, and how errors print."""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
from collections.abc import Awaitable, Callable, Coroutine
from enum import IntEnum
from typing import Annotated, Any, NoReturn, TypeVar

import typer
from rich.console import Console
from temporalio.client import RPCTimeoutOrCancelledError
from temporalio.service import RPCError

from factorial.devserver import is_listening
from factorial.errors import (
    FactorialError,
    TemporalUnavailableError,
)
from factorial.orchestrator import Orchestrator

T = TypeVar("T")

app = typer.Typer(
    name="factorial",
    help="Run LLM agent tasks reliably on Temporal.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
task_app = typer.Typer(
    help="List, inspect, cancel and steer tasks; complete deferred tools.", no_args_is_help=True
)
app.add_typer(task_app, name="task")
batch_app = typer.Typer(
    help="List, inspect, watch, export, retry and cancel batches.", no_args_is_help=True
)
app.add_typer(batch_app, name="batch")

console = Console(highlight=False)

#: Set once a command ran the event loop against Temporal (see ``main``).
used_temporal = False

AddressOption = Annotated[
    str | None,
    typer.Option(
        "--address",
        envvar="TEMPORAL_ADDRESS",
        help="Temporal frontend host:port (default: localhost:7233).",
        show_default=False,
    ),
]
NamespaceOption = Annotated[
    str | None,
    typer.Option(
        "--namespace",
        envvar="TEMPORAL_NAMESPACE",
        help="Temporal namespace (default: default).",
        show_default=False,
    ),
]
TimeoutOption = Annotated[
    float, typer.Option(min=0.1, help="Seconds to wait for a worker to answer.")
]


class ExitCode(IntEnum):
    """The ``factorial`` command's exit codes (the README's "The CLI" lists them)."""

    #: The command did what it was asked; a status or list command answered.
    OK = 0
    #: A mistake or a failure: no server, unknown task or batch, bad input, no worker.
    ERROR = 1
    #: The command line itself is wrong (an unknown option; typer's own code).
    USAGE = 2
    #: The task has already ended: it cannot be cancelled, steered or given a tool result.
    ENDED = 3
    #: ``batch watch``: the batch ended ``failed`` (budget, failure policy) or some tasks failed.
    TASKS_FAILED = 4
    #: ``batch watch``: the batch was cancelled (or some of its tasks were).
    CANCELLED = 5


class CliError(Exception):
    """A message for the user; printed as ``error: ...`` with exit code ``code``."""

    def __init__(self, message: str, code: ExitCode = ExitCode.ERROR) -> None:
        super().__init__(message)
        self.code = code


def fail(message: str, code: int = ExitCode.ERROR) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(int(code))


def message(err: BaseException) -> str:
    text = " ".join(str(err).split())
    return text or type(err).__name__


async def interruptible(main: Coroutine[Any, Any, T]) -> T | None:
    """Run ``main``, cancelling it on SIGINT or SIGTERM; None if it was interrupted."""
    loop = asyncio.get_running_loop()
    task = asyncio.ensure_future(main)
    installed = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(sig, task.cancel)
            installed.append(sig)
    try:
        return await task
    except asyncio.CancelledError:
        if task.cancelled():
            return None
        raise
    finally:
        for sig in installed:
            loop.remove_signal_handler(sig)


def run(main: Callable[[], Awaitable[T]]) -> T | None:
    """Run an async command, turning Factorial and Temporal errors into one ``error:`` line."""
    global used_temporal
    used_temporal = True

    async def wrapped() -> T:
        return await main()

    try:
        return asyncio.run(interruptible(wrapped()))
    except KeyboardInterrupt:
        return None
    except CliError as err:
        fail(message(err), err.code)
    except FactorialError as err:
        fail(message(err))
    except RPCError as err:
        fail(f"Temporal: {message(err)}")
    except RPCTimeoutOrCancelledError as err:
        fail(f"Temporal: {message(err)}")


def check_reachable(address: str) -> None:
    """Fail fast when nothing listens at ``address`` (Client.connect would retry a while)."""
    if not is_listening(address, timeout=2.0):
        raise TemporalUnavailableError(
            f"no Temporal server at {address} (nothing listens there); "
            "start one with `factorial dev` or pass --address"
        )


def connect_orchestrator(address: str | None, namespace: str | None) -> Orchestrator:
    orchestrator = Orchestrator(temporal_address=address, namespace=namespace)
    check_reachable(orchestrator.temporal_address)
    return orchestrator


async def with_orchestrator(
    address: str | None,
    namespace: str | None,
    action: Callable[[Orchestrator], Awaitable[T]],
) -> T:
    orchestrator = connect_orchestrator(address, namespace)
    try:
        return await action(orchestrator)
    finally:
        await orchestrator.close()


def show(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, default=str)


JsonOption = Annotated[
    bool, typer.Option("--json", help="Print one JSON document instead of text.")
]


def print_json(value: Any) -> None:
    """Print ``value`` as JSON on stdout (pydantic models as their JSON form)."""
    typer.echo(json.dumps(value, default=_jsonable, indent=2))


def _jsonable(value: Any) -> Any:
    dump = getattr(value, "model_dump", None)
    return dump(mode="json") if callable(dump) else str(value)


def print_fields(fields: list[tuple[str, Any]]) -> None:
    """``key: value`` lines, skipping empty values."""
    for key, value in fields:
        if value is None or value == [] or value == "":
            continue
        console.print(f"{key}: {show(value)}", markup=False, soft_wrap=True)
