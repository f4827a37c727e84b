"""The ``factorial`` command: a local dev server, workers, the demo, tasks and events.

Mistakes a user can make (no server, unknown task, bad ``MODULE:ATTR``) print one
``error: ...`` line to stderr and exit with code 1, never a traceback.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import json
import os
import re
import signal
import sys
import time
from collections.abc import Awaitable, Callable, Coroutine
from pathlib import Path
from typing import Annotated, Any, NoReturn, TypeVar

import typer
from rich.console import Console
from temporalio.client import RPCTimeoutOrCancelledError
from temporalio.service import RPCError

from factorial.devserver import DEFAULT_STATE_DIR, DevServer, is_listening
from factorial.errors import (
    FactorialError,
    TaskCancelledError,
    TaskFailedError,
    TemporalUnavailableError,
)
from factorial.orchestrator import Orchestrator
from factorial.task import Batch

T = TypeVar("T")

app = typer.Typer(
    name="factorial",
    help="Run LLM agent tasks reliably on Temporal.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
task_app = typer.Typer(help="Inspect, cancel and steer tasks.", no_args_is_help=True)
app.add_typer(task_app, name="task")
batch_app = typer.Typer(help="Inspect and cancel batches.", no_args_is_help=True)
app.add_typer(batch_app, name="batch")

console = Console(highlight=False)

#: Seconds ``factorial events`` waits for a first event before printing a hint.
_EVENTS_HINT_AFTER = 5.0

#: Set once a command ran the event loop against Temporal (see ``main``).
_used_temporal = False

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


class CliError(Exception):
    """A message for the user; printed as ``error: ...`` with exit code 1."""


def _fail(message: str) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(1)


def _message(err: BaseException) -> str:
    text = " ".join(str(err).split())
    return text or type(err).__name__


async def _interruptible(main: Coroutine[Any, Any, T]) -> T | None:
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


def _run(main: Callable[[], Awaitable[T]]) -> T | None:
    """Run an async command, turning Factorial and Temporal errors into one ``error:`` line."""
    global _used_temporal
    _used_temporal = True

    async def wrapped() -> T:
        return await main()

    try:
        return asyncio.run(_interruptible(wrapped()))
    except KeyboardInterrupt:
        return None
    except (FactorialError, CliError) as err:
        _fail(_message(err))
    except RPCError as err:
        _fail(f"Temporal: {_message(err)}")
    except RPCTimeoutOrCancelledError as err:
        _fail(f"Temporal: {_message(err)}")


def _check_reachable(address: str) -> None:
    """Fail fast when nothing listens at ``address`` (Client.connect would retry a while)."""
    if not is_listening(address, timeout=2.0):
        raise TemporalUnavailableError(
            f"no Temporal server at {address} (nothing listens there); "
            "start one with `factorial dev` or pass --address"
        )


def _orchestrator(address: str | None, namespace: str | None) -> Orchestrator:
    orchestrator = Orchestrator(temporal_address=address, namespace=namespace)
    _check_reachable(orchestrator.temporal_address)
    return orchestrator


# -- dev ------------------------------------------------------------------------------------


@app.command()
def dev(
    port: Annotated[int, typer.Option(help="gRPC port of the Temporal frontend.")] = 7233,
    ui_port: Annotated[int, typer.Option(help="Port of the Temporal Web UI.")] = 8233,
    db_filename: Annotated[
        Path,
        typer.Option(help="SQLite file that keeps the server's state across restarts."),
    ] = DEFAULT_STATE_DIR / "temporal.db",
    ip: Annotated[str, typer.Option(help="Address to bind.")] = "127.0.0.1",
) -> None:
    """Run a local Temporal dev server in the foreground until Ctrl-C."""
    address = f"{ip}:{port}"
    if is_listening(address):
        _fail(f"something already listens at {address}; pick another --port")
    server = DevServer(port=port, ui_port=ui_port, db_filename=db_filename, ip=ip)
    try:
        server.start()
    except FactorialError as err:
        _fail(_message(err))
    console.print(f"Temporal dev server at [bold]{server.address}[/bold]")
    console.print(f"Web UI: [bold]{server.ui_url}[/bold]")
    console.print(f"State: {db_filename}   (Ctrl-C to stop)")
    signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        while is_listening(server.address):
            time.sleep(1.0)
        _fail(f"the Temporal dev server at {server.address} stopped unexpectedly")
    except KeyboardInterrupt:
        console.print("Stopping the Temporal dev server ...")
    finally:
        server.stop()


def _raise_interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


# -- worker ---------------------------------------------------------------------------------


def load_orchestrator(target: str) -> Orchestrator:
    """Import ``MODULE:ATTR`` (the current directory is importable) and return the Orchestrator.

    Raises:
        CliError: The target is malformed, cannot be imported, or is not an Orchestrator.
    """
    module_name, sep, attr = target.partition(":")
    if not sep or not module_name or not attr:
        raise CliError(f"expected MODULE:ATTR (e.g. myapp.workers:orchestrator), got {target!r}")
    cwd = os.getcwd()
    if cwd not in sys.path:
        sys.path.insert(0, cwd)
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as err:
        if err.name and (module_name == err.name or module_name.startswith(err.name + ".")):
            raise CliError(f"cannot import {module_name!r}: no module named {err.name!r}") from None
        raise CliError(f"cannot import {module_name!r}: {_message(err)}") from None
    except FactorialError:
        raise
    except Exception as err:
        raise CliError(
            f"cannot import {module_name!r}: {type(err).__name__}: {_message(err)}"
        ) from None
    obj: Any = module
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise CliError(f"module {module_name!r} has no attribute {attr!r}") from None
    if not isinstance(obj, Orchestrator):
        raise CliError(f"{target} is a {type(obj).__name__}, not a factorial Orchestrator")
    return obj


async def _serve(orchestrator: Orchestrator) -> None:
    try:
        if getattr(orchestrator, "_client", None) is None:
            _check_reachable(orchestrator.temporal_address)
        await orchestrator.start_workers()
        names = ", ".join(agent.name for agent in orchestrator.agents) or "(no agents)"
        console.print(
            f"Worker running agents {names} on {orchestrator.temporal_address} "
            f"(namespace {orchestrator.namespace}); Ctrl-C to stop.",
            soft_wrap=True,
        )
        await orchestrator.serve()
    finally:
        await orchestrator.close()


@app.command()
def worker(
    target: Annotated[
        str, typer.Argument(metavar="MODULE:ATTR", help="Where the Orchestrator is.")
    ],
    address: AddressOption = None,
    namespace: NamespaceOption = None,
) -> None:
    """Run the workers of the agents registered on an Orchestrator until Ctrl-C."""
    try:
        orchestrator = load_orchestrator(target)
    except (CliError, FactorialError) as err:
        _fail(_message(err))
    if address:
        orchestrator.temporal_address = address
    if namespace:
        orchestrator.namespace = namespace
    _run(lambda: _serve(orchestrator))
    console.print("Worker stopped.")


# -- demo -----------------------------------------------------------------------------------


@app.command()
def demo(
    address: Annotated[
        str | None,
        typer.Option(
            help="Temporal frontend host:port; by default a local dev server (started if needed).",
            show_default=False,
        ),
    ] = None,
    tasks: Annotated[
        int, typer.Option(min=1, max=100, help="How many research tasks the batch has.")
    ] = 5,
    model: Annotated[
        str | None,
        typer.Option(help="Catalog model such as gpt-4.1-mini (needs OPENAI_API_KEY)."),
    ] = None,
) -> None:
    """Run a batch of research tasks (with sub-agents) and watch its progress live.

    Ctrl-C cancels the batch and exits with code 130.
    """
    from factorial.demo import run_demo

    finished = _run(lambda: _completed(run_demo(address, tasks=tasks, model_name=model)))
    if not finished:
        typer.echo("Interrupted.", err=True)
        raise typer.Exit(130)


async def _completed(work: Awaitable[Any]) -> bool:
    await work
    return True


# -- task -----------------------------------------------------------------------------------


async def _with_orchestrator(
    address: str | None,
    namespace: str | None,
    action: Callable[[Orchestrator], Awaitable[T]],
) -> T:
    orchestrator = _orchestrator(address, namespace)
    try:
        return await action(orchestrator)
    finally:
        await orchestrator.close()


def _show(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, default=str)


@task_app.command("status")
def task_status(
    task_id: Annotated[str, typer.Argument(metavar="ID", help="The task id.")],
    address: AddressOption = None,
    namespace: NamespaceOption = None,
    timeout: TimeoutOption = 15.0,
) -> None:
    """Print a task's status, turn, output and error."""

    async def action(orchestrator: Orchestrator) -> None:
        try:
            status = await asyncio.wait_for(orchestrator.get_task_status(task_id), timeout)
        except (TimeoutError, RPCError):
            # Only a running task is asked through a query, which needs a worker.
            console.print(
                f"status: running (no worker answered within {timeout:g}s; "
                "is a worker for its agent running?)",
                markup=False,
            )
            return
        console.print(f"status: {status.value}", markup=False)
        if status.is_terminal:
            await _print_outcome(orchestrator, task_id)
            return
        try:
            data = await asyncio.wait_for(orchestrator.get_task_data(task_id), timeout)
        except (TimeoutError, RPCError):
            data = None
        if data is not None:
            console.print(f"turn: {data.get('turn')}", markup=False)
            if data.get("error"):
                console.print(f"error: {_show(data['error'])}", markup=False, soft_wrap=True)

    _run(lambda: _with_orchestrator(address, namespace, action))


