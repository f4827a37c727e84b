"""``Budget``: when it is spent, what it hands down, and how a tally counts running tasks."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from factorial import Agent, Budget, BudgetExceeded, UserError
from factorial._budget import tighter
from factorial._progress import Tally, combine
from factorial._usage import TokenUsage
from factorial.testing import Reply, ScriptedModel


def used(tokens: int, cost: float | None = None) -> TokenUsage:
    return TokenUsage(prompt_tokens=tokens, cost=cost)


def test_a_limit_is_spent_once_reached() -> None:
    budget = Budget(tokens=100, cost=1.0, turns=3)
    assert budget.error(used(99, 0.5), 2) is None
    assert budget.error(used(100), 0) == "BudgetExceeded: used 100 tokens of a budget of 100"
    assert budget.error(used(1, 1.0), 0) == "BudgetExceeded: spent 1 of a budget of 1"
    assert budget.error(used(1), 3) == "BudgetExceeded: ran 3 turns of a budget of 3"
    assert Budget().error(used(10**9, 10.0**9), 10**6) is None


def test_what_is_left_is_handed_down_without_turns() -> None:
    assert Budget(tokens=100, turns=5).remaining(used(30)) == Budget(tokens=70)
    assert Budget(cost=1.0).remaining(used(5, 0.25)) == Budget(cost=0.75)
    assert Budget(turns=5).remaining(used(30)) is None


def test_the_tighter_of_two_budgets() -> None:
    a, b = Budget(tokens=100, turns=5), Budget(tokens=50, cost=2.0)
    assert tighter(a, b) == Budget(tokens=50, cost=2.0, turns=5)
    assert tighter(None, b) == b and tighter(a, None) == a and tighter(None, None) is None


def test_bad_budgets_are_refused() -> None:
    with pytest.raises(ValidationError):
        Budget(tokens=0)
    with pytest.raises(ValidationError):
        Budget(cost=-1.0)
    with pytest.raises(UserError):
        Agent(name="bad_budget", budget={"tokens": 5})  # type: ignore[arg-type]


def test_a_tally_counts_running_tasks_reports_then_their_ends() -> None:
    tally = Tally(max_turns=None)
    assert tally.spent(0, 1, used(10))
    assert tally.spent(1, 2, used(30))
    assert not tally.spent(1, 1, used(5))  # older than the latest: ignored
    assert (tally.counts().usage.total_tokens, tally.counts().turns) == (40, 3)
    tally.ended(0, "completed", used(12))  # its final usage replaces its report
    tally.ended(1, "cancelled")  # not known: what it last reported
    assert not tally.spent(0, 9, used(99))  # ended: ignored
    counts = tally.counts()
    assert (counts.usage.total_tokens, counts.turns) == (42, 3)
    assert combine([counts, counts]).turns == 6


async def test_run_inline_keeps_the_budget() -> None:
    def noop() -> str:
        """Do nothing."""
        return "ok"

    model = ScriptedModel(lambda request: Reply(tool_calls=[{"name": "noop"}], usage=used(40)))
    agent = Agent(name="inline_budget", tools=[noop], model=model, budget=Budget(tokens=100))
    events: list[dict[str, Any]] = []
    with pytest.raises(BudgetExceeded) as raised:
        await agent.run_inline({"query": "go"}, on_event=events.append)
    assert raised.value.error == "BudgetExceeded: used 120 tokens of a budget of 100"
    assert events[-1]["event_type"] == "run_failed"
    assert events[-1]["error"] == raised.value.error
