"""Worker logs: a line per task start and end and per failed turn attempt; tracebacks at DEBUG."""

from __future__ import annotations

import asyncio
import logging
import signal
import subprocess
from pathlib import Path

import pytest

from factorial import Agent, AgentWorkerConfig, Orchestrator
from factorial._health import HEALTH_PATH, check
from factorial.devserver import DevServer, free_port
from factorial.testing import Fail, ScriptedModel, reply
from tests.integration.test_cli import FACTORIAL, cli_env

QUICK = AgentWorkerConfig(initial_backoff=0.1, max_backoff=0.2, heartbeat_timeout=5)


async def test_a_failed_attempt_is_one_line(
    orchestrator: Orchestrator, unique, caplog: pytest.LogCaptureFixture
) -> None:
    agent = Agent(
        name=unique("flaky"),
        model=ScriptedModel([Fail(status_code=503, times=1, message="overloaded"), reply("ok")]),
    )
    orchestrator.register_runner(agent=agent, agent_worker_config=QUICK)
    await orchestrator.start_workers()
    caplog.set_level(logging.DEBUG, logger="factorial.worker")
    task = await orchestrator.enqueue_task(agent=agent, owner_id=unique("owner"), payload={})

    assert await task.result() == "ok"
    failed = [
        r for r in caplog.records if r.name == "temporalio.activity" and task.id in r.getMessage()
    ]
    assert len(failed) == 1, [r.getMessage() for r in failed]
    [record] = failed
    assert record.levelno == logging.WARNING and record.exc_info is None
    message = record.getMessage()
    assert message.startswith(f"turn of task {task.id} failed (attempt 1): ModelHTTPError:")
    assert "overloaded" in message and "\n" not in message
    tracebacks = [r for r in caplog.records if r.name == "factorial.worker" and r.exc_info]
    assert any(task.id in r.getMessage() for r in tracebacks)
    assert all(r.levelno == logging.DEBUG for r in tracebacks)


FLAKY_APP = """
from factorial import Agent, AgentWorkerConfig, Orchestrator
from factorial.testing import Fail, ScriptedModel, reply

agent = Agent(
    name={name!r},
    model=ScriptedModel([Fail(status_code=503, times=1, message="overloaded"), reply("ok")]),
)
orchestrator = Orchestrator()
orchestrator.register_runner(
    agent=agent,
    agent_worker_config=AgentWorkerConfig(initial_backoff=0.1, max_backoff=0.2),
)
"""


async def _read_until(stream: asyncio.StreamReader, marker: str, seen: list[str]) -> None:
    async with asyncio.timeout(60):
        while not any(marker in line for line in seen):
            line = (await stream.readline()).decode()
            assert line, "the worker ended early:\n" + "".join(seen)
            seen.append(line)


@pytest.mark.parametrize("level", ["INFO", "DEBUG"])
async def test_worker_process_logs(
    temporal_server: DevServer, unique, tmp_path: Path, level: str
) -> None:
    """`factorial worker` at INFO: task start, failed attempt and end, one line each, no
    traceback; at DEBUG the traceback too. Its concurrency flags and health check apply, and
    (in the DEBUG run) ``--unsandboxed``."""
    name = unique("logged")
    (tmp_path / "logged_app.py").write_text(FLAKY_APP.format(name=name))
    health_port = free_port()
    worker = await asyncio.create_subprocess_exec(
        FACTORIAL, "worker", "logged_app:orchestrator",
        "--address", temporal_server.address, "--log-level", level,
        "--max-concurrent-turns", "7", "--max-concurrent-tasks", "9",
        "--health-port", str(health_port),
        *(["--unsandboxed"] if level == "DEBUG" else []),
        cwd=tmp_path, env=cli_env(), stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )  # fmt: skip
    orchestrator = Orchestrator(temporal_address=temporal_server.address)
    try:
        assert worker.stdout is not None
        seen: list[str] = []
        await _read_until(worker.stdout, "Worker running", seen)
        assert await asyncio.to_thread(check, f"http://127.0.0.1:{health_port}{HEALTH_PATH}")

        # The same agent here only enqueues: its turns run in the worker process.
        agent = Agent(name=name, model=ScriptedModel([reply("not from the test process")]))
        orchestrator.register_runner(agent=agent)
        task = await orchestrator.enqueue_task(agent=agent, owner_id=unique("owner"), payload={})
        assert await asyncio.wait_for(task.result(), 60) == "ok"
        await _read_until(worker.stdout, f"task {task.id} (agent {name}) completed", seen)

        worker.send_signal(signal.SIGINT)
        rest, _ = await asyncio.wait_for(worker.communicate(), 30)
        assert worker.returncode == 0
    finally:
        await orchestrator.close()
        if worker.returncode is None:
            worker.kill()
            await worker.wait()
    out = "".join(seen) + rest.decode()
    lines = out.splitlines()

    def one(text: str) -> str:
        found = [line for line in lines if text in line]
        assert len(found) == 1, (text, out)
        return found[0]

    assert f"agent {name}: max_concurrent_turns=7, max_concurrent_tasks=9" in out
    one("workflows run unsandboxed" if level == "DEBUG" else "workflows run in the sandbox")
    started = one(f"task {task.id} (agent {name}) started")
    failed = one(f"turn of task {task.id} failed (attempt 1): ModelHTTPError")
    completed = one(f"task {task.id} (agent {name}) completed: 1 turn")
    assert " INFO " in started and " INFO " in completed
    assert "overloaded" in failed and " WARNING " in failed
    # The SDK's own workflow details are not appended to Factorial's lines.
    assert "'workflow_type'" not in started + completed
    if level == "INFO":
        assert "Traceback" not in out and " DEBUG " not in out, out
    else:
        debug = one(f"traceback of the failed turn of {task.id}")
        assert " DEBUG " in debug
        assert "Traceback (most recent call last)" in out
    assert "Worker stopped." in out
