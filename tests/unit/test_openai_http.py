"""The real OpenAI client over real HTTP, against a small local OpenAI-compatible server."""

from __future__ import annotations

import contextlib
import email.utils
import json
import socket
import threading
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from factorial import TokenUsage
from factorial._openai import parse_retry_after
from factorial.errors import ModelBehaviorError, ModelHTTPError
from factorial.models import Model, ModelClients, ModelRequest, openai_compatible

MESSAGES = [
    {"role": "system", "content": "You are terse."},
    {"role": "user", "content": "Say hi."},
]
SEARCH_TOOL = {
    "type": "function",
    "function": {
        "name": "search",
        "description": "Search the web.",
        "parameters": {"type": "object", "properties": {"q": {"type": "string"}}},
    },
}


@dataclass
class Canned:
    """One canned HTTP answer."""

    status: int = 200
    body: bytes | str | dict[str, Any] = b""
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str = "application/json"
    delay: float = 0.0
    #: Server-sent events for a request with ``stream: true`` (each a chunk dict, or raw text).
    chunks: list[dict[str, Any] | str] | None = None
    #: Seconds between two streamed chunks.
    chunk_delay: float = 0.0
    #: Whether the stream ends with ``data: [DONE]``.
    done: bool = True


class FakeOpenAIServer(ThreadingHTTPServer):
    """Serves POST /v1/chat/completions with one canned answer and records requests."""

    daemon_threads = False  # so server_close() joins handler threads

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.canned = Canned()
        self.requests: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self.stopping = threading.Event()

    @property
    def base_url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}/v1"


class _Handler(BaseHTTPRequestHandler):
    server: FakeOpenAIServer

    def do_POST(self) -> None:
        length = int(self.headers.get("content-length", "0"))
        raw = self.rfile.read(length)
        if self.path != "/v1/chat/completions":
            self._send(Canned(status=404, body={"error": {"message": "not found"}}))
            return
        self.server.requests.append(json.loads(raw))
        self.server.headers.append({k.lower(): v for k, v in self.headers.items()})
        canned = self.server.canned
        if canned.delay:
            self.server.stopping.wait(canned.delay)
        if canned.chunks is not None and self.server.requests[-1].get("stream"):
            self._stream(canned)
        else:
            self._send(canned)

    def _stream(self, canned: Canned) -> None:
        """Send ``canned.chunks`` as server-sent events, then ``[DONE]``; the connection closes."""
        assert canned.chunks is not None
        try:
            self.send_response(canned.status)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Cache-Control", "no-cache")
            for name, value in canned.headers.items():
                self.send_header(name, value)
            self.end_headers()
            for i, chunk in enumerate([*canned.chunks, *(["[DONE]"] if canned.done else [])]):
                if i and canned.chunk_delay and self.server.stopping.wait(canned.chunk_delay):
                    return
                data = chunk if isinstance(chunk, str) else json.dumps(chunk)
                self.wfile.write(f"data: {data}\n\n".encode())
                self.wfile.flush()
        except OSError:
            pass  # the client (or its worker) went away mid-stream

    def _send(self, canned: Canned) -> None:
        body = canned.body
        if isinstance(body, dict):
            body = json.dumps(body)
        if isinstance(body, str):
            body = body.encode()
        try:
            self.send_response(canned.status)
            self.send_header("Content-Type", canned.content_type)
            self.send_header("Content-Length", str(len(body)))
            for name, value in canned.headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(body)
        except OSError:
            pass  # the client gave up (timeout test)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        """Keep test output quiet."""


@contextlib.contextmanager
def running(srv: FakeOpenAIServer) -> Iterator[FakeOpenAIServer]:
    """Serve ``srv`` in a thread; shut it down and join it afterwards."""
    thread = threading.Thread(target=srv.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield srv
    finally:
        srv.stopping.set()
        srv.shutdown()
        srv.server_close()
        thread.join(timeout=5)


@pytest.fixture
def server() -> Iterator[FakeOpenAIServer]:
    """A running fake server; shut down and joined after the test."""
    with running(FakeOpenAIServer()) as srv:
        yield srv


@pytest.fixture
async def clients() -> AsyncIterator[ModelClients]:
    """Model clients, closed after the test."""
    model_clients = ModelClients()
    yield model_clients
    await model_clients.aclose()


def _completion(message: dict[str, Any], finish_reason: str = "stop") -> dict[str, Any]:
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 1_700_000_000,
        "model": "test-model",
        "choices": [{"index": 0, "message": message, "finish_reason": finish_reason}],
        "usage": {"prompt_tokens": 12, "completion_tokens": 3, "total_tokens": 15},
    }


