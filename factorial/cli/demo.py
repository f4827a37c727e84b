"""``factorial demo``: one batch of research tasks on Temporal, with a live progress bar.

The example application (``factorial.example_app``) runs in this process: each research task
fans out to search sub-agents, and the batch's ``batch_progress`` events drive the bar.
Without ``OPENAI_API_KEY`` both agents run on scripted models (deterministic, no network),
so the demo shows the whole machinery on any machine. Ctrl-C cancels the batch cleanly.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from rich.console import Console
from rich.progress import (
    BarColumn,
    Progress,
    TaskID,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table
from rich.text import Text

from factorial import events as ev
from factorial.context import AgentContext
from factorial.devserver import DEFAULT_STATE_DIR, DevServer, free_port, is_listening
from factorial.errors import TemporalUnavailableError, UserError
from factorial.example_app import RESEARCH_AGENT, ExampleModels, build_agents, build_models
from factorial.orchestrator import Orchestrator
from factorial.task import Batch

OWNER_ID = "demo-user"
DEFAULT_ADDRESS = "127.0.0.1:7233"
DEFAULT_UI_PORT = 8233
SCRIPTED_NOTICE = "No OPENAI_API_KEY: using the scripted model (deterministic, no network)"

QUERIES = (
    "What is Temporal and why use it for AI agents?",
    "How do durable workflows survive a worker crash?",
    "What is the difference between a workflow and an activity?",
    "How should an agent retry a rate-limited model call?",
    "Why stream agent events to the user while a task runs?",
)

#: Seconds to wait for a cancelled batch to wind down (its tasks and their sub-agents).
_CANCEL_TIMEOUT = 60.0

_BATCH_EVENTS = (ev.BATCH_PROGRESS, ev.BATCH_COMPLETED, ev.BATCH_CANCELLED)
_TASK_ENDS = (ev.RUN_COMPLETED, ev.RUN_FAILED, ev.RUN_CANCELLED)
_WATCHED = [*_BATCH_EVENTS, *_TASK_ENDS, ev.AGENT_OUTPUT]
_END_STYLE = {
    ev.RUN_COMPLETED: ("✓", "bold green"),
    ev.RUN_FAILED: ("✗", "bold red"),
    ev.RUN_CANCELLED: ("■", "bold yellow"),
}


def queries_for(tasks: int) -> list[str]:
    """``tasks`` different research questions."""
    queries = []
    for i in range(tasks):
        query = QUERIES[i % len(QUERIES)]
        if i >= len(QUERIES):
            query = f"{query.rstrip('?')} (variant {i // len(QUERIES) + 1})?"
        queries.append(query)
    return queries


def _clip(value: Any, limit: int = 80) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def short_task_id(task_id: str) -> str:
    """``batch-1a2b3c4d…-0`` for a batch task id (the index stays readable)."""
    head, sep, index = task_id.rpartition("-")
    if not sep or not head.startswith("batch-") or len(head) <= 14:
        return task_id
    return f"{head[:14]}…-{index}"


def batch_ui_url(ui_url: str, namespace: str, batch_id: str) -> str:
    """The Web UI's workflow list filtered to one batch (the batch, its leaves, its tasks)."""
    query = quote(f'FactorialBatchId="{batch_id}"', safe="")
    return f"{ui_url}/namespaces/{namespace}/workflows?query={query}"


def _announce_model(models: ExampleModels, model_name: str | None, console: Console) -> None:
    if models.note:
        console.print(models.note, soft_wrap=True)
    if models.scripted:
        console.print(SCRIPTED_NOTICE, soft_wrap=True)
    else:
        console.print(f"Using model {model_name} for both agents (its API key is set).")


# -- the server -----------------------------------------------------------------------------


async def _is_temporal(address: str) -> bool:
    """True if a Temporal frontend answers at ``address`` within a few seconds."""
    probe = Orchestrator(temporal_address=address)
    try:
        await asyncio.wait_for(probe.client(), 10)
        return True
    except (TimeoutError, TemporalUnavailableError, OSError, RuntimeError):
        return False
    finally:
        await probe.close()


@dataclass
class _Server:
    address: str
    ui_url: str | None = None
    #: True when the UI is only assumed to run at ``ui_url`` (a server we did not start).
    ui_assumed: bool = False
    started: DevServer | None = None


async def _start(server: DevServer) -> None:
    """Start ``server``; if interrupted meanwhile, let the start finish, stop it, re-raise."""
    start = asyncio.ensure_future(asyncio.to_thread(server.start))
    try:
        await asyncio.shield(start)
    except asyncio.CancelledError:
        with contextlib.suppress(Exception):
            await start
        await asyncio.to_thread(server.stop)
        raise


