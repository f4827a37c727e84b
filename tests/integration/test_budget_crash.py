"""A worker SIGKILLed while a task with a token budget runs: the budget still holds, exactly.

Worker process A (``budget_worker_app``) runs turn 0 and starts turn 1, whose model call takes
a few seconds; the test SIGKILLs A during it. Worker process B runs turn 1 again and the turns
after it. Only recorded turns count: the task stops after exactly ``TURNS_TO_BUDGET`` turns
with ``BudgetExceeded``, its usage that many turns' tokens (the killed attempt not counted).
"""

from __future__ import annotations

import asyncio
import os
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from factorial import BudgetExceeded, Orchestrator
from factorial.devserver import DevServer
from tests.integration.budget_worker_app import (
    BUDGET_TOKENS,
    TOKENS_PER_TURN,
    TURNS_TO_BUDGET,
    build_agent,
)
from tests.integration.crash_worker_app import worker_config
from tests.integration.test_worker_crash import (
    log_tail,
    start_worker,
    stop_process,
    wait_for_local_turn_started,
    wait_for_turn_started,
)
from tests.ledger import EventLedger


@pytest.mark.parametrize("turn_execution", ["activity", "local"])
async def test_budget_holds_exactly_across_a_worker_kill(
    temporal_server: DevServer, unique: Callable[[str], str], tmp_path: Path, turn_execution: str
) -> None:
    agent_name = unique("budget_crash")
    owner = unique("owner")
    env = {
        **os.environ,
        "TEMPORAL_ADDRESS": temporal_server.address,
        "CRASH_AGENT_NAME": agent_name,
        "CRASH_TURN_EXECUTION": turn_execution,
    }
    log_a, log_b = tmp_path / "worker_a.log", tmp_path / "worker_b.log"
    agent = build_agent(agent_name)
    orch = Orchestrator(temporal_address=temporal_server.address)
    orch.register_runner(agent=agent, agent_worker_config=worker_config(turn_execution))
    processes: list[subprocess.Popen[bytes]] = []
    try:
        async with EventLedger(orch, owner) as ledger:
            worker_a = start_worker(env, log_a, "tests.integration.budget_worker_app")
            processes.append(worker_a)
            task = await orch.enqueue_task(agent=agent, owner_id=owner, payload={"query": "go"})
            if turn_execution == "local":
                started = wait_for_local_turn_started(ledger, worker_a)
            else:
                started = wait_for_turn_started(orch, task.id, 1, worker_a, log_a)
            await asyncio.wait_for(started, 45)
            stop_process(worker_a)  # SIGKILL in the middle of turn 1's model call
            assert worker_a.returncode == -9

            worker_b = start_worker(env, log_b, "tests.integration.budget_worker_app")
            processes.append(worker_b)
            try:
                with pytest.raises(BudgetExceeded) as raised:
                    await asyncio.wait_for(task.result(), 60)
            except TimeoutError:
                raise AssertionError(f"task did not end on worker B:\n{log_tail(log_b)}") from None
            await ledger.wait_for_tasks([task.id])
            await ledger.settle()
            data = await orch.get_task_data(task.id)
    finally:
        for process in processes:
            stop_process(process, kill=False)
        await orch.close()

    spent = TURNS_TO_BUDGET * TOKENS_PER_TURN
    assert (
        raised.value.error == f"BudgetExceeded: used {spent} tokens of a budget of {BUDGET_TOKENS}"
    )
    assert data is not None
    assert (data["status"], data["turn"]) == ("failed", TURNS_TO_BUDGET)
    assert data["usage"]["total_tokens"] == spent
    ledger.assert_exactly_once([task.id], expected="failed")
    [failed] = ledger.of_type("run_failed")
    assert failed["usage"]["total_tokens"] == spent
    assert failed["error"] == raised.value.error
