"""The ``factorial`` command: help, the demo, user errors, and a worker process it runs."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from factorial import Agent, AgentContext, Orchestrator, deferred_tool
from factorial.cli import app
from factorial.cli.demo import SCRIPTED_NOTICE
from factorial.devserver import DevServer, free_port
from factorial.example_app import RESEARCH_AGENT, build_orchestrator, topics_for
from factorial.testing import ScriptedModel, call_tool, reply

FACTORIAL = str(Path(sys.executable).with_name("factorial"))

HELP_COMMANDS = [
    [],
    ["dev"],
    ["worker"],
    ["demo"],
    ["events"],
    ["task"],
    ["task", "status"],
    ["task", "cancel"],
    ["task", "steer"],
    ["task", "list"],
    ["task", "complete-tool"],
    ["batch"],
    ["batch", "status"],
    ["batch", "cancel"],
    ["batch", "list"],
    ["batch", "watch"],
    ["batch", "results"],
    ["batch", "retry-failed"],
]


def cli_env() -> dict[str, str]:
    """The environment for a ``factorial`` subprocess: no model key, no Temporal settings."""
    env = dict(os.environ)
    for name in ("OPENAI_API_KEY", "FACTORIAL_MODEL", "TEMPORAL_ADDRESS", "TEMPORAL_NAMESPACE"):
        env.pop(name, None)
    return env


def run_cli(
    *args: str, timeout: float = 60, cwd: Path | None = None
) -> subprocess.CompletedProcess:
    """Run ``factorial ARGS`` to completion."""
    return subprocess.run(
        [FACTORIAL, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=cli_env(),
        cwd=cwd,
        stdin=subprocess.DEVNULL,
    )


def assert_one_error_line(result: subprocess.CompletedProcess) -> str:
    """The command failed with exit code 1 and exactly one ``error:`` line, no traceback."""
    assert result.returncode == 1, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr + result.stdout
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    return lines[0]


@pytest.mark.parametrize("command", HELP_COMMANDS, ids=lambda c: " ".join(c) or "factorial")
def test_help(command: list[str]) -> None:
    result = CliRunner().invoke(app, [*command, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage" in result.output


def test_help_of_the_installed_command() -> None:
    result = run_cli("--help")
    assert result.returncode == 0
    for command in ("dev", "worker", "demo", "task", "batch", "events"):
        assert command in result.stdout


def test_demo_runs_a_batch_to_completion(temporal_server: DevServer) -> None:
    result = run_cli("demo", "--address", temporal_server.address, "--tasks", "2", timeout=180)
    out = result.stdout
    assert result.returncode == 0, out + result.stderr
    assert "Traceback" not in out + result.stderr
    assert SCRIPTED_NOTICE in out
    batch_id = re.search(r"Enqueued batch (batch-[0-9a-f]+)", out).group(1)
    # Progress lines (plain text, as stdout is not a terminal), then the batch's end.
    assert "batch_progress" in out
    assert re.search(r"batch_completed +100\.0% +2/2 tasks, 6/6 turns", out), out
    # One line per finished research task, then the results table of both.
    finished = [line for line in out.splitlines() if "run_completed" in line]
    assert len(finished) == 2, out
    assert out.count("│ completed │") == 2, out
    assert out.count("Summary of") >= 4  # in the task lines and in the table
    assert f"factorial batch status {batch_id}" in out
    assert "Web UI" not in out  # a server on another port than 7233: no UI is assumed


def test_demo_rejects_an_unknown_model(temporal_server: DevServer) -> None:
    result = run_cli("demo", "--address", temporal_server.address, "--model", "gpt-nonsense")
    line = assert_one_error_line(result)
    assert "gpt-nonsense" in line and "gpt-4.1-mini" in line


def test_status_of_an_unknown_task(temporal_server: DevServer) -> None:
    result = run_cli("task", "status", "task-doesnotexist", "--address", temporal_server.address)
    assert "task-doesnotexist" in assert_one_error_line(result)


def test_invalid_task_id(temporal_server: DevServer) -> None:
    result = run_cli("task", "cancel", "not a valid id", "--address", temporal_server.address)
    assert "invalid task id" in assert_one_error_line(result)


def test_no_server_fails_fast() -> None:
    address = f"127.0.0.1:{free_port()}"
    started = time.monotonic()
    result = run_cli("task", "status", "x", "--address", address, timeout=30)
    assert time.monotonic() - started < 15
    assert address in assert_one_error_line(result)


def test_no_server_from_the_environment() -> None:
    address = f"127.0.0.1:{free_port()}"
    env = {**cli_env(), "TEMPORAL_ADDRESS": address}
    result = subprocess.run(
        [FACTORIAL, "events", "someone"], capture_output=True, text=True, timeout=30, env=env
    )
    assert address in assert_one_error_line(result)


def test_status_of_an_unknown_batch(temporal_server: DevServer) -> None:
    result = run_cli("batch", "status", "batch-doesnotexist", "--address", temporal_server.address)
    assert "batch-doesnotexist" in assert_one_error_line(result)


def test_cancel_of_an_unknown_batch(temporal_server: DevServer) -> None:
    result = run_cli("batch", "cancel", "batch-doesnotexist", "--address", temporal_server.address)
    assert "batch-doesnotexist" in assert_one_error_line(result)


def test_invalid_batch_id(temporal_server: DevServer) -> None:
    result = run_cli("batch", "status", "not a valid id", "--address", temporal_server.address)
    assert "invalid batch id" in assert_one_error_line(result)


def test_batch_status_without_a_server() -> None:
    address = f"127.0.0.1:{free_port()}"
    result = run_cli("batch", "cancel", "batch-x", "--address", address, timeout=30)
    assert address in assert_one_error_line(result)


@deferred_tool(timeout=3600)
def wait_for_approval() -> str:
    """Wait for an approval that never comes."""
    return "waiting"


async def test_batch_status_and_cancel(orchestrator: Orchestrator, unique) -> None:
    # Each task finishes one turn, then waits: the batch stays at 1 of 2 turns per task.
    agent = Agent(
        name=unique("cli_batch"),
        tools=[wait_for_approval],
        model=ScriptedModel([call_tool("wait_for_approval")]),
        max_turns=2,
    )
    orchestrator.register_runner(agent=agent)
    await orchestrator.start_workers()
    address = orchestrator.temporal_address
    batch = await orchestrator.enqueue_batch(agent, unique("cli_owner"), [{"query": "a"}] * 2)
    async with asyncio.timeout(60):
        while (await orchestrator.get_batch(batch.id)).progress < 50:
            await asyncio.sleep(0.2)

    status = await asyncio.to_thread(run_cli, "batch", "status", batch.id, "--address", address)
    assert status.returncode == 0, status.stderr
    lines = status.stdout.splitlines()
    assert f"batch: {batch.id}" in lines
    assert "status: active" in lines
    assert "progress: 50%" in lines
    assert "tasks: 0/2 ended (0 completed, 0 failed, 0 cancelled), 2 remaining" in lines

    cancel = await asyncio.to_thread(
        run_cli, "batch", "cancel", batch.id, "--address", address, timeout=120
    )
    assert cancel.returncode == 0, cancel.stderr
    assert "status: cancelled" in cancel.stdout.splitlines()
    assert "2 remaining" not in cancel.stdout
    assert (await orchestrator.get_batch(batch.id)).metadata.status == "cancelled"

    again = await asyncio.to_thread(run_cli, "batch", "status", batch.id, "--address", address)
    assert again.returncode == 0, again.stderr
    assert "status: cancelled" in again.stdout.splitlines()


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("nonexistent_module:orch", "nonexistent_module"),
        ("json", "MODULE:ATTR"),
        ("json:no_such_thing", "no attribute"),
        ("json:dumps", "not a factorial Orchestrator"),
    ],
)
def test_worker_with_a_bad_target(target: str, expected: str) -> None:
    assert expected in assert_one_error_line(run_cli("worker", target))


WORKER_MODULE = '''
"""A worker app for the CLI test; its answer names the process that ran the task."""

import os

from factorial import Agent, Orchestrator
from factorial.testing import ScriptedModel, reply

agent = Agent(name={name!r}, model=ScriptedModel([reply(f"hello from {{os.getpid()}}")]))
orchestrator = Orchestrator()
orchestrator.register_runner(agent=agent)
'''


async def read_line(stream: asyncio.StreamReader, timeout: float = 30) -> str:
    """One line of a subprocess's output."""
    return (await asyncio.wait_for(stream.readline(), timeout)).decode()


