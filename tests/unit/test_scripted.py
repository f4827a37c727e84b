"""Tests for the scripted model."""

from __future__ import annotations

import asyncio
import json
import time

import pytest

from factorial.errors import ModelBehaviorError, ModelHTTPError, UserError
from factorial.models import ModelClients, ModelRequest, ModelResponse
from factorial.testing import (
    Call,
    Fail,
    Garbage,
    Reply,
    ScriptedModel,
    Step,
    call_tool,
    reply,
)

CLIENTS = ModelClients()  # never used by the scripted model; creates no client


def _request(turn: int = 0, attempt: int = 1) -> ModelRequest:
    return ModelRequest(
        messages=[{"role": "user", "content": "hi"}], turn=turn, attempt=attempt, task_id="t1"
    )


async def _complete(model: ScriptedModel, turn: int = 0, attempt: int = 1) -> ModelResponse:
    return await model.complete(_request(turn, attempt), CLIENTS)


def test_helpers_build_steps() -> None:
    assert reply("hello") == Reply(content="hello")
    assert reply("x", delay=0.5).delay == 0.5
    assert call_tool("search", query="q", limit=3) == Reply(
        tool_calls=[Call(name="search", arguments={"query": "q", "limit": 3})]
    )


def test_model_identity() -> None:
    model = ScriptedModel([reply("x")], name="demo", context_window=1000)
    assert (model.name, model.provider, model.provider_model_id) == ("demo", "scripted", "demo")
    assert model.context_window == 1000
    assert model.base_url is None


async def test_list_script_steps_by_turn() -> None:
    model = ScriptedModel([call_tool("search", query="temporal"), reply("done")])
    first = await _complete(model, turn=0)
    assert first.content is None
    assert first.finish_reason == "tool_calls"
    assert [(c.id, c.name) for c in first.tool_calls] == [("call_0_0", "search")]
    assert json.loads(first.tool_calls[0].arguments) == {"query": "temporal"}
    second = await _complete(model, turn=1)
    assert (second.content, second.tool_calls, second.finish_reason) == ("done", [], "stop")
    assert await _complete(model, turn=0) == first  # stateless: same request, same answer


async def test_tool_call_ids_and_raw_arguments() -> None:
    step = Reply(
        content="thinking",
        tool_calls=[Call(name="a"), Call(name="b", arguments='{"raw": 1}', id="mine")],
    )
    response = await _complete(ScriptedModel([reply("x"), reply("y"), step]), turn=2)
    assert response.content == "thinking"
    assert [(c.id, c.name, c.arguments) for c in response.tool_calls] == [
        ("call_2_0", "a", "{}"),
        ("mine", "b", '{"raw": 1}'),
    ]


async def test_past_end_of_script() -> None:
    model = ScriptedModel([reply("only")])
    with pytest.raises(ModelBehaviorError, match="scripted model has no step for turn 1"):
        await _complete(model, turn=1)


async def test_fail_then_answer_by_attempt() -> None:
    model = ScriptedModel([Fail(status_code=429, times=2, retry_after=3, then=reply("finally"))])
    for attempt in (1, 2):
        with pytest.raises(ModelHTTPError) as info:
            await _complete(model, attempt=attempt)
        assert (info.value.status_code, info.value.retry_after) == (429, 3)
        assert info.value.retryable is True
        assert str(info.value) == "scripted failure"
    assert (await _complete(model, attempt=3)).content == "finally"


async def test_fail_defaults() -> None:
    model = ScriptedModel([Fail()])
    with pytest.raises(ModelHTTPError) as info:
        await _complete(model)
    assert (info.value.status_code, info.value.retry_after) == (503, None)
    assert (await _complete(model, attempt=2)).content == "ok"


async def test_fail_non_retryable_status() -> None:
    model = ScriptedModel([Fail(status_code=400, message="bad request")])
    with pytest.raises(ModelHTTPError, match="bad request") as info:
        await _complete(model)
    assert info.value.retryable is False


async def test_garbage_then_answer() -> None:
    model = ScriptedModel([Garbage(times=2, then=call_tool("finish", answer=42))])
    for attempt in (1, 2):
        with pytest.raises(ModelBehaviorError):
            await _complete(model, attempt=attempt)
    response = await _complete(model, attempt=3)
    assert response.tool_calls[0].name == "finish"
    assert (await _complete(ScriptedModel([Garbage()]), attempt=2)).content == "ok"


async def test_sync_callable_script() -> None:
    def script(request: ModelRequest) -> Step:
        return reply(f"turn {request.turn} of {request.task_id}")

    model = ScriptedModel(script)
    assert (await _complete(model, turn=5)).content == "turn 5 of t1"


async def test_async_callable_script() -> None:
    async def script(request: ModelRequest) -> Step:
        await asyncio.sleep(0)
        return Fail(times=1) if request.turn == 0 else reply("later")

    model = ScriptedModel(script)
    with pytest.raises(ModelHTTPError):
        await _complete(model, turn=0)
    assert (await _complete(model, turn=0, attempt=2)).content == "ok"
    assert (await _complete(model, turn=1)).content == "later"


async def test_callable_returning_non_step() -> None:
    model = ScriptedModel(lambda request: "not a step")
    with pytest.raises(UserError, match="must be a Reply, Fail or Garbage"):
        await _complete(model)


def test_list_with_non_step_rejected() -> None:
    with pytest.raises(UserError):
        ScriptedModel([reply("a"), "b"])  # type: ignore[list-item]


async def test_delay_waits() -> None:
    started = time.monotonic()
    response = await _complete(ScriptedModel([reply("slow", delay=0.1)]))
    assert response.content == "slow"
    assert time.monotonic() - started >= 0.09


async def test_delay_is_cancellable() -> None:
    model = ScriptedModel([reply("never", delay=30)])
    task = asyncio.create_task(_complete(model))
    await asyncio.sleep(0.05)
    started = time.monotonic()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert time.monotonic() - started < 1


async def test_fail_then_reply_delay_applies() -> None:
    model = ScriptedModel([Fail(then=reply("x", delay=30))])
    task = asyncio.create_task(_complete(model, attempt=2))
    await asyncio.sleep(0.05)
    assert not task.done()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