async def _local_server(console: Console) -> _Server:
    """Use the Temporal server on 7233 if there is one, else start a dev server."""
    if is_listening(DEFAULT_ADDRESS):
        if await _is_temporal(DEFAULT_ADDRESS):
            return _Server(DEFAULT_ADDRESS, f"http://127.0.0.1:{DEFAULT_UI_PORT}", ui_assumed=True)
        console.print(f"{DEFAULT_ADDRESS} is busy and is not Temporal: using free ports.")
        port: int | None = None
        ui_port = free_port()
    else:
        port = 7233
        ui_port = (
            DEFAULT_UI_PORT if not is_listening(f"127.0.0.1:{DEFAULT_UI_PORT}") else free_port()
        )
    server = DevServer(
        port=port,
        ui_port=ui_port,
        db_filename=DEFAULT_STATE_DIR / "demo.db",
        log_file=DEFAULT_STATE_DIR / "demo-server.log",
    )
    console.print(f"Starting a Temporal dev server on {server.address} ...")
    await _start(server)
    return _Server(server.address, server.ui_url, started=server)


def _given_server(address: str) -> _Server:
    if not is_listening(address):
        raise TemporalUnavailableError(f"no Temporal server at {address} (nothing listens)")
    host, _, port = address.rpartition(":")
    if port == "7233":
        return _Server(address, f"http://{host}:{DEFAULT_UI_PORT}", ui_assumed=True)
    return _Server(address)


# -- following the batch ------------------------------------------------------------------------


@dataclass
class _Watch:
    """What the demo has seen of its batch so far."""

    batch: Batch
    last_offset: int | None = None
    outputs: dict[str, Any] = field(default_factory=dict)
    ended: dict[str, str] = field(default_factory=dict)
    final: dict[str, Any] | None = None

    @property
    def max_turns(self) -> int:
        return self.batch.metadata.max_progress


class _BatchView:
    """A live progress bar on a terminal; one plain line per update otherwise."""

    def __init__(self, console: Console, watch: _Watch) -> None:
        self.console = console
        self.watch = watch
        self.live = console.is_terminal and not console.is_dumb_terminal
        self._bar: TaskID | None = None
        self._progress = Progress(
            TextColumn("[bold]batch"),
            BarColumn(),
            TaskProgressColumn(),
            TextColumn("{task.fields[tasks]}"),
            TextColumn("{task.fields[turns]}"),
            TimeElapsedColumn(),
            console=console,
        )
        self._last_line: str | None = None

    def __enter__(self) -> _BatchView:
        if self.live:
            self._progress.start()
            self._bar = self._progress.add_task(
                "batch", total=100, tasks=self._tasks_text(0), turns=self._turns_text(0.0)
            )
        return self

    def __exit__(self, *exc: object) -> None:
        if self.live:
            self._progress.stop()

    def _tasks_text(self, done: int) -> str:
        return f"{done}/{self.watch.batch.metadata.total_tasks} tasks"

    def _turns_text(self, progress: float) -> str:
        turns = round(progress * self.watch.max_turns / 100)
        return f"{turns}/{self.watch.max_turns} turns"

    def batch_event(self, event: dict[str, Any]) -> None:
        progress = float(event.get("progress") or 0.0)
        done = int(event.get("completed_tasks") or 0)
        if self.live and self._bar is not None:
            self._progress.update(
                self._bar,
                completed=progress,
                tasks=self._tasks_text(done),
                turns=self._turns_text(progress),
            )
        kind = event["event_type"]
        line = (
            f"{kind:<16} {progress:5.1f}%  {self._tasks_text(done)}, {self._turns_text(progress)}"
        )
        if kind != ev.BATCH_PROGRESS:
            self.console.print(Text(line, style="bold"))
        elif not self.live and line != self._last_line:
            self.console.print(line)
        self._last_line = line

    def task_ended(self, task_id: str, kind: str, detail: Any) -> None:
        mark, style = _END_STYLE.get(kind, ("·", ""))
        line = Text(no_wrap=True, overflow="ellipsis")
        line.append(f"{mark} ", style=style)
        line.append(f"{short_task_id(task_id)} ", style="magenta")
        line.append(f"{kind:<14}", style=style)
        if detail:
            line.append(f" {_clip(detail, 70)}")
        self.console.print(line)


async def _follow(orchestrator: Orchestrator, watch: _Watch, view: _BatchView) -> None:
    """Show the batch's progress and its tasks' ends until the batch ends."""
    top = set(watch.batch.task_ids)
    start = None if watch.last_offset is None else watch.last_offset + 1
    async for event in orchestrator.subscribe_to_updates(
        OWNER_ID, event_types=_WATCHED, from_offset=start
    ):
        watch.last_offset = event["offset"]
        kind = event["event_type"]
        if kind in _BATCH_EVENTS:
            if event.get("batch_id") != watch.batch.id or event.get("parent_task_id"):
                continue  # another batch, or a research task's sub-agent batch
            view.batch_event(event)
            if kind != ev.BATCH_PROGRESS:
                watch.final = event
                return
            continue
        task_id = event.get("task_id")
        if task_id not in top:
            continue
        if kind == ev.AGENT_OUTPUT:
            watch.outputs[task_id] = event.get("data")
        elif task_id not in watch.ended:
            watch.ended[task_id] = kind
            detail = watch.outputs.get(task_id) if kind == ev.RUN_COMPLETED else event.get("error")
            view.task_ended(task_id, kind, detail)


