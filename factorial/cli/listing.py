"""``factorial task list`` and ``factorial batch list``: find work by owner, agent, status, batch.

Both read Temporal's visibility (Factorial's search attributes), so no worker is needed; a
listing lags the workflows by about a second.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from factorial._ops_api import DEFAULT_LIMIT
from factorial.cli._common import (
    AddressOption,
    JsonOption,
    NamespaceOption,
    batch_app,
    console,
    print_json,
    run,
    task_app,
    with_orchestrator,
)
from factorial.orchestrator import Orchestrator

OwnerFilter = Annotated[str | None, typer.Option("--owner", help="Only this owner's.")]
AgentFilter = Annotated[str | None, typer.Option("--agent", help="Only this agent's.")]
LimitOption = Annotated[int, typer.Option("--limit", min=1, help="At most this many rows.")]


def _when(value: Any) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S") if value is not None else ""


def _print_table(columns: list[str], rows: list[list[str]], empty: str) -> None:
    if not rows:
        console.print(empty, markup=False)
        return
    table = Table(*columns, box=None, pad_edge=False)
    for row in rows:
        table.add_row(*row)
    # Ids are never cut or wrapped: a narrow terminal gets wide lines, copyable whole.
    natural = sum(max(len(c), *(len(r[i]) for r in rows)) + 2 for i, c in enumerate(columns))
    wide = Console(highlight=False, width=max(console.width, natural), soft_wrap=True)
    wide.print(table)


@task_app.command("list")
def task_list(
    owner: OwnerFilter = None,
    agent: AgentFilter = None,
    status: Annotated[
        str | None,
        typer.Option(
            "--status",
            help="Only tasks in this status: active, pending_tool_results, "
            "pending_child_tasks, completed, failed, cancelled.",
        ),
    ] = None,
    batch: Annotated[str | None, typer.Option("--batch", help="Only this batch's.")] = None,
    parent: Annotated[
        str | None, typer.Option("--parent", help="Only the sub-agent tasks of this task.")
    ] = None,
    limit: LimitOption = DEFAULT_LIMIT,
    json_: JsonOption = False,
    address: AddressOption = None,
    namespace: NamespaceOption = None,
) -> None:
    """List tasks, newest first (no worker needed)."""

    async def action(orchestrator: Orchestrator) -> None:
        tasks = await orchestrator.list_tasks(
            owner_id=owner,
            agent=agent,
            status=status,
            batch_id=batch,
            parent_task_id=parent,
            limit=limit,
        )
        if json_:
            print_json(tasks)
            return
        rows = [
            [t.id, t.status.value, t.agent or "", t.owner_id or "", _when(t.started_at)]
            for t in tasks
        ]
        _print_table(["TASK", "STATUS", "AGENT", "OWNER", "STARTED"], rows, "no tasks found")

    run(lambda: with_orchestrator(address, namespace, action))


@batch_app.command("list")
def batch_list(
    owner: OwnerFilter = None,
    agent: AgentFilter = None,
    status: Annotated[
        str | None,
        typer.Option(
            "--status", help="Only batches in this status: active, completed, failed, cancelled."
        ),
    ] = None,
    limit: LimitOption = DEFAULT_LIMIT,
    json_: JsonOption = False,
    address: AddressOption = None,
    namespace: NamespaceOption = None,
) -> None:
    """List batches, newest first (no worker needed)."""

    async def action(orchestrator: Orchestrator) -> None:
        batches = await orchestrator.list_batches(
            owner_id=owner, agent=agent, status=status, limit=limit
        )
        if json_:
            print_json(batches)
            return
        rows = [
            [b.id, b.status, b.agent or "", b.owner_id or "", _when(b.started_at), b.retry_of or ""]
            for b in batches
        ]
        columns = ["BATCH", "STATUS", "AGENT", "OWNER", "STARTED", "RETRY OF"]
        _print_table(columns, rows, "no batches found")

    run(lambda: with_orchestrator(address, namespace, action))
