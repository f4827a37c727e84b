"""``factorial dev``, ``factorial worker`` and ``factorial demo``: servers and workers."""

from __future__ import annotations

import importlib
import logging
import os
import signal
import sys
import time
from collections.abc import Awaitable
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer

from factorial._connection import check_metrics_address
from factorial._health import HEALTH_PATH, PORT_ENV, HealthServer
from factorial._logging import configure_worker_logging
from factorial.cli._common import (
    AddressOption,
    CliError,
    NamespaceOption,
    app,
    check_reachable,
    console,
    fail,
    message,
    run,
)
from factorial.devserver import DEFAULT_STATE_DIR, DevServer, is_listening
from factorial.errors import (
    FactorialError,
)
from factorial.orchestrator import Orchestrator

_log = logging.getLogger("factorial.worker")

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
        fail(f"something already listens at {address}; pick another --port")
    server = DevServer(port=port, ui_port=ui_port, db_filename=db_filename, ip=ip)
    try:
        server.start()
    except FactorialError as err:
        fail(message(err))
    console.print(f"Temporal dev server at [bold]{server.address}[/bold]")
    console.print(f"Web UI: [bold]{server.ui_url}[/bold]")
    console.print(f"State: {db_filename}   (Ctrl-C to stop)")
    signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        while is_listening(server.address):
            time.sleep(1.0)
        fail(f"the Temporal dev server at {server.address} stopped unexpectedly")
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
        raise CliError(f"cannot import {module_name!r}: {message(err)}") from None
    except FactorialError:
        raise
    except Exception as err:
        raise CliError(
            f"cannot import {module_name!r}: {type(err).__name__}: {message(err)}"
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


async def _serve(orchestrator: Orchestrator, health: HealthServer | None = None) -> None:
    try:
        if getattr(orchestrator, "_client", None) is None:
            check_reachable(orchestrator.temporal_address)
        await orchestrator.start_workers()
        names = ", ".join(agent.name for agent in orchestrator.agents) or "(no agents)"
        health_note = f"; health check on port {health.port}" if health else ""
        console.print(
            f"Worker running agents {names} on {orchestrator.temporal_address} "
            f"(namespace {orchestrator.namespace}){health_note}; Ctrl-C to stop.",
            soft_wrap=True,
        )
        sandbox = "in the sandbox" if orchestrator.sandboxed_workflows else "unsandboxed"
        _log.info("workflows run %s", sandbox)
        for agent in orchestrator.agents:
            config = orchestrator._config_of(agent)
            _log.info(
                "agent %s: max_concurrent_turns=%d, max_concurrent_tasks=%d",
                agent.name,
                config.max_concurrent_turns,
                config.max_concurrent_tasks,
            )
        await orchestrator.serve()
    finally:
        await orchestrator.close()


class LogLevel(StrEnum):
    """The worker's log levels."""

    DEBUG = "DEBUG"
    INFO = "INFO"
    WARNING = "WARNING"
    ERROR = "ERROR"


@app.command()
def worker(
    target: Annotated[
        str, typer.Argument(metavar="MODULE:ATTR", help="Where the Orchestrator is.")
    ],
    address: AddressOption = None,
    namespace: NamespaceOption = None,
    log_level: Annotated[
        LogLevel,
        typer.Option(
            case_sensitive=False,
            envvar="FACTORIAL_LOG_LEVEL",
            help="INFO: a line per task start and end and per failed turn attempt; "
            "DEBUG adds the failures' tracebacks.",
        ),
    ] = LogLevel.INFO,
    max_concurrent_turns: Annotated[
        int | None,
        typer.Option(
            min=1,
            help="Turns this process runs at once, per agent "
            "(overrides AgentWorkerConfig.max_concurrent_turns).",
            show_default=False,
        ),
    ] = None,
    max_concurrent_tasks: Annotated[
        int | None,
        typer.Option(
            min=1,
            help="Task workflow activations this process runs at once, per agent "
            "(overrides AgentWorkerConfig.max_concurrent_tasks).",
            show_default=False,
        ),
    ] = None,
    health_port: Annotated[
        int | None,
        typer.Option(
            min=0,
            max=65535,
            envvar=PORT_ENV,
            help=f"Serve GET {HEALTH_PATH} on this port: 200 while the workers run, else 503.",
            show_default=False,
        ),
    ] = None,
    health_host: Annotated[
        str, typer.Option(help="Address the health check binds (0.0.0.0 for outside probes).")
    ] = "127.0.0.1",
    metrics_port: Annotated[
        int | None,
        typer.Option(
            min=1,
            max=65535,
            envvar="FACTORIAL_METRICS_PORT",
            help="Serve Prometheus metrics (Temporal's and Factorial's) on this port.",
            show_default=False,
        ),
    ] = None,
    metrics_host: Annotated[
        str,
        typer.Option(
            envvar="FACTORIAL_METRICS_HOST",
            help="Address the metrics endpoint binds (0.0.0.0 in a container).",
        ),
    ] = "127.0.0.1",
    unsandboxed: Annotated[
        bool,
        typer.Option(
            "--unsandboxed",
            help="Run workflows outside the Temporal SDK's sandbox: about a quarter less worker "
            "CPU a task, but a workflow that reads the clock or does I/O is no longer stopped "
            "(README: The workflow sandbox).",
        ),
    ] = False,
) -> None:
    """Run the workers of the agents registered on an Orchestrator until Ctrl-C."""
    configure_worker_logging(log_level.value)
    try:
        orchestrator = load_orchestrator(target)
        limits = {"max_concurrent_turns": max_concurrent_turns}
        limits["max_concurrent_tasks"] = max_concurrent_tasks
        orchestrator.update_worker_configs(**{k: v for k, v in limits.items() if v is not None})
        if unsandboxed:
            orchestrator.sandboxed_workflows = False
        if metrics_port is not None:
            _serve_metrics(orchestrator, f"{metrics_host}:{metrics_port}")
    except (CliError, FactorialError) as err:
        fail(message(err))
    if address:
        orchestrator.temporal_address = address
    if namespace:
        orchestrator.namespace = namespace
    health = None
    if health_port is not None:
        health = HealthServer(lambda: orchestrator.workers_running, health_port, health_host)
        try:
            health.start()
        except OSError as err:
            fail(f"cannot serve the health check on {health_host}:{health_port}: {err}")
    try:
        run(lambda: _serve(orchestrator, health))
    finally:
        if health is not None:
            health.stop()
    console.print("Worker stopped.")


def _serve_metrics(orchestrator: Orchestrator, address: str) -> None:
    if getattr(orchestrator, "_client", None) is not None:
        raise CliError(
            "--metrics-port needs the Orchestrator to connect itself; "
            "it was given a Temporal client"
        )
    orchestrator.metrics_address = check_metrics_address(address)


# -- demo -----------------------------------------------------------------------------------


@app.command()
def demo(
    address: Annotated[
        str | None,
        typer.Option(
            envvar="TEMPORAL_ADDRESS",
            help="Temporal frontend host:port; by default a local dev server (started if needed).",
            show_default=False,
        ),
    ] = None,
    namespace: NamespaceOption = None,
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
    from factorial.cli.demo import run_demo

    finished = run(
        lambda: _completed(
            run_demo(address, tasks=tasks, model_name=model, namespace=namespace or "default")
        )
    )
    if not finished:
        typer.echo("Interrupted.", err=True)
        raise typer.Exit(130)


async def _completed(work: Awaitable[Any]) -> bool:
    await work
    return True