async def _results(orchestrator: Orchestrator, batch: Batch, console: Console) -> None:
    """A table of the batch's tasks: status and the start of the output (or error)."""
    table = Table(title=f"Batch {batch.id}")
    table.add_column("task id", no_wrap=True)
    table.add_column("status", no_wrap=True)
    table.add_column("output", overflow="fold")
    for task_id in batch.task_ids:
        try:
            data = await asyncio.wait_for(orchestrator.get_task_data(task_id), 15) or {}
        except Exception as err:  # noqa: BLE001 - one unreadable task must not hide the rest
            data = {"status": "?", "error": f"{type(err).__name__}: {err}"}
        output = data.get("output") if data.get("output") is not None else data.get("error")
        table.add_row(short_task_id(task_id), str(data.get("status", "?")), _clip(output or ""))
    console.print(table)


async def _cancel(
    orchestrator: Orchestrator, watch: _Watch, view: _BatchView, console: Console
) -> None:
    """Cancel the batch, wait until it has ended, and show how it ended."""
    batch = watch.batch
    console.print(Text(f"Interrupted: cancelling batch {batch.id} ...", style="bold yellow"))
    try:
        ended = await asyncio.wait_for(orchestrator.cancel_batch(batch.id), _CANCEL_TIMEOUT)
    except Exception as err:  # noqa: BLE001 - report and still stop cleanly
        console.print(f"Could not cancel batch {batch.id}: {type(err).__name__}: {err}")
        return
    if watch.final is None:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(_follow(orchestrator, watch, view), 15)
    status = ended.metadata.status
    console.print(
        Text(
            f"Batch {batch.id}: {status} (progress {ended.progress:g}%, "
            f"{len(batch.task_ids) - len(ended.remaining_task_ids)}/{len(batch.task_ids)} "
            "tasks ended)",
            style="bold yellow",
        )
    )
    with contextlib.suppress(Exception):
        await asyncio.wait_for(_results(orchestrator, batch, console), 60)


def _footer(server: _Server, namespace: str, batch: Batch, console: Console) -> None:
    console.print(
        f"Inspect it: factorial batch status {batch.id} --address {server.address}",
        soft_wrap=True,
    )
    if server.ui_url:
        hedge = " (if its Web UI runs there)" if server.ui_assumed else ""
        console.print(
            f"Web UI{hedge}: {batch_ui_url(server.ui_url, namespace, batch.id)}", soft_wrap=True
        )


# -- the demo -------------------------------------------------------------------------------------


async def run_demo(address: str | None, tasks: int = 5, model_name: str | None = None) -> None:
    """Run one batch of ``tasks`` research tasks with a live progress bar, then a results table.

    Args:
        address: Temporal frontend ``host:port``; None uses (or starts) a local dev server.
        tasks: How many research tasks the batch has.
        model_name: A catalog model (e.g. ``gpt-4.1-mini``), used if its API key is set.

    Raises:
        UserError: Unknown model name or a bad task count.
        TemporalUnavailableError: No Temporal server at ``address``.
        asyncio.CancelledError: Interrupted; the batch was cancelled first.
    """
    console = Console(highlight=False)
    if tasks < 1:
        raise UserError("--tasks must be at least 1")
    models = build_models(model_name)
    _announce_model(models, model_name, console)
    server = await _local_server(console) if address is None else _given_server(address)
    orchestrator = Orchestrator(temporal_address=server.address)
    try:
        research, search = build_agents(models)
        orchestrator.register_runner(agent=research)
        orchestrator.register_runner(agent=search)
        await orchestrator.start_workers()
        console.print(
            f"Workers for {research.name} and {search.name} run in this process "
            f"against {server.address}.",
            soft_wrap=True,
        )
        batch = await orchestrator.enqueue_batch(
            research, OWNER_ID, [AgentContext(query=q) for q in queries_for(tasks)]
        )
        console.print(
            Text(
                f"Enqueued batch {batch.id}: {tasks} {RESEARCH_AGENT} tasks for {OWNER_ID} "
                f"(each fans out to search sub-agents; up to {batch.metadata.max_progress} turns)",
                style="bold",
            ),
            soft_wrap=True,
        )
        watch = _Watch(batch)
        view = _BatchView(console, watch)
        try:
            with view:
                await _follow(orchestrator, watch, view)
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if current is not None:
                current.uncancel()  # let the clean-up below await normally
            await _cancel(orchestrator, watch, view, console)
            _footer(server, orchestrator.namespace, batch, console)
            raise
        await _results(orchestrator, batch, console)
        _footer(server, orchestrator.namespace, batch, console)
    finally:
        try:
            await orchestrator.close()
        finally:
            if server.started is not None:
                console.print("Stopping the dev server we started.")
                server.started.stop()
