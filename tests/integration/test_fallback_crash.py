"""A worker killed in the middle of a ``fallback_models`` turn.

A regular turn lost with its worker is retried by Temporal as attempt 2 (its heartbeat
timed out), so it moves to the secondary model. A local turn is different: Temporal
records a local activity only when it ends, so the workflow task that reruns it on
another worker starts it again as attempt 1, on the primary model. The events say which
model each attempt used.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from factorial import Orchestrator
from factorial.devserver import DevServer
from tests.integration.fallback_worker_app import build_agent, worker_config
from tests.integration.test_worker_crash import log_tail, start_worker, stop_process
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
    agent_name = unique("fallback_crash")
    owner = unique("owner")
    env = {
        **os.environ,
        "TEMPORAL_ADDRESS": temporal_server.address,
        "FALLBACK_AGENT_NAME": agent_name,
        "FALLBACK_TURN_EXECUTION": turn_execution,
    }
    log_a, log_b = tmp_path / "worker_a.log", tmp_path / "worker_b.log"
    agent = build_agent(agent_name)
    orch = Orchestrator(temporal_address=temporal_server.address)
    orch.register_runner(agent=agent, agent_worker_config=worker_config(turn_execution))
    processes: list[subprocess.Popen[bytes]] = []
    try:
        async with EventLedger(orch, owner) as ledger:
            worker_a = start_worker(env, log_a, "tests.integration.fallback_worker_app")
            processes.append(worker_a)
            task = await orch.enqueue_task(agent=agent, owner_id=owner, payload={"query": "hi"})
            await asyncio.wait_for(wait_for_primary_call(ledger, worker_a), 45)
            stop_process(worker_a)  # SIGKILL in the middle of the primary's call
            assert worker_a.returncode == -9

            worker_b = start_worker(env, log_b, "tests.integration.fallback_worker_app")
            processes.append(worker_b)
            try:
                result = await asyncio.wait_for(task.result(), 60)
            except TimeoutError:
                raise AssertionError(f"task did not finish on B:\n{log_tail(log_b)}") from None
            await ledger.wait_for_tasks([task.id])
            await ledger.settle()
    finally:
        for process in processes:
            stop_process(process, kill=False)
        await orch.close()

    answer, models = EXPECTED[turn_execution]
    assert result == answer
    started = [e for e in ledger.events if e["event_type"] == "progress_update_completion_started"]
    assert [e["data"]["model"] for e in started] == models
    [completed] = [
        e for e in ledger.events if e["event_type"] == "progress_update_completion_completed"
    ]
    assert completed["data"]["model"] == models[-1]
    ledger.assert_exactly_once([task.id], expected="completed")
