"""Worker logs: one line per failed turn attempt; the traceback only at DEBUG."""

from __future__ import annotations

import logging

import pytest

from factorial import Agent, AgentWorkerConfig, Orchestrator
from factorial.testing import Fail, ScriptedModel, reply

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
