"""A worker SIGKILLed while a task with a token budget runs: the budget still holds, exactly.

Worker process A (``budget_worker_app``) runs turn 0 and starts turn 1, whose model call takes
a few seconds; the test SIGKILLs A during it. Worker process B runs turn 1 again and the turns
after it. Only recorded turns count: the task stops after exactly ``TURNS_TO_BUDGET`` turns
with ``BudgetExceeded``, its usage that many turns' tokens (the killed attempt not counted).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from factorial import BudgetExceeded
from factorial.devserver import DevServer
from tests.integration.budget_worker_app import (
    BUDGET_TOKENS,
    TOKENS_PER_TURN,
    TURNS_TO_BUDGET,
    build_agent,
)
from tests.integration.test_worker_crash import crash_run

BUDGET_APP = "tests.integration.budget_worker_app"


@pytest.mark.parametrize("turn_execution", ["activity", "local"])
async def test_budget_holds_exactly_across_a_worker_kill(
    temporal_server: DevServer, unique: Callable[[str], str], tmp_path: Path, turn_execution: str
) -> None:
    agent = build_agent(unique("budget_crash"))
    async with crash_run(temporal_server, tmp_path, agent, turn_execution, app=BUDGET_APP) as run:
        task = await run.enqueue({"query": "go"})
        await run.wait_for_turn_1(task.id)
        run.kill_a_start_b()  # SIGKILL in the middle of turn 1's model call
        with pytest.raises(BudgetExceeded) as raised:
            await run.on_worker_b(task.result(), 60)
        await run.ledger.wait_for_tasks([task.id])
        await run.ledger.settle()
        data = await run.orch.get_task_data(task.id)
    ledger = run.ledger

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
