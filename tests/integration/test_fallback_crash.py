"""A worker killed in the middle of a ``fallback_models`` turn.

A regular turn lost with its worker is retried by Temporal as attempt 2 (its heartbeat
timed out), so it moves to the secondary model. A local turn is different: Temporal
records a local activity only when it ends, so the workflow task that reruns it on
another worker starts it again as attempt 1, on the primary model. The events say which
model each attempt used.
"""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from factorial.devserver import DevServer
from tests.integration.fallback_worker_app import build_agent, worker_config
from tests.integration.test_worker_crash import crash_run
from tests.ledger import EventLedger

EXPECTED = {  # turn mode -> (the answer, the models of the attempts' completion_started)
    "activity": ("from secondary", ["primary", "secondary"]),
    "local": ("from primary", ["primary", "primary"]),
}


async def wait_for_primary_call(ledger: EventLedger, worker: subprocess.Popen[bytes]) -> None:
    """Wait until the primary model's call has begun (its event is flushed within a second)."""
    while not any(e["event_type"] == "progress_update_completion_started" for e in ledger.events):
        assert worker.poll() is None, "worker A exited early"
        await asyncio.sleep(0.05)


@pytest.mark.parametrize("turn_execution", ["activity", "local"])
async def test_worker_killed_mid_turn(
    temporal_server: DevServer, unique: Callable[[str], str], tmp_path: Path, turn_execution: str
) -> None:
    agent = build_agent(unique("fallback_crash"))
    async with crash_run(
        temporal_server,
        tmp_path,
        agent,
        turn_execution,
        config=worker_config,
        app="tests.integration.fallback_worker_app",
        env_prefix="FALLBACK",
    ) as run:
        task = await run.enqueue({"query": "hi"})
        await asyncio.wait_for(wait_for_primary_call(run.ledger, run.worker_a), 45)
        run.kill_a_start_b()  # SIGKILL in the middle of the primary's call
        result = await run.on_worker_b(task.result(), 60)
        await run.ledger.wait_for_tasks([task.id])
        await run.ledger.settle()
    ledger = run.ledger

    answer, models = EXPECTED[turn_execution]
    assert result == answer
    started = [e for e in ledger.events if e["event_type"] == "progress_update_completion_started"]
    assert [e["data"]["model"] for e in started] == models
    [completed] = [
        e for e in ledger.events if e["event_type"] == "progress_update_completion_completed"
    ]
    assert completed["data"]["model"] == models[-1]
    ledger.assert_exactly_once([task.id], expected="completed")
