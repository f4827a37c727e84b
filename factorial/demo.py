"""``factorial demo``: a research assistant running a few tasks on Temporal, live.

Without ``OPENAI_API_KEY`` the agent runs on a scripted model (deterministic, no network),
so the demo shows the whole machinery (durable tasks, tool calls, the owner's event
stream) on any machine.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
from datetime import datetime
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from factorial.agent import Agent
from factorial.context import AgentContext
from factorial.devserver import DEFAULT_STATE_DIR, DevServer, free_port, is_listening
from factorial.errors import TemporalUnavailableError, UserError
from factorial.events import RUN_CANCELLED, RUN_COMPLETED, RUN_FAILED
from factorial.models import CATALOG, Model, ModelRequest
from factorial.orchestrator import Orchestrator
from factorial.testing import Call, Reply, ScriptedModel, Step

AGENT_NAME = "research_assistant"
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

_TERMINAL = (RUN_COMPLETED, RUN_FAILED, RUN_CANCELLED)
_STYLES = {
    RUN_COMPLETED: "bold green",
    RUN_FAILED: "bold red",
    RUN_CANCELLED: "bold yellow",
    "agent_output": "green",
    "run_started": "bold cyan",
}


def search_web(query: str) -> str:
    """Search the web and return the top results.

    Args:
        query: What to search for.
    """
    return (
        f"Top results for {query!r}: (1) Temporal docs: durable execution keeps long "
        "running work alive across crashes and restarts. (2) Blog: agents as workflows, "
        "one activity per LLM turn, retries with backoff. (3) Forum: stream progress events "
        "so users see what the agent is doing."
    )


def take_note(note: str) -> tuple[str, dict[str, Any]]:
    """Save a note for the final answer.

    Args:
        note: The note to keep.
    """
    return "Noted.", {"note": note, "chars": len(note)}


def _user_query(request: ModelRequest) -> str:
    for message in request.messages:
        if message.get("role") == "user":
            return str(message.get("content") or "")
    return ""


def _script(request: ModelRequest) -> Step:
    """The scripted research assistant: search, take a note, answer."""
    query = _user_query(request)
    if request.turn == 0:
        return Reply(tool_calls=[Call(name="search_web", arguments={"query": query})], delay=0.4)
    if request.turn == 1:
        note = f"Key point for {query!r}: durable execution with retried, observable turns."
        return Reply(tool_calls=[Call(name="take_note", arguments={"note": note})], delay=0.4)
    return Reply(
        content=f"Answer: {query.rstrip('?')}? In short: durable workflows, one retried "
        "activity per turn, and a live event stream.",
        delay=0.5,
    )


def build_agent(model: Model | None = None) -> Agent:
    """The demo's research assistant, on ``model`` or the scripted model."""
    return Agent(
        name=AGENT_NAME,
        description="Searches the web, takes notes and answers briefly.",
        instructions=(
            "You are a research assistant. First call search_web with the user's question, "
            "then call take_note with the key point, then answer in two sentences."
        ),
        tools=[search_web, take_note],
        model=model or ScriptedModel(_script, name="scripted-research"),
        max_turns=6,
    )


def _choose_model(model_name: str | None, console: Console) -> Model | None:
    """The catalog model to use, or None for the scripted one."""
    if model_name and model_name not in CATALOG:
        choices = ", ".join(sorted(CATALOG))
        raise UserError(f"unknown model {model_name!r}; choose one of: {choices}")
    if model_name and os.environ.get("OPENAI_API_KEY"):
        console.print(f"Using model {model_name}")
        return CATALOG[model_name]
    if model_name:
        console.print(f"OPENAI_API_KEY is not set, so {model_name} is not used.")
    console.print(SCRIPTED_NOTICE)
    return None


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


async def _local_server(console: Console) -> tuple[str, str | None, DevServer | None]:
    """Use the dev server on 7233 if there is one, else start one; (address, UI, started)."""
    if is_listening(DEFAULT_ADDRESS):
        if await _is_temporal(DEFAULT_ADDRESS):
            ui = f"127.0.0.1:{DEFAULT_UI_PORT}"
            return DEFAULT_ADDRESS, f"http://{ui}" if is_listening(ui) else None, None
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
    await asyncio.to_thread(server.start)
    return server.address, server.ui_url, server


def _ui_for(address: str) -> str | None:
    """The Web UI of a dev server at ``address``, if it runs on the default UI port."""
    host, _, port = address.rpartition(":")
    if port == "7233" and is_listening(f"{host}:{DEFAULT_UI_PORT}"):
        return f"http://{host}:{DEFAULT_UI_PORT}"
    return None


def _clip(value: Any, limit: int = 70) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def short_id(task_id: str | None) -> str:
    """The first 8 characters of a task id's random part."""
    return (task_id or "-").removeprefix("task-")[:8]