async def _print_outcome(orchestrator: Orchestrator, task_id: str) -> None:
    """Print an ended task's output or error; read from its history, so no worker is needed."""
    try:
        output = await orchestrator.get_task_result(task_id)
    except TaskFailedError as err:
        console.print(f"error: {err.error}", markup=False, soft_wrap=True)
    except TaskCancelledError:
        pass
    else:
        console.print(f"output: {_show(output)}", markup=False, soft_wrap=True)


@task_app.command("cancel")
def task_cancel(
    task_id: Annotated[str, typer.Argument(metavar="ID", help="The task id.")],
    address: AddressOption = None,
    namespace: NamespaceOption = None,
) -> None:
    """Cancel a task (does nothing if it already ended)."""

    async def action(orchestrator: Orchestrator) -> None:
        await orchestrator.cancel_task(task_id)
        console.print(f"cancellation requested for {task_id}", markup=False)

    _run(lambda: _with_orchestrator(address, namespace, action))


@task_app.command("steer")
def task_steer(
    task_id: Annotated[str, typer.Argument(metavar="ID", help="The task id.")],
    message: Annotated[str, typer.Argument(help="A user message to add at the next turn.")],
    address: AddressOption = None,
    namespace: NamespaceOption = None,
    timeout: TimeoutOption = 30.0,
) -> None:
    """Add a user message to a running task's conversation."""

    async def action(orchestrator: Orchestrator) -> None:
        try:
            await asyncio.wait_for(
                orchestrator.steer_task(task_id, [{"role": "user", "content": message}]),
                timeout,
            )
        except (TimeoutError, RPCTimeoutOrCancelledError):
            raise CliError(
                f"no worker took the message within {timeout:g}s; is a worker for the task's "
                "agent running? (the message may still be applied when one picks the task up)"
            ) from None
        console.print(f"message queued for {task_id}; it applies at the next turn", markup=False)

    _run(lambda: _with_orchestrator(address, namespace, action))


# -- batch ----------------------------------------------------------------------------------


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

    _run(lambda: _with_orchestrator(address, namespace, action))


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

    _run(lambda: _with_orchestrator(address, namespace, action))


# -- events ---------------------------------------------------------------------------------


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
            _fail(f"invalid --pattern {pattern!r}: {err}")

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

    _run(lambda: _with_orchestrator(address, namespace, action))


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
    if not _used_temporal:
        sys.exit(code)
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(code)
