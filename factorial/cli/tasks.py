"""``factorial task status|cancel|steer``."""

from __future__ import annotations

import asyncio
from typing import Annotated

import typer
from temporalio.client import RPCTimeoutOrCancelledError
from temporalio.service import RPCError

from factorial.cli._common import (
    AddressOption,
    CliError,
    NamespaceOption,
    TimeoutOption,
    console,
    run,
    show,
    task_app,
    with_orchestrator,
)
from factorial.errors import (
    TaskCancelledError,
    TaskFailedError,
)
from factorial.orchestrator import Orchestrator


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
                console.print(f"error: {show(data['error'])}", markup=False, soft_wrap=True)

    run(lambda: with_orchestrator(address, namespace, action))


async def _print_outcome(orchestrator: Orchestrator, task_id: str) -> None:
    """Print an ended task's output or error; read from its history, so no worker is needed."""
    try:
        output = await orchestrator.get_task_result(task_id)
    except TaskFailedError as err:
        console.print(f"error: {err.error}", markup=False, soft_wrap=True)
    except TaskCancelledError:
        pass
    else:
        console.print(f"output: {show(output)}", markup=False, soft_wrap=True)


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

    run(lambda: with_orchestrator(address, namespace, action))


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

    run(lambda: with_orchestrator(address, namespace, action))


# -- batch ----------------------------------------------------------------------------------
