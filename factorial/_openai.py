"""OpenAI chat-completions calls and the mapping of their failures to Factorial errors."""

from __future__ import annotations

import email.utils
import json
import math
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import openai
from openai.lib.streaming.chat import ChatCompletionStreamState

from factorial._model_types import ModelRequest, ModelResponse, ToolCall
from factorial._usage import TokenUsage
from factorial.errors import FactorialError, ModelBehaviorError, ModelHTTPError, UserError

if TYPE_CHECKING:
    from factorial.models import Model

__all__ = [
    "chat_completion",
    "chat_completion_stream",
    "map_openai_error",
    "parse_retry_after",
    "to_model_response",
]


async def chat_completion(
    client: openai.AsyncOpenAI, model: Model, request: ModelRequest
) -> ModelResponse:
    """Run one chat completion and convert the answer.

    Raises:
        ModelHTTPError: The provider answered with an error status, timed out, or was unreachable.
        ModelBehaviorError: The provider's answer cannot be used.
    """
    try:
        completion = await client.chat.completions.create(
            model=model.provider_model_id,
            messages=request.messages,  # type: ignore[arg-type]  # plain dicts, not its TypedDicts
            timeout=request.timeout,
            **_extra(request),
        )
    except (openai.OpenAIError, json.JSONDecodeError) as exc:
        raise map_openai_error(exc) from exc
    return to_model_response(completion)


async def chat_completion_stream(
    client: openai.AsyncOpenAI, model: Model, request: ModelRequest, on_text: Callable[[str], None]
) -> ModelResponse:
    """Run one streamed chat completion: ``on_text`` gets each text delta as it arrives.

    The chunks are reassembled (text, and tool calls from their index-keyed argument
    fragments) by the SDK's ``ChatCompletionStreamState`` into the same ``ModelResponse`` as
    ``chat_completion``; ``stream_options.include_usage`` asks for the token usage at the end.

    Raises:
        ModelHTTPError: The provider answered with an error status, timed out, was unreachable,
            or the stream broke off.
        ModelBehaviorError: The provider's answer cannot be used.
    """
    state: ChatCompletionStreamState[Any] = ChatCompletionStreamState()
    chunks = 0
    try:
        stream = await client.chat.completions.create(  # type: ignore[call-overload]  # dicts
            model=model.provider_model_id,
            messages=request.messages,
            timeout=request.timeout,
            stream=True,
            stream_options={"include_usage": True},
            **_extra(request),
        )
        async with stream:
            async for chunk in stream:
                state.handle_chunk(chunk)
                chunks += 1
                for choice in chunk.choices:
                    if choice.index == 0 and choice.delta.content:
                        on_text(choice.delta.content)
    except (openai.OpenAIError, json.JSONDecodeError) as exc:
        raise map_openai_error(exc) from exc
    if not chunks:
        raise ModelBehaviorError("model stream ended without a single chunk")
    response = to_model_response(state.get_final_completion())
    if response.finish_reason is None:
        raise ModelBehaviorError("model stream ended before the answer did (no finish_reason)")
    return response


def _extra(request: ModelRequest) -> dict[str, Any]:
    """The request's settings and tools as keyword arguments.

    Raises:
        UserError: The settings ask for streaming, which ``Agent(stream=True)`` decides.
    """
    if "stream" in request.settings or "stream_options" in request.settings:
        raise UserError("stream with Agent(stream=True), not with ModelSettings(stream=...)")
    extra: dict[str, Any] = dict(request.settings)
    if request.tools:
        extra["tools"] = request.tools
    return extra


def map_openai_error(exc: BaseException) -> FactorialError:
    """Translate an OpenAI SDK (or response decoding) error into a Factorial error."""
    if isinstance(exc, openai.APIStatusError):
        return ModelHTTPError(
            f"model provider answered HTTP {exc.status_code}: {exc.message}",
            status_code=exc.status_code,
            retry_after=parse_retry_after(exc.response.headers),
        )
    if isinstance(exc, openai.APITimeoutError):
        return ModelHTTPError(f"model request timed out: {_url(exc)}", status_code=408)
    if isinstance(exc, openai.APIConnectionError):
        return ModelHTTPError(
            f"could not reach the model provider at {_url(exc)}: {_cause(exc)}",
            status_code=0,
            retryable=True,
        )
    if isinstance(exc, openai.APIResponseValidationError):
        return ModelBehaviorError(f"model response does not match the expected schema: {exc}")
    if isinstance(exc, json.JSONDecodeError):
        return ModelBehaviorError(f"model response body is not valid JSON: {exc}")
    return ModelBehaviorError(f"model call failed: {type(exc).__name__}: {exc}")