def _model(server: FakeOpenAIServer) -> Model:
    return openai_compatible("test-model", base_url=server.base_url)


def _request(**overrides: Any) -> ModelRequest:
    return ModelRequest(**{"messages": MESSAGES, "timeout": 5.0, **overrides})


async def _http_error(server: FakeOpenAIServer, clients: ModelClients) -> ModelHTTPError:
    with pytest.raises(ModelHTTPError) as info:
        await _model(server).complete(_request(), clients)
    return info.value


async def _behavior_error(server: FakeOpenAIServer, clients: ModelClients) -> ModelBehaviorError:
    with pytest.raises(ModelBehaviorError) as info:
        await _model(server).complete(_request(), clients)
    return info.value


async def test_text_answer(server: FakeOpenAIServer, clients: ModelClients) -> None:
    server.canned = Canned(body=_completion({"role": "assistant", "content": "hi"}))
    response = await _model(server).complete(_request(), clients)
    assert response.content == "hi"
    assert response.tool_calls == []
    assert response.finish_reason == "stop"
    assert response.usage == TokenUsage(prompt_tokens=12, completion_tokens=3)
    assert response.usage.total_tokens == 15
    assert response.assistant_message() == {"role": "assistant", "content": "hi"}
    assert len(server.requests) == 1


async def test_tool_call_answer(server: FakeOpenAIServer, clients: ModelClients) -> None:
    message = {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {
                "id": "call_a",
                "type": "function",
                "function": {"name": "search", "arguments": '{"q": "x"}'},
            },
            {"id": "call_b", "type": "function", "function": {"name": "search", "arguments": "{}"}},
        ],
    }
    server.canned = Canned(body=_completion(message, finish_reason="tool_calls"))
    response = await _model(server).complete(_request(tools=[SEARCH_TOOL]), clients)
    assert response.content is None
    assert response.finish_reason == "tool_calls"
    assert [(c.id, c.name, c.arguments) for c in response.tool_calls] == [
        ("call_a", "search", '{"q": "x"}'),
        ("call_b", "search", "{}"),
    ]
    assert response.assistant_message()["tool_calls"] == message["tool_calls"]


async def test_request_body(server: FakeOpenAIServer, clients: ModelClients) -> None:
    server.canned = Canned(body=_completion({"role": "assistant", "content": "ok"}))
    settings = {
        "temperature": 0.3,
        "tool_choice": "required",
        "parallel_tool_calls": False,
        "max_completion_tokens": 64,
    }
    await _model(server).complete(_request(tools=[SEARCH_TOOL], settings=settings), clients)
    body = server.requests[0]
    assert body["model"] == "test-model"
    assert body["messages"] == MESSAGES
    assert body["tools"] == [SEARCH_TOOL]
    for key, value in settings.items():
        assert body[key] == value
    assert server.headers[0]["authorization"] == "Bearer unused"


async def test_request_without_tools_omits_them(
    server: FakeOpenAIServer, clients: ModelClients
) -> None:
    server.canned = Canned(body=_completion({"role": "assistant", "content": "ok"}))
    await _model(server).complete(_request(), clients)
    assert "tools" not in server.requests[0]
    assert "temperature" not in server.requests[0]


async def test_429_retry_after_and_no_client_retry(
    server: FakeOpenAIServer, clients: ModelClients
) -> None:
    server.canned = Canned(
        status=429,
        body={"error": {"message": "slow down", "type": "rate_limit"}},
        headers={"Retry-After": "7"},
    )
    error = await _http_error(server, clients)
    assert error.status_code == 429
    assert error.retryable is True
    assert error.retry_after == 7
    assert "slow down" in str(error)
    assert len(server.requests) == 1


