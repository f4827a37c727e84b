"""``factorial demo``: one batch of research tasks on Temporal, with a live progress bar.

The example application (``factorial.example_app``) runs in this process: each research task
fans out to search sub-agents, and the batch's ``batch_progress`` events drive the bar.
Without ``OPENAI_API_KEY`` both agents run on scripted models (deterministic, no network),
so the demo shows the whole machinery on any machine. Ctrl-C cancels the batch cleanly.
"""

from __future__ import annotations

import asyncio
import contextlib
from urllib.parse import quote

from rich.console import Console
from rich.table import Table
from rich.text import Text

from factorial import events as ev
from factorial.cli._demo_server import Server, given_server, local_server
from factorial.cli._demo_view import BatchView, Watch, clip, short_task_id
from factorial.context import AgentContext
from factorial.errors import UserError
from factorial.example_app import RESEARCH_AGENT, ExampleModels, build_agents, build_models
from factorial.orchestrator import Orchestrator
from factorial.task import Batch

OWNER_ID = "demo-user"
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


def queries_for(tasks: int) -> list[str]:
    """``tasks`` different research questions."""
    queries = []
    for i in range(tasks):
        query = QUERIES[i % len(QUERIES)]
        if i >= len(QUERIES):
            query = f"{query.rstrip('?')} (variant {i // len(QUERIES) + 1})?"
        queries.append(query)
    return queries


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


# -- following the batch ------------------------------------------------------------------------


async def _follow(orchestrator: Orchestrator, watch: Watch, view: BatchView) -> None:
    """Show the batch's progress and its tasks' ends until the batch ends."""
    top = set(watch.batch.task_ids)
    start = None if watch.last_offset is None else watch.last_offset + 1
    async for event in orchestrator.subscribe_to_updates(
        OWNER_ID, event_types=_WATCHED, from_offset=start
    ):
        watch.last_offset = event["offset"]
        kind = event["event_type"]
        if kind in _BATCH_EVENTS:
            if event.get("parent_task_id") in top:
                view.sub_batch_event(event)  # a research task's sub-agents moved the bar
                continue
            if event.get("batch_id") != watch.batch.id or event.get("parent_task_id"):
                continue  # another batch, or a deeper sub-agent batch
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
        table.add_row(short_task_id(task_id), str(data.get("status", "?")), clip(output or ""))
    console.print(table)


async def _cancel(
    orchestrator: Orchestrator, watch: Watch, view: BatchView, console: Console
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


def _footer(server: Server, namespace: str, batch: Batch, console: Console) -> None:
    where = f"--address {server.address}"
    if namespace != "default":
        where += f" --namespace {namespace}"
    console.print(f"Inspect it: factorial batch status {batch.id} {where}", soft_wrap=True)
    if server.ui_url:
        hedge = " (if its Web UI runs there)" if server.ui_assumed else ""
        console.print(
            f"Web UI{hedge}: {batch_ui_url(server.ui_url, namespace, batch.id)}", soft_wrap=True
        )


# -- the demo -------------------------------------------------------------------------------------


async def run_demo(
    address: str | None,
    tasks: int = 5,
    model_name: str | None = None,
    namespace: str = "default",
) -> None:
    """Run one batch of ``tasks`` research tasks with a live progress bar, then a results table.

    Args:
        address: Temporal frontend ``host:port``; None uses (or starts) a local dev server.
        tasks: How many research tasks the batch has.
        model_name: A catalog model (e.g. ``gpt-4.1-mini``), used if its API key is set.
        namespace: The Temporal namespace (it must exist, with Factorial's search attributes).

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
    server = await local_server(console) if address is None else given_server(address)
    orchestrator = Orchestrator(temporal_address=server.address, namespace=namespace)
    try:
        research, search = build_agents(models)
        orchestrator.register_runner(agent=research)
        orchestrator.register_runner(agent=search)
        await orchestrator.start_workers()
        console.print(
            f"Workers for {research.name} and {search.name} run in this process "
            f"against {server.address} (namespace {namespace}).",
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
        watch = Watch(batch)
        view = BatchView(console, watch)
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