def parse_retry_after(headers: Mapping[str, str]) -> float | None:
    """Return the seconds to wait from ``retry-after-ms`` or ``retry-after``, if given.

    ``retry-after`` may be a number of seconds or an HTTP date; the result is never negative.
    """
    millis = _number(headers.get("retry-after-ms"))
    if millis is not None:
        return max(0.0, millis / 1000)
    value = headers.get("retry-after")
    if value is None:
        return None
    seconds = _number(value)
    if seconds is not None:
        return max(0.0, seconds)
    parsed = email.utils.parsedate_tz(value)
    if parsed is None:
        return None
    return max(0.0, float(email.utils.mktime_tz(parsed) - time.time()))


def to_model_response(completion: Any) -> ModelResponse:
    """Convert an SDK chat completion into a ``ModelResponse``.

    Raises:
        ModelBehaviorError: The completion has no usable choice, message or tool call.
    """
    if isinstance(completion, str) or not hasattr(completion, "choices"):
        raise ModelBehaviorError("model response is not a chat completion JSON object")
    choices = completion.choices
    if not isinstance(choices, list) or not choices:
        raise ModelBehaviorError("model response has no choices")
    choice = choices[0]
    message = getattr(choice, "message", None)
    if message is None or isinstance(message, (str, dict, list)):
        raise ModelBehaviorError("model response choice has no message")
    content = getattr(message, "content", None)
    if content is not None and not isinstance(content, str):
        raise ModelBehaviorError(f"model message content is not text: {content!r}")
    finish_reason = getattr(choice, "finish_reason", None)
    return ModelResponse(
        content=content,
        tool_calls=_tool_calls(getattr(message, "tool_calls", None)),
        finish_reason=finish_reason if isinstance(finish_reason, str) else None,
        usage=_usage(getattr(completion, "usage", None)),
    )


def _tool_calls(raw: Any) -> list[ToolCall]:
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise ModelBehaviorError(f"model tool_calls is not a list: {raw!r}")
    return [_tool_call(item) for item in raw]


def _tool_call(raw: Any) -> ToolCall:
    call_id = getattr(raw, "id", None)
    kind = getattr(raw, "type", "function")
    function = getattr(raw, "function", None)
    name = getattr(function, "name", None)
    arguments = getattr(function, "arguments", None)
    if isinstance(arguments, dict):
        arguments = json.dumps(arguments)
    if kind != "function" or function is None:
        raise ModelBehaviorError(f"model returned an unsupported tool call type {kind!r}")
    if not (isinstance(call_id, str) and call_id and isinstance(name, str) and name):
        raise ModelBehaviorError(f"model returned a tool call without id or name: {raw!r}")
    if not isinstance(arguments, str):
        raise ModelBehaviorError(f"model tool call {name!r} has no arguments string")
    return ToolCall(id=call_id, name=name, arguments=arguments)


def _usage(raw: Any) -> TokenUsage | None:
    """The completion's token counts; None if it reports none (some local servers)."""
    counts = [raw.get(k) if isinstance(raw, dict) else getattr(raw, k, None) for k in _COUNTS]
    if not any(isinstance(count, int) for count in counts):
        return None
    prompt, completion = (count if isinstance(count, int) else 0 for count in counts)
    return TokenUsage(prompt_tokens=prompt, completion_tokens=completion)


_COUNTS = ("prompt_tokens", "completion_tokens")


def _number(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        number = float(value)
    except ValueError:
        return None
    return number if math.isfinite(number) else None


def _url(exc: openai.APIError) -> str:
    request = getattr(exc, "request", None)
    return str(request.url) if request is not None else "<unknown url>"


def _cause(exc: BaseException) -> str:
    cause = exc.__cause__ or exc.__context__
    return f"{type(cause).__name__}: {cause}" if cause is not None else str(exc)