async def test_worker_process_runs_tasks(temporal_server: DevServer, unique, tmp_path) -> None:
    name = unique("cli_worker")
    (tmp_path / "cli_worker_app.py").write_text(textwrap.dedent(WORKER_MODULE.format(name=name)))
    address = temporal_server.address
    worker = await asyncio.create_subprocess_exec(
        FACTORIAL,
        "worker",
        "cli_worker_app:orchestrator",
        "--address",
        address,
        cwd=tmp_path,
        env=cli_env(),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    follower: asyncio.subprocess.Process | None = None
    orchestrator = Orchestrator(temporal_address=address)
    try:
        assert "Worker running" in await read_line(worker.stdout)
        # The same agent on this side only enqueues: no workers run here.
        agent = Agent(name=name, model=ScriptedModel([reply("not from the test process")]))
        orchestrator.register_runner(agent=agent)
        owner = unique("cli_owner")
        task = await orchestrator.enqueue_task(
            agent=agent, owner_id=owner, payload=AgentContext(query="hi")
        )
        assert await asyncio.wait_for(task.result(), 60) == f"hello from {worker.pid}"

        status = await asyncio.to_thread(run_cli, "task", "status", task.id, "--address", address)
        assert status.returncode == 0, status.stderr
        assert "status: completed" in status.stdout
        assert f"output: hello from {worker.pid}" in status.stdout

        follower = await asyncio.create_subprocess_exec(
            FACTORIAL,
            "events",
            owner,
            "--type",
            "run_completed",
            "--address",
            address,
            env=cli_env(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        event = json.loads(await read_line(follower.stdout))
        assert event["event_type"] == "run_completed"
        assert event["task_id"] == task.id
        assert isinstance(event["offset"], int)
        follower.send_signal(signal.SIGINT)
        assert await asyncio.wait_for(follower.wait(), 30) == 0

        worker.send_signal(signal.SIGINT)
        assert await asyncio.wait_for(worker.wait(), 30) == 0
        rest = (await worker.stdout.read()).decode()
        assert "Worker stopped." in rest
        assert "Traceback" not in rest and "Fatal" not in rest
    finally:
        await orchestrator.close()
        for process in (follower, worker):
            if process is not None and process.returncode is None:
                process.kill()
                await process.wait()


async def test_worker_runs_the_example_app(temporal_server: DevServer, unique) -> None:
    address = temporal_server.address
    worker = await asyncio.create_subprocess_exec(
        FACTORIAL,
        "worker",
        "factorial.example_app:orchestrator",
        "--address",
        address,
        env=cli_env(),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    # The example agents on this side only enqueue: every turn runs in the worker process.
    orchestrator = build_orchestrator(address)
    try:
        line = await read_line(worker.stdout, timeout=60)
        assert "Worker running agents research_agent, search_agent" in line, line
        research = next(a for a in orchestrator.agents if a.name == RESEARCH_AGENT)
        query = "Why run agents on Temporal?"
        task = await orchestrator.enqueue_task(
            agent=research, owner_id=unique("example_owner"), payload=AgentContext(query=query)
        )
        output = await asyncio.wait_for(task.result(), 120)
        topics = topics_for(query)
        assert output.startswith(
            f"Summary of {len(topics)}/{len(topics)} sub-task results for {query!r}:"
        ), output
        for topic in topics:
            assert topic in output

        worker.send_signal(signal.SIGINT)
        assert await asyncio.wait_for(worker.wait(), 60) == 0
        rest = (await worker.stdout.read()).decode()
        assert "Traceback" not in rest
    finally:
        await orchestrator.close()
        if worker.returncode is None:
            worker.kill()
            await worker.wait()