def describe_event(event: dict[str, Any]) -> str:
    """A short human detail for an event: the tool, the output, the error."""
    data = event.get("data")
    kind = event.get("event_type", "")
    if isinstance(data, dict) and "tool_name" in data:
        if kind.endswith("_started"):
            return f"{data['tool_name']}({_clip(data.get('arguments', ''), 50)})"
        return f"{data['tool_name']} -> {_clip(data.get('result'), 50)}"
    if isinstance(data, dict) and data.get("tool_calls"):
        return "wants " + ", ".join(c["name"] for c in data["tool_calls"])
    if isinstance(data, dict) and data.get("content"):
        return _clip(data["content"])
    if kind == "agent_output":
        return _clip(data)
    if event.get("error"):
        return _clip(event["error"])
    if "turn" in event:
        return f"turn {event['turn']}"
    return ""


def _event_line(event: dict[str, Any]) -> Text:
    try:
        stamp = datetime.fromisoformat(event["timestamp"]).astimezone().strftime("%H:%M:%S.%f")
        stamp = stamp[:-3]
    except (KeyError, ValueError):
        stamp = "--:--:--.---"
    kind = event.get("event_type", "?")
    line = Text(no_wrap=True, overflow="ellipsis")
    line.append(f"{stamp}  ", style="dim")
    line.append(f"{short_id(event.get('task_id'))}  ", style="magenta")
    line.append(f"{kind:<37}", style=_STYLES.get(kind, ""))
    line.append(f" {describe_event(event)}")
    return line


async def _follow(
    orchestrator: Orchestrator, task_ids: list[str], console: Console
) -> dict[str, str]:
    """Print the tasks' events until each one ended; returns task id -> terminal event."""
    ended: dict[str, str] = {}
    async for event in orchestrator.subscribe_to_updates(OWNER_ID, task_ids=task_ids):
        console.print(_event_line(event), no_wrap=True, overflow="ellipsis")
        if event.get("event_type") in _TERMINAL:
            ended[event["task_id"]] = event["event_type"]
            if len(ended) == len(task_ids):
                break
    return ended


async def _summary(orchestrator: Orchestrator, task_ids: list[str], console: Console) -> None:
    table = Table(title="Tasks")
    table.add_column("task")
    table.add_column("status")
    table.add_column("output", overflow="fold")
    for task_id in task_ids:
        data = await orchestrator.get_task_data(task_id) or {}
        status = str(data.get("status", "?"))
        output = data.get("output") if data.get("output") is not None else data.get("error")
        table.add_row(short_id(task_id), status, _clip(output or "", 200))
    console.print(table)


async def _cancel_all(orchestrator: Orchestrator, task_ids: list[str], console: Console) -> None:
    """Cancel the demo's tasks and give the workers a moment to wind them down."""
    console.print("Interrupted: cancelling the running tasks ...")
    for task_id in task_ids:
        with contextlib.suppress(Exception):
            await orchestrator.cancel_task(task_id)
    with contextlib.suppress(Exception):
        await asyncio.wait_for(_wait_ended(orchestrator, task_ids), 10)
    with contextlib.suppress(Exception):
        await asyncio.wait_for(_summary(orchestrator, task_ids, console), 10)


async def _wait_ended(orchestrator: Orchestrator, task_ids: list[str]) -> None:
    for task_id in task_ids:
        with contextlib.suppress(Exception):
            await orchestrator.get_task_result(task_id)


async def run_demo(address: str | None, tasks: int = 3, model_name: str | None = None) -> None:
    """Run ``tasks`` research tasks and print their events live, then a summary.

    Args:
        address: Temporal frontend ``host:port``; None uses (or starts) a local dev server.
        tasks: How many tasks to run at once.
        model_name: A catalog model (e.g. ``gpt-4.1-mini``), used if ``OPENAI_API_KEY`` is set.

    Raises:
        UserError: Unknown model name or a bad task count.
        TemporalUnavailableError: No Temporal server at ``address``.
    """
    console = Console(highlight=False)
    if tasks < 1:
        raise UserError("--tasks must be at least 1")
    model = _choose_model(model_name, console)
    server: DevServer | None = None
    if address is None:
        address, ui_url, server = await _local_server(console)
    else:
        if not is_listening(address):
            raise TemporalUnavailableError(f"no Temporal server at {address} (nothing listens)")
        ui_url = _ui_for(address)
    orchestrator = Orchestrator(temporal_address=address)
    task_ids: list[str] = []
    try:
        agent = build_agent(model)
        orchestrator.register_runner(agent=agent)
        await orchestrator.start_workers()
        console.print(f"Workers for {AGENT_NAME!r} are running against {address}.")
        for i in range(tasks):
            query = QUERIES[i % len(QUERIES)]
            if i >= len(QUERIES):
                query = f"{query} (variant {i // len(QUERIES) + 1})"
            task = await orchestrator.enqueue_task(
                agent=agent, owner_id=OWNER_ID, payload=AgentContext(query=query)
            )
            task_ids.append(task.id)
            console.print(Text(f"Enqueued {short_id(task.id)}: {query}", style="bold"))
        try:
            await _follow(orchestrator, task_ids, console)
        except asyncio.CancelledError:
            await _cancel_all(orchestrator, task_ids, console)
            raise
        await _summary(orchestrator, task_ids, console)
        if ui_url:
            console.print(f"Web UI: {ui_url}/namespaces/{orchestrator.namespace}/workflows")
    finally:
        try:
            await orchestrator.close()
        finally:
            if server is not None:
                console.print("Stopping the dev server we started.")
                server.stop()
