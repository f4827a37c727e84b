"""Streamed completions over real HTTP (server-sent events), the scripted model's stream, and
the group commit of chunk events."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from factorial import Agent, TokenUsage
from factorial._chunks import ChunkPublisher
from factorial.errors import ModelBehaviorError, ModelHTTPError, UserError
from factorial.events import COMPLETION_CHUNK, EventPublisher
from factorial.models import Model, ModelClients, ModelRequest, ModelResponse
from factorial.testing import ScriptedModel, call_tool, reply
from tests.unit.test_openai_http import (
    SEARCH_TOOL,
    Canned,
    FakeOpenAIServer,
    _completion,
    _model,
    _request,
    clients,
    server,
)

__all__ = ["clients", "server"]  # fixtures, used by name


def text_chunks(
    pieces: list[str], *, finish_reason: str | None = "stop", usage: bool = True
) -> list[dict[str, Any] | str]:
    """The chunks of a streamed text answer: a role chunk, one per piece, finish, usage."""
    deltas: list[dict[str, Any]] = [{"role": "assistant", "content": ""}]
    deltas += [{"content": piece} for piece in pieces]
    chunks: list[dict[str, Any] | str] = [_chunk(d) for d in deltas]
    if finish_reason is not None:
        chunks.append(_chunk({}, finish_reason))
    if usage:
        chunks.append(_usage_chunk())
    return chunks


def tool_call_chunks(calls: list[tuple[str, str, list[str]]]) -> list[dict[str, Any] | str]:
    """The chunks of streamed tool calls (id, name, argument fragments), fragments interleaved."""
    chunks: list[dict[str, Any] | str] = [_chunk({"role": "assistant", "content": None})]
    for index, (call_id, name, _) in enumerate(calls):
        head = {"index": index, "id": call_id, "type": "function"}
        function = {"name": name, "arguments": ""}
        chunks.append(_chunk({"tool_calls": [{**head, "function": function}]}))
    longest = max(len(fragments) for _, _, fragments in calls)
    for i in range(longest):
        for index, (_, _, fragments) in enumerate(calls):
            if i < len(fragments):
                delta = {"index": index, "function": {"arguments": fragments[i]}}
                chunks.append(_chunk({"tool_calls": [delta]}))
    chunks += [_chunk({}, "tool_calls"), _usage_chunk()]
    return chunks


def _chunk(delta: dict[str, Any], finish_reason: str | None = None) -> dict[str, Any]:
    return {
        "id": "chatcmpl-s",
        "object": "chat.completion.chunk",
        "created": 1_700_000_000,
        "model": "test-model",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}],
    }


def _usage_chunk() -> dict[str, Any]:
    return {
        "id": "chatcmpl-s",
        "object": "chat.completion.chunk",
        "created": 1_700_000_000,
        "model": "test-model",
        "choices": [],
        "usage": {"prompt_tokens": 20, "completion_tokens": 9, "total_tokens": 29},
    }


async def test_streamed_text(server: FakeOpenAIServer, clients: ModelClients) -> None:
    pieces = ["Tem", "poral", " is", " dur", "able."]
    server.canned = Canned(chunks=text_chunks(pieces), chunk_delay=0.01)
    seen: list[str] = []
    response = await _model(server).stream(_request(), clients, seen.append)
    assert seen == pieces
    assert response.content == "Temporal is durable."
    assert response.tool_calls == []
    assert response.finish_reason == "stop"
    assert response.usage == TokenUsage(prompt_tokens=20, completion_tokens=9)
    body = server.requests[0]
    assert body["stream"] is True
    assert body["stream_options"] == {"include_usage": True}
    assert body["messages"][-1] == {"role": "user", "content": "Say hi."}


async def test_streamed_tool_calls_reassemble(
    server: FakeOpenAIServer, clients: ModelClients
) -> None:
    calls = [
        ("call_a", "search", ['{"q', '": "tem', 'poral"}']),
        ("call_b", "search", ["{", '"q": ', '"durable', ' execution"', "}"]),
    ]
    server.canned = Canned(chunks=tool_call_chunks(calls))
    seen: list[str] = []
    response = await _model(server).stream(_request(tools=[SEARCH_TOOL]), clients, seen.append)
    assert seen == []  # tool calls are no text
    assert response.finish_reason == "tool_calls"
    assert [(c.id, c.name, json.loads(c.arguments)) for c in response.tool_calls] == [
        ("call_a", "search", {"q": "temporal"}),
        ("call_b", "search", {"q": "durable execution"}),
    ]
    assert server.requests[0]["tools"] == [SEARCH_TOOL]
    # The same ModelResponse as the answer without streaming.
    message = response.assistant_message()
    server.canned = Canned(body=_completion(message, finish_reason="tool_calls"))
    plain = await _model(server).complete(_request(tools=[SEARCH_TOOL]), clients)
    assert plain.model_dump(exclude={"usage"}) == response.model_dump(exclude={"usage"})


async def test_stream_error_status(server: FakeOpenAIServer, clients: ModelClients) -> None:
    server.canned = Canned(
        status=429, body={"error": {"message": "slow down"}}, headers={"Retry-After": "3"}
    )
    with pytest.raises(ModelHTTPError) as info:
        await _model(server).stream(_request(), clients, lambda _: None)
    assert (info.value.status_code, info.value.retryable, info.value.retry_after) == (429, True, 3)


async def test_stream_that_ends_early_is_retryable_garbage(
    server: FakeOpenAIServer, clients: ModelClients
) -> None:
    server.canned = Canned(chunks=text_chunks(["half an"], finish_reason=None, usage=False))
    with pytest.raises(ModelBehaviorError, match="no finish_reason"):
        await _model(server).stream(_request(), clients, lambda _: None)


async def test_stream_without_chunks(server: FakeOpenAIServer, clients: ModelClients) -> None:
    server.canned = Canned(chunks=[])
    with pytest.raises(ModelBehaviorError, match="without a single chunk"):
        await _model(server).stream(_request(), clients, lambda _: None)


async def test_stream_setting_is_refused(server: FakeOpenAIServer, clients: ModelClients) -> None:
    with pytest.raises(UserError, match=r"Agent\(stream=True\)"):
        await _model(server).stream(_request(settings={"stream": True}), clients, print)
    assert server.requests == []


async def test_scripted_model_streams_word_by_word() -> None:
    model = ScriptedModel([reply("one two  three", chunk_delay=0.001), call_tool("add", a=1)])
    seen: list[str] = []
    response = await model.stream(_request(turn=0), ModelClients(), seen.append)
    assert seen == ["one", " two", "  three"]
    assert response == await model.complete(_request(turn=0), ModelClients())
    tool = await model.stream(_request(turn=1), ModelClients(), seen.append)
    assert len(seen) == 3 and tool.tool_calls[0].name == "add"


class _Recorder:
    """An event sink that counts the flushes asked of it."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        self.flushes = 0

    async def flush(self) -> None:
        self.flushes += 1

    def publisher(self) -> EventPublisher:
        return EventPublisher(
            self.events.append, task_id="t", owner_id="o", agent_name="a", flush=self.flush
        )


