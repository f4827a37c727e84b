"""``fallback_models``: the model of each attempt, its prices, and bad arguments."""

from __future__ import annotations

import pytest

from factorial import Agent, AgentContext, ExecutionContext, fallback_models
from factorial.errors import UserError
from factorial.models import FallbackModel, Model, ModelClients, ModelRequest, TokenUsage
from factorial.testing import Reply, ScriptedModel


def scripted(name: str) -> ScriptedModel:
    usage = TokenUsage(prompt_tokens=1_000_000, completion_tokens=0)
    return ScriptedModel(lambda request: Reply(content=name, usage=usage), name=name)


def test_each_attempt_moves_to_the_next_model_and_stays_on_the_last() -> None:
    a, b, c = scripted("a"), scripted("b"), scripted("c")
    model = fallback_models(a, b, c)
    assert isinstance(model, FallbackModel)
    assert [model.for_attempt(n).name for n in (0, 1, 2, 3, 4, 9)] == [
        "a",
        "a",
        "b",
        "c",
        "c",
        "c",
    ]
    assert model.name == "fallback(a, b, c)"
    assert a.for_attempt(5) is a


def test_nested_fallbacks_are_flattened() -> None:
    a, b, c = scripted("a"), scripted("b"), scripted("c")
    model = fallback_models(fallback_models(a, b), c)
    assert [m.name for m in model.models] == ["a", "b", "c"]  # type: ignore[attr-defined]
    assert model.context_window == min(a.context_window, b.context_window, c.context_window)


@pytest.mark.parametrize("args", [("not a model", "x"), (None, None)])
def test_refuses_what_is_not_a_model(args: tuple[object, object]) -> None:
    with pytest.raises(UserError, match="two or more Model"):
        fallback_models(*args)  # type: ignore[arg-type]


async def test_complete_answers_with_the_model_of_the_attempt_at_its_prices() -> None:
    model = fallback_models(
        scripted("a").with_prices(prompt=1.0, completion=1.0),
        scripted("b").with_prices(prompt=3.0, completion=1.0),
    )
    request = ModelRequest(messages=[{"role": "user", "content": "hi"}], attempt=2)
    response = await model.complete(request, ModelClients())
    assert response.content == "b"
    assert response.usage is not None and response.usage.cost == 3.0


@pytest.mark.parametrize(("attempt", "expected"), [(1, "a"), (2, "b"), (3, "b")])
async def test_agent_completion_names_the_chosen_model_and_prices_with_it(
    attempt: int, expected: str
) -> None:
    primary: Model = scripted("a").with_prices(prompt=1.0, completion=1.0)
    agent = Agent(model=fallback_models(primary, scripted("b").with_prices(prompt=2, completion=2)))
    token = ExecutionContext(task_id="t", owner_id="o")._bind()
    try:
        ctx = AgentContext(query="hi", attempt=attempt)
        response = await agent.completion(ctx, [{"role": "user", "content": "hi"}])
    finally:
        ExecutionContext._unbind(token)
    assert response.content == expected
    assert response.model == expected
    assert response.usage is not None
    assert response.usage.cost == (1.0 if expected == "a" else 2.0)


async def test_the_completion_events_name_the_model() -> None:
    events: list[dict[str, object]] = []
    agent = Agent(model=fallback_models(scripted("a"), scripted("b")))
    await agent.run_inline({"query": "hi"}, on_event=events.append)
    started = next(e for e in events if e["event_type"] == "progress_update_completion_started")
    completed = next(e for e in events if e["event_type"] == "progress_update_completion_completed")
    assert started["data"] == {"model": "a"}
    assert completed["data"]["model"] == "a"  # type: ignore[index]
