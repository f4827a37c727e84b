"""``factorial events``: its ``--task``, ``--batch`` and ``--type`` filters.

Before, a filter that could never match (an unknown type, a task id copied clipped from the
demo's output) followed the stream silently and printed ``no events for 'ux-user' yet``
although the owner had hundreds of events. Now such a filter is refused at once.
"""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess

from typer.testing import CliRunner

from factorial import Agent, Orchestrator
from factorial.cli import app
from factorial.cli._common import ExitCode
from factorial.cli._demo_view import short_task_id
from factorial.events import BUILTIN_EVENT_TYPES
from factorial.testing import ScriptedModel, reply
from tests.integration.cli_runner import cli
from tests.integration.test_cli import FACTORIAL, cli_env, read_line


def test_unknown_event_type_is_refused_with_the_known_ones() -> None:
    result = CliRunner().invoke(app, ["events", "someone", "--type", "run_complete"])
    assert result.exit_code == ExitCode.ERROR
    (line,) = result.stderr.splitlines()
    assert line.startswith("error: unknown event type 'run_complete'; known types: ")
    for name in BUILTIN_EVENT_TYPES:
        assert name in line
    assert "--pattern" in line


async def follow(*args: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        FACTORIAL,
        "events",
        *args,
        env=cli_env(),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


async def stop(process: asyncio.subprocess.Process) -> None:
    if process.returncode is None:
        process.send_signal(signal.SIGINT)
        await asyncio.wait_for(process.wait(), 30)


async def test_task_and_batch_filters(orchestrator: Orchestrator, unique) -> None:
    agent = Agent(name=unique("cli_events"), model=ScriptedModel([reply("hi")]))
    orchestrator.register_runner(agent=agent)
    await orchestrator.start_workers()
    address = ("--address", orchestrator.temporal_address)
    owner, stranger = unique("cli_owner"), unique("cli_stranger")
    first = await orchestrator.enqueue_batch(agent, owner, [{"query": "a"}, {"query": "b"}])
    second = await orchestrator.enqueue_batch(agent, owner, [{"query": "c"}])
    foreign = await orchestrator.enqueue_batch(agent, stranger, [{"query": "d"}])
    for batch in (first, second, foreign):
        for task_id in batch.task_ids:
            await orchestrator.get_task_result(task_id)

    by_batch = await follow(owner, "--batch", first.id, "--type", "run_completed", *address)
    by_task = await follow(owner, "--task", second.task_ids[0], *address)
    try:
        seen = [json.loads(await read_line(by_batch.stdout)) for _ in first.task_ids]
        assert sorted(e["task_id"] for e in seen) == sorted(first.task_ids)
        assert {e["event_type"] for e in seen} == {"run_completed"}
        event = json.loads(await read_line(by_task.stdout))
        assert event["task_id"] == second.task_ids[0]
        assert event["event_type"] == "run_started"
    finally:
        await stop(by_batch)
        await stop(by_task)
    assert by_batch.returncode == 0 and by_task.returncode == 0

    # The batch's own events (batch_completed) pass its filter too.
    batch_events = await follow(owner, "--batch", second.id, "--type", "batch_completed", *address)
    try:
        event = json.loads(await read_line(batch_events.stdout))
        assert event["batch_id"] == second.id
    finally:
        await stop(batch_events)

    # A filter nothing matches yet says so, not that the owner has no events.
    waiting = await follow(owner, "--batch", first.id, "--type", "batch_cancelled", *address)
    try:
        note = (await asyncio.wait_for(waiting.stderr.readline(), 30)).decode().strip()
    finally:
        await stop(waiting)
    assert note == f"note: no events of {owner!r} match these filters yet"

    refused = {
        ("--task", short_task_id(first.task_ids[0])): "invalid task id",
        ("--task", "task-doesnotexist"): "no task with id 'task-doesnotexist'",
        ("--task", foreign.task_ids[0]): f"belongs to owner {stranger!r}, not {owner!r}",
        ("--batch", "batch-doesnotexist"): "no batch with id 'batch-doesnotexist'",
        ("--batch", foreign.id): f"belongs to owner {stranger!r}, not {owner!r}",
    }
    for args, expected in refused.items():
        result = await asyncio.wait_for(cli("events", owner, *args, *address), 60)
        assert result.exit_code == ExitCode.ERROR, (args, result.stdout, result.stderr)
        (line,) = result.stderr.splitlines()
        assert line.startswith("error: ") and expected in line, (args, line)