async def test_chunks_are_group_committed() -> None:
    recorder = _Recorder()
    words = [f" w{i}" for i in range(300)]
    async with ChunkPublisher(recorder.publisher(), turn=2, attempt=3, interval=0.05) as chunks:
        for i, word in enumerate(words):
            chunks.add(word)
            if i % 100 == 99:
                await asyncio.sleep(0.2)  # longer than the interval: a group goes out
    assert all(e["event_type"] == COMPLETION_CHUNK for e in recorder.events)
    assert 2 <= len(recorder.events) < len(words)
    assert "".join(e["data"] for e in recorder.events) == "".join(words)
    assert [e["index"] for e in recorder.events] == list(range(len(recorder.events)))
    assert {(e["turn"], e["attempt"]) for e in recorder.events} == {(2, 3)}
    assert recorder.flushes >= 2  # each timed group is flushed; the rest goes with the turn


async def test_chunks_left_are_published_after_a_failure() -> None:
    recorder = _Recorder()
    with pytest.raises(RuntimeError):
        async with ChunkPublisher(recorder.publisher(), turn=0, attempt=1, interval=60) as chunks:
            chunks.add("partial")
            chunks.add(" answer")
            raise RuntimeError("stream broke")
    assert [e["data"] for e in recorder.events] == ["partial answer"]
    assert recorder.flushes == 0


async def test_chunks_without_a_publisher_are_dropped() -> None:
    async with ChunkPublisher(None, turn=0, attempt=1) as chunks:
        chunks.add("nothing to publish to")


async def test_inline_run_streams_into_on_event() -> None:
    events: list[dict[str, Any]] = []
    agent = Agent(
        name="inline_streamer",
        model=ScriptedModel([call_tool("add", a=1, b=2), reply("three, it is")]),
        tools=[add],
        stream=True,
    )
    run = await agent.run_inline({"query": "1 + 2?"}, on_event=events.append)
    assert run.output == "three, it is"
    chunks = [e for e in events if e["event_type"] == COMPLETION_CHUNK]
    assert "".join(c["data"] for c in chunks) == "three, it is"
    assert {c["turn"] for c in chunks} == {1}


def add(a: int, b: int) -> int:
    """Add two numbers."""
    return a + b


class _Echo(Model):
    """A custom model that only knows how to ``complete``."""

    async def complete(self, request: ModelRequest, clients: ModelClients) -> ModelResponse:
        return ModelResponse(content=f"echo {request.turn}", finish_reason="stop")


async def test_a_model_without_stream_gives_its_answer_as_one_delta() -> None:
    seen: list[str] = []
    response = await _Echo("echo", "custom", "echo", 1000).stream(
        _request(turn=4), ModelClients(), seen.append
    )
    assert response.content == "echo 4" and seen == ["echo 4"]


async def test_stream_that_breaks_off_is_a_retryable_http_error(
    server: FakeOpenAIServer, clients: ModelClients
) -> None:
    # The body promises more bytes than come before the connection closes.
    server.canned = Canned(
        chunks=text_chunks(["cut"], finish_reason=None, usage=False),
        headers={"Content-Length": "100000"},
        done=False,
    )
    with pytest.raises(ModelHTTPError, match="RemoteProtocolError") as info:
        await _model(server).stream(_request(), clients, lambda _: None)
    assert (info.value.status_code, info.value.retryable) == (0, True)


async def test_stream_that_stalls_times_out(
    server: FakeOpenAIServer, clients: ModelClients
) -> None:
    server.canned = Canned(chunks=text_chunks(["a", "b"]), chunk_delay=3)
    seen: list[str] = []
    with pytest.raises(ModelHTTPError, match="timed out") as info:
        await _model(server).stream(_request(timeout=0.5), clients, seen.append)
    assert (info.value.status_code, info.value.retryable) == (408, True)
