"""``factorial task status|cancel|steer|complete-tool``.

A command that acts on a task that has already ended (cancel, steer, complete-tool) says so
and exits with ``ExitCode.ENDED`` (3).
"""

from __future__ import annotations

import asyncio
import json
from typing import Annotated, Any

import typer
from temporalio.client import RPCTimeoutOrCancelledError
from temporalio.service import RPCError

from factorial.cli._common import (
    AddressOption,
    CliError,
    ExitCode,
    JsonOption,
    NamespaceOption,
    TimeoutOption,
    console,
    print_fields,
    print_json,
    run,
    task_app,
    with_orchestrator,
)
from factorial.errors import (
    TaskCancelledError,
    TaskFailedError,
    TaskNotFoundError,
    TaskStateError,
)
from factorial.orchestrator import Orchestrator
from factorial.task import TaskStatus

#: Seconds ``task status`` gives a worker to answer its query before it answers without one.
QUERY_GRACE = 0.5

IdArgument = Annotated[str, typer.Argument(metavar="ID", help="The task id.")]


async def task_report(orchestrator: Orchestrator, task_id: str, grace: float) -> dict[str, Any]:
    """Everything ``task status`` shows: the server's record, then what a worker adds.

    A running task's turn, status and pending tool calls come from its query, if a worker
    answers within ``grace`` seconds; an ended task's output or error comes from its history.
    """
    try:
        info = await orchestrator.get_task_info(task_id)
    except TaskNotFoundError:
        # A batch's task not started yet has no workflow: its batch tells its status.
        status = await orchestrator.get_task_status(task_id)
        return {"id": task_id, "status": status.value, "worker_answered": False}
    report: dict[str, Any] = info.model_dump(mode="json")
    report["worker_answered"] = False
    if info.status.is_terminal:
        try:
            report["output"] = await orchestrator.get_task_result(task_id)
        except TaskFailedError as err:
            report["error"] = err.error
        except TaskCancelledError:
            pass
        return report
    try:
        data = await asyncio.wait_for(orchestrator.get_task_data(task_id), grace)
    except (TimeoutError, RPCError, RPCTimeoutOrCancelledError):
        data = None
    if data is not None:
        report["worker_answered"] = True
        if info.status != TaskStatus.BACKOFF:  # the query says processing: a turn's retry waits
            report["status"] = data.get("status", report["status"])
        report["turn"] = data.get("turn")
        report["pending_tool_call_ids"] = data.get("pending_tool_call_ids") or []
        if data.get("error"):
            report["error"] = data["error"]
    return report


@task_app.command("status")
def task_status(
    task_id: IdArgument,
    json_: JsonOption = False,
    address: AddressOption = None,
    namespace: NamespaceOption = None,
    grace: Annotated[
        float,
        typer.Option(min=0.0, help="Seconds a worker has to add a running task's details."),
    ] = QUERY_GRACE,
) -> None:
    """Print a task's status, ids, timing, attempt, and its output or error (no worker needed)."""

    async def action(orchestrator: Orchestrator) -> None:
        report = await task_report(orchestrator, task_id, grace)
        if json_:
            print_json(report)
            return
        pending = report.get("pending_tool_call_ids")
        print_fields(
            [
                ("task", report["id"]),
                ("status", report["status"]),
                ("agent", report.get("agent")),
                ("owner", report.get("owner_id")),
                ("batch", report.get("batch_id")),
                ("parent task", report.get("parent_task_id")),
                ("started", report.get("started_at")),
                ("ended", report.get("closed_at")),
                ("attempt", report.get("attempt")),
                ("turn", report.get("turn")),
                ("pending tool calls", ", ".join(pending) if pending else None),
                ("output", report.get("output")),
                ("error", report.get("error")),
            ]
        )
        if not report["worker_answered"] and not TaskStatus(report["status"]).is_terminal:
            console.print(
                "(no worker answered: turn and pending tool calls unknown; "
                "is a worker for its agent running?)",
                markup=False,
            )

    run(lambda: with_orchestrator(address, namespace, action))


async def _refuse_if_ended(orchestrator: Orchestrator, task_id: str) -> None:
    """Raise the "already ended" error (exit code 3) if the task has ended."""
    status = (await orchestrator.get_task_info(task_id)).status
    if status.is_terminal:
        raise _ended_error(task_id, status)


def _ended_error(task_id: str, status: TaskStatus) -> CliError:
    return CliError(f"task {task_id} has already ended ({status.value})", ExitCode.ENDED)


@task_app.command("cancel")
def task_cancel(
    task_id: IdArgument,
    address: AddressOption = None,
    namespace: NamespaceOption = None,
) -> None:
    """Cancel a running task (exit code 3 if it has already ended)."""

    async def action(orchestrator: Orchestrator) -> None:
        if not await orchestrator.cancel_task(task_id):
            await _refuse_if_ended(orchestrator, task_id)
            raise _ended_error(task_id, TaskStatus.CANCELLED)
        console.print(f"cancellation requested for {task_id}", markup=False)

    run(lambda: with_orchestrator(address, namespace, action))


@task_app.command("steer")
def task_steer(
    task_id: IdArgument,
    message: Annotated[str, typer.Argument(help="A user message to add at the next turn.")],
    address: AddressOption = None,
    namespace: NamespaceOption = None,
    timeout: TimeoutOption = 30.0,
) -> None:
    """Add a user message to a running task's conversation (exit code 3 if it has ended)."""

    async def action(orchestrator: Orchestrator) -> None:
        await _refuse_if_ended(orchestrator, task_id)
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
        except TaskStateError:
            await _refuse_if_ended(orchestrator, task_id)  # it ended meanwhile
            raise
        console.print(f"message queued for {task_id}; it applies at the next turn", markup=False)

    run(lambda: with_orchestrator(address, namespace, action))


def _parse_result(text: str) -> Any:
    """A tool result given on the command line: JSON if it parses as JSON, else the text."""
    try:
        return json.loads(text)
    except ValueError:
        return text


@task_app.command("complete-tool")
def task_complete_tool(
    task_id: IdArgument,
    call_id: Annotated[str, typer.Argument(metavar="CALL_ID", help="The deferred tool call id.")],
    result: Annotated[
        str, typer.Argument(metavar="RESULT", help="The tool's result: JSON, or else text.")
    ],
    address: AddressOption = None,
    namespace: NamespaceOption = None,
    timeout: TimeoutOption = 30.0,
) -> None:
    """Deliver a deferred tool's result to a task waiting for it (exit code 3 if it ended)."""

    async def action(orchestrator: Orchestrator) -> None:
        await _refuse_if_ended(orchestrator, task_id)
        try:
            accepted = await asyncio.wait_for(
                orchestrator.complete_deferred_tool(task_id, call_id, _parse_result(result)),
                timeout,
            )
        except (TimeoutError, RPCTimeoutOrCancelledError):
            raise CliError(
                f"no worker took the result within {timeout:g}s; is a worker for the task's "
                "agent running?"
            ) from None
        if not accepted:
            await _refuse_if_ended(orchestrator, task_id)
            report = await task_report(orchestrator, task_id, QUERY_GRACE)
            pending = ", ".join(report.get("pending_tool_call_ids") or []) or "none"
            raise CliError(
                f"task {task_id} is not waiting for tool call {call_id!r} (pending: {pending})"
            )
        console.print(f"result of {call_id} delivered to {task_id}", markup=False)

    run(lambda: with_orchestrator(address, namespace, action))
