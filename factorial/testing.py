"""A scripted model: deterministic answers without a network, for tests and demos.

Each turn's answer is a *step*: a ``Reply``, a ``Fail`` (HTTP error for the first
attempts) or ``Garbage`` (unusable answer for the first attempts). The step is chosen
by the request's turn, and failures by its attempt, so the same request always gets
the same answer, whichever worker runs it::

    model = ScriptedModel([
        call_tool("search", query="temporal"),
        Fail(status_code=429, times=2, then=reply("done")),
    ])
"""

from __future__ import annotations

import asyncio
import inspect
import json
import re
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from pydantic import BaseModel, Field

from factorial._usage import TokenUsage
from factorial.errors import ModelBehaviorError, ModelHTTPError, UserError
from factorial.models import Model, ModelClients, ModelRequest, ModelResponse, ToolCall

__all__ = [
    "Call",
    "Fail",
    "Garbage",
    "Reply",
    "ScriptedModel",
    "Step",
    "call_tool",
    "reply",
]


class Call(BaseModel):
    """A scripted tool call.

    Attributes:
        name: The tool's name.
        arguments: The arguments, as a dict (JSON-encoded for you) or a raw string.
        id: The call id; defaults to ``call_{turn}_{index}``.
    """

    name: str
    arguments: dict[str, Any] | str = Field(default_factory=dict)
    id: str | None = None


class Reply(BaseModel):
    """A scripted answer.

    Attributes:
        content: The text answer.
        tool_calls: Tool calls to request.
        delay: Seconds to wait before answering.
        chunk_delay: Seconds between the chunks of a streamed answer (``Agent(stream=True)``
            gets the content word by word).
        usage: The token usage to report (a ``TokenUsage`` or a dict of its fields). None
            (the default) reports an estimate, about four characters a token: the request's
            messages as prompt tokens, the answer as completion tokens.
    """

    content: str | None = None
    tool_calls: list[Call] = Field(default_factory=list)
    delay: float = 0.0
    chunk_delay: float = 0.0
    usage: TokenUsage | None = None


class Fail(BaseModel):
    """Answer with an HTTP error for the first ``times`` attempts, then with ``then``.

    Attributes:
        status_code: The HTTP status to fail with.
        times: How many attempts fail.
        retry_after: The ``retry_after`` seconds to report.
        message: The error message.
        then: The answer once the failures are used up; ``Reply(content="ok")`` if None.
    """

    status_code: int = 503
    times: int = 1
    retry_after: float | None = None
    message: str = "scripted failure"
    then: Reply | None = None


class Garbage(BaseModel):
    """Answer with something unusable for the first ``times`` attempts, then with ``then``.

    Attributes:
        times: How many attempts get garbage.
        then: The answer afterwards; ``Reply(content="ok")`` if None.
    """

    times: int = 1
    then: Reply | None = None


Step = Reply | Fail | Garbage
"""One turn's scripted behavior."""

Script = Sequence[Step] | Callable[[ModelRequest], Step | Awaitable[Step]]


def call_tool(name: str, /, **arguments: Any) -> Reply:
    """Return a ``Reply`` that calls tool ``name`` with ``arguments``."""
    return Reply(tool_calls=[Call(name=name, arguments=arguments)])


def reply(content: str, *, delay: float = 0.0, chunk_delay: float = 0.0) -> Reply:
    """Return a ``Reply`` with text ``content``, sent after ``delay`` seconds.

    Streamed (``Agent(stream=True)``), its words come ``chunk_delay`` seconds apart.
    """
    return Reply(content=content, delay=delay, chunk_delay=chunk_delay)


