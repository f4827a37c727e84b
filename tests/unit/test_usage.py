"""TokenUsage sums, model prices, a batch's summary for its memo, and how the CLI shows them."""

from __future__ import annotations

import pytest

from factorial import Model, TokenUsage, UserError
from factorial import _wire as wire
from factorial._progress import Tally, combine
from factorial.cli.batches import batch_status_text, progress_text, usage_text
from factorial.models import ModelRequest, ModelResponse, gpt_41_mini
from factorial.task import Batch, BatchMetadata
from factorial.testing import Reply, ScriptedModel, reply


def test_usages_add_up_and_costs_add_where_known() -> None:
    a = TokenUsage(prompt_tokens=10, completion_tokens=2)
    b = TokenUsage(prompt_tokens=5, completion_tokens=1, cost=0.25)
    total = a + b
    assert (total.prompt_tokens, total.completion_tokens, total.total_tokens) == (15, 3, 18)
    assert total.cost == 0.25
    assert (a + a).cost is None
    assert sum([a, b, b]) == TokenUsage(prompt_tokens=20, completion_tokens=4, cost=0.5)
    assert TokenUsage.model_validate({"prompt_tokens": 3, "total_tokens": 99}).total_tokens == 3
    response = ModelResponse(usage={"prompt_tokens": 1, "completion_tokens": 2, "total_tokens": 3})
    assert response.usage == TokenUsage(prompt_tokens=1, completion_tokens=2)


def test_prices_per_million_tokens() -> None:
    priced = gpt_41_mini.with_prices(prompt=0.4, completion=1.6)
    assert gpt_41_mini.prompt_price is None  # a copy; the catalog's model is unchanged
    usage = priced.priced(TokenUsage(prompt_tokens=1_000_000, completion_tokens=500_000))
    assert usage.cost == pytest.approx(1.2)
    assert gpt_41_mini.priced(usage.model_copy(update={"cost": None})).cost is None
    with pytest.raises(UserError):
        Model("m", "openai", "m", 1).with_prices(prompt=-1, completion=0)


async def test_the_scripted_model_reports_usage() -> None:
    request = ModelRequest(messages=[{"role": "user", "content": "x" * 400}])
    estimated = await ScriptedModel([reply("hi")]).complete(request, None)  # type: ignore[arg-type]
    assert estimated.usage is not None and estimated.usage.prompt_tokens >= 100
    scripted = ScriptedModel([Reply(content="hi", usage={"prompt_tokens": 7})])
    answer = await scripted.complete(request, None)  # type: ignore[arg-type]
    assert answer.usage == TokenUsage(prompt_tokens=7)


def test_a_batch_tally_sums_the_usage_of_ended_tasks_once() -> None:
    tally = Tally(max_turns=None)
    tally.ended(0, "completed", TokenUsage(prompt_tokens=3))
    tally.ended(0, "completed", TokenUsage(prompt_tokens=3))  # a repeat
    tally.ended(1, "failed", TokenUsage(completion_tokens=2))
    tally.ended(2, "cancelled")
    counts = tally.counts()
    assert counts.usage == TokenUsage(prompt_tokens=3, completion_tokens=2)
    assert combine([counts, counts]).usage == TokenUsage(prompt_tokens=6, completion_tokens=4)


def test_a_summary_keeps_ended_tasks_as_ranges() -> None:
    snapshot = wire.BatchSnapshot(
        batch_id="batch-1",
        owner_id="o",
        agent_name="a",
        status="active",
        total_tasks=10,
        max_progress=10,
        counts=wire.BatchCounts(done_units=5, completed=5, terminal_indices=[0, 1, 2, 5, 7]),
        results=[wire.SubTaskResult(task_id="batch-1-0", status="completed", output="x")],
    )
    summary = wire.BatchSummary.of(snapshot)
    assert summary.ended == [(0, 2), (5, 5), (7, 7)]
    assert summary.counts.terminal_indices == []
    assert summary.snapshot() == snapshot.model_copy(update={"results": None})


def _batch(status: str, completed: int, failed: int, cancelled: int, progress: float) -> Batch:
    meta = BatchMetadata(
        owner_id="o",
        total_tasks=3,
        max_progress=3,
        status=status,
        completed=completed,
        failed=failed,
        cancelled=cancelled,
    )
    return Batch(id="batch-1", progress=progress, metadata=meta)


def test_the_cli_shows_failures_and_does_not_call_a_cancel_complete() -> None:
    assert batch_status_text(_batch("completed", 0, 3, 0, 100)) == "completed (all 3 tasks failed)"
    partly = _batch("completed", 2, 1, 0, 100)
    assert batch_status_text(partly) == "completed (1 of 3 ended tasks failed)"
    assert batch_status_text(_batch("completed", 3, 0, 0, 100)) == "completed"
    cancelled = _batch("cancelled", 1, 0, 2, 100)
    assert progress_text(cancelled) == "cancelled at 33.33% (1 of 3 tasks completed or failed)"
    assert usage_text(TokenUsage(prompt_tokens=1000, completion_tokens=234, cost=0.0012)) == (
        "1,234 (prompt 1,000, completion 234), cost 0.0012"
    )