async def test_retry_after_ms_header(server: FakeOpenAIServer, clients: ModelClients) -> None:
    server.canned = Canned(status=429, body={}, headers={"retry-after-ms": "1500"})
    error = await _http_error(server, clients)
    assert error.retry_after == 1.5


async def test_503_is_retryable(server: FakeOpenAIServer, clients: ModelClients) -> None:
    server.canned = Canned(status=503, body={"error": {"message": "overloaded"}})
    error = await _http_error(server, clients)
    assert (error.status_code, error.retryable, error.retry_after) == (503, True, None)
    assert len(server.requests) == 1


async def test_400_is_not_retryable(server: FakeOpenAIServer, clients: ModelClients) -> None:
    server.canned = Canned(status=400, body={"error": {"message": "bad tool schema"}})
    error = await _http_error(server, clients)
    assert (error.status_code, error.retryable) == (400, False)
    assert "bad tool schema" in str(error)


async def test_body_not_json(server: FakeOpenAIServer, clients: ModelClients) -> None:
    server.canned = Canned(body="this is not json {")
    error = await _behavior_error(server, clients)
    assert "not valid JSON" in str(error)


async def test_body_not_json_content_type(server: FakeOpenAIServer, clients: ModelClients) -> None:
    server.canned = Canned(body="<html>gateway</html>", content_type="text/html")
    error = await _behavior_error(server, clients)
    assert "not a chat completion" in str(error)


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"id": "x", "choices": []}, "no choices"),
        ({"id": "x"}, "no choices"),
        ({"choices": [{"index": 0, "finish_reason": "stop"}]}, "no message"),
        ({"choices": ["nope"]}, "no message"),
        ([1, 2, 3], "not a chat completion"),
    ],
)
async def test_unusable_completion(
    server: FakeOpenAIServer, clients: ModelClients, body: Any, expected: str
) -> None:
    server.canned = Canned(body=json.dumps(body))
    error = await _behavior_error(server, clients)
    assert expected in str(error)


@pytest.mark.parametrize(
    "tool_call",
    [
        {"type": "function", "function": {"name": "search", "arguments": "{}"}},
        {"id": "c", "type": "function", "function": {"arguments": "{}"}},
        {"id": "c", "type": "function", "function": {"name": "search", "arguments": 5}},
        {"id": "c", "type": "custom", "custom": {"name": "search", "input": "x"}},
    ],
)
async def test_malformed_tool_call(
    server: FakeOpenAIServer, clients: ModelClients, tool_call: dict[str, Any]
) -> None:
    message = {"role": "assistant", "content": None, "tool_calls": [tool_call]}
    server.canned = Canned(body=_completion(message, finish_reason="tool_calls"))
    error = await _behavior_error(server, clients)
    assert "tool call" in str(error)


async def test_connection_refused(clients: ModelClients) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    model = openai_compatible("m", base_url=f"http://127.0.0.1:{port}/v1")
    with pytest.raises(ModelHTTPError) as info:
        await model.complete(_request(), clients)
    assert (info.value.status_code, info.value.retryable) == (0, True)
    assert f"127.0.0.1:{port}" in str(info.value)


async def test_timeout(server: FakeOpenAIServer, clients: ModelClients) -> None:
    server.canned = Canned(body=_completion({"role": "assistant", "content": "late"}), delay=5)
    started = time.monotonic()
    with pytest.raises(ModelHTTPError) as info:
        await _model(server).complete(_request(timeout=0.5), clients)
    assert time.monotonic() - started < 3
    assert (info.value.status_code, info.value.retryable) == (408, True)
    assert len(server.requests) == 1


def test_parse_retry_after() -> None:
    assert parse_retry_after({}) is None
    assert parse_retry_after({"retry-after": "7"}) == 7
    assert parse_retry_after({"retry-after": "2.5"}) == 2.5
    assert parse_retry_after({"retry-after-ms": "250", "retry-after": "9"}) == 0.25
    assert parse_retry_after({"retry-after": "-3"}) == 0
    assert parse_retry_after({"retry-after": "soon"}) is None
    future = email.utils.formatdate(time.time() + 30, usegmt=True)
    assert 25 <= parse_retry_after({"retry-after": future}) <= 31
    past = email.utils.formatdate(time.time() - 30, usegmt=True)
    assert parse_retry_after({"retry-after": past}) == 0