class ScriptedModel(Model):
    """A model that answers from a script instead of a provider.

    Args:
        script: One step per turn, or a function (sync or async) from request to step.
        name: The model's name.
        context_window: The context window to report.
    """

    def __init__(
        self,
        script: Script,
        *,
        name: str = "scripted",
        context_window: int = 128_000,
    ) -> None:
        super().__init__(
            name=name,
            provider="scripted",
            provider_model_id=name,
            context_window=context_window,
        )
        if callable(script):
            self._script: Script = script
        else:
            self._script = tuple(_check_step(step) for step in script)

    async def complete(self, request: ModelRequest, clients: ModelClients) -> ModelResponse:
        """Answer ``request`` from the script; ``clients`` is unused.

        Raises:
            ModelHTTPError: The step is a ``Fail`` and this attempt is within ``times``.
            ModelBehaviorError: The step is ``Garbage`` within ``times``, or there is none.
        """
        step = await self._step_for(request)
        answer = _outcome(step, request)
        if answer.delay > 0:
            await asyncio.sleep(answer.delay)
        return _response(answer, request)

    async def stream(
        self, request: ModelRequest, clients: ModelClients, on_text: Callable[[str], None]
    ) -> ModelResponse:
        """Answer ``request`` from the script, its content given to ``on_text`` word by word.

        Each word (with the whitespace before it) is one chunk, ``chunk_delay`` seconds
        apart; the response is the one ``complete`` returns.

        Raises:
            ModelHTTPError: The step is a ``Fail`` and this attempt is within ``times``.
            ModelBehaviorError: The step is ``Garbage`` within ``times``, or there is none.
        """
        step = await self._step_for(request)
        answer = _outcome(step, request)
        if answer.delay > 0:
            await asyncio.sleep(answer.delay)
        for i, piece in enumerate(re.findall(r"\s*\S+|\s+", answer.content or "")):
            if i and answer.chunk_delay > 0:
                await asyncio.sleep(answer.chunk_delay)
            on_text(piece)
        return _response(answer, request)

    async def _step_for(self, request: ModelRequest) -> Step:
        if callable(self._script):
            step = self._script(request)
            if inspect.isawaitable(step):
                step = await step
            return _check_step(step)
        if not 0 <= request.turn < len(self._script):
            raise ModelBehaviorError(f"scripted model has no step for turn {request.turn}")
        return self._script[request.turn]


def _check_step(step: Any) -> Step:
    if not isinstance(step, Reply | Fail | Garbage):
        raise UserError(f"a scripted step must be a Reply, Fail or Garbage, not {step!r}")
    return step


def _outcome(step: Step, request: ModelRequest) -> Reply:
    """Return the reply for this attempt, or raise the scripted failure."""
    if isinstance(step, Reply):
        return step
    if request.attempt <= step.times:
        if isinstance(step, Fail):
            raise ModelHTTPError(
                step.message,
                status_code=step.status_code,
                retry_after=step.retry_after,
            )
        raise ModelBehaviorError(f"scripted garbage response (attempt {request.attempt})")
    return step.then if step.then is not None else Reply(content="ok")


def _response(answer: Reply, request: ModelRequest) -> ModelResponse:
    calls = [
        ToolCall(
            id=call.id or f"call_{request.turn}_{i}",
            name=call.name,
            arguments=call.arguments
            if isinstance(call.arguments, str)
            else json.dumps(call.arguments),
        )
        for i, call in enumerate(answer.tool_calls)
    ]
    response = ModelResponse(
        content=answer.content,
        tool_calls=calls,
        finish_reason="tool_calls" if calls else "stop",
    )
    usage = answer.usage if answer.usage is not None else _estimated_usage(request, response)
    response.usage = usage
    return response


def _estimated_usage(request: ModelRequest, response: ModelResponse) -> TokenUsage:
    """About four characters a token, as for English text; deterministic."""
    prompt = json.dumps(request.messages) + json.dumps(request.tools)
    completion = json.dumps(response.assistant_message())
    return TokenUsage(
        prompt_tokens=max(1, len(prompt) // 4), completion_tokens=max(1, len(completion) // 4)
    )
