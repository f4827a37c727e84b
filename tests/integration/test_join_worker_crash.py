"""A worker process killed while a forking tool's join is pending: another one finishes it.

Worker process A (``crash_join_app``) runs the leader's forking turn and starts its three
scouts with ``join="first"``; the test SIGKILLs A while the ``near`` scout's model call runs.
Worker process B runs that scout again; once it completes the join is met, the two others
are cancelled, the leader resumes with the one result, and every task's terminal event is
published exactly once.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from factorial import Orchestrator, TaskNotFoundError
from factorial.devserver import DevServer
from tests.integration.crash_join_app import QUERIES, build_agents
from tests.integration.crash_worker_app import worker_config
from tests.integration.test_worker_crash import (
    log_tail,
    start_worker,
    stop_process,
    wait_for_turn_started,
)
from tests.ledger import EventLedger


async def wait_for_model_call(ledger: EventLedger, task_id: str) -> None:
    """Wait until ``task_id``'s model call has begun (its event is flushed within a second)."""
    await ledger.wait_until(
        lambda events: any(
            e["event_type"] == "progress_update_completion_started" and e["task_id"] == task_id
            for e in events
        ),
        45,
    )


async def wait_for_activity_turn(
    orch: Orchestrator, task_id: str, worker: subprocess.Popen[bytes], log: Path
) -> None:
    """Wait until the task exists, then until its turn 0's activity runs on a worker."""
    while True:
        try:
            await orch.get_task_status(task_id)
            break
        except TaskNotFoundError:
            await asyncio.sleep(0.05)
    await wait_for_turn_started(orch, task_id, 0, worker, log)


@pytest.mark.parametrize("turn_execution", ["activity", "local"])
async def test_worker_killed_while_a_join_is_pending(
    temporal_server: DevServer, unique: Callable[[str], str], tmp_path: Path, turn_execution: str
) -> None:
    name = unique("crash_join")
    owner = unique("owner")
    env = {
        **os.environ,
        "TEMPORAL_ADDRESS": temporal_server.address,
        "CRASH_AGENT_NAME": name,
        "CRASH_TURN_EXECUTION": turn_execution,
    }
    log_a, log_b = tmp_path / "worker_a.log", tmp_path / "worker_b.log"
    leader, scout = build_agents(name)
    orch = Orchestrator(temporal_address=temporal_server.address)
    for agent in (leader, scout):
        orch.register_runner(agent=agent, agent_worker_config=worker_config(turn_execution))
    processes: list[subprocess.Popen[bytes]] = []
    try:
        async with EventLedger(orch, owner) as ledger:
            worker_a = start_worker(env, log_a, "tests.integration.crash_join_app")
            processes.append(worker_a)
            task = await orch.enqueue_task(agent=leader, owner_id=owner, payload={})
            batch_id = f"{task.id}-t0-call00-0"
            scouts = [f"{batch_id}-{i}" for i in range(len(QUERIES))]
            near = scouts[QUERIES.index("near")]
            if turn_execution == "local":
                started = wait_for_model_call(ledger, near)
            else:
                started = wait_for_activity_turn(orch, near, worker_a, log_a)
            await asyncio.wait_for(started, 45)
            assert (await orch.get_task_data(task.id) or {})["status"] == "pending_child_tasks"
            stop_process(worker_a)  # SIGKILL while the join waits for the near scout
            assert worker_a.returncode == -9

            worker_b = start_worker(env, log_b, "tests.integration.crash_join_app")
            processes.append(worker_b)
            try:
                output = await asyncio.wait_for(task.result(), 60)
            except TimeoutError:
                raise AssertionError(f"the leader did not finish:\n{log_tail(log_b)}") from None
            await ledger.wait_for_tasks([task.id, *scouts])
            await ledger.settle()
    finally:
        for process in processes:
            stop_process(process, kill=False)
        await orch.close()

    lines = output.splitlines()[1:-1]
    for line, scout_id, query in zip(lines, scouts, QUERIES, strict=True):
        if query == "near":
            assert line == f'<sub_task_result sub_task_id="{scout_id}">found near</sub_task_result>'
        else:
            assert "cancelled: the forking tool's join policy was met" in line, line
    expected = {task.id: "completed", near: "completed"}
    expected |= {s: "cancelled" for s in scouts if s != near}
    ledger.assert_exactly_once([task.id, *scouts], batch_ids=[batch_id], expected=expected)
