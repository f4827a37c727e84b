"""Running a tool's function with the model's arguments, and what comes of it.

``invoke`` validates the model's JSON arguments against the tool's argument model, injects
the agent and execution contexts, runs the function (a sync one in a thread) and turns
whatever happens into a ``ToolOutcome``: bad arguments and exceptions become error outcomes
the model sees, never exceptions. ``factorial.tools`` re-exports ``ToolOutcome`` and
``format_tool_output``.
"""

from __future__ import annotations

import asyncio
import inspect
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ValidationError
from pydantic_core import to_jsonable_python

from factorial._tool_spec import Param, Spec


@dataclass
class ToolOutcome:
    """What running a tool produced.

    Attributes:
        display: Text shown to the model as the tool message content.
        data: Value to publish as event data (second item of a ``(display, data)`` return).
        is_error: Whether the arguments were invalid or the tool raised.
        raw: The function's raw return value (``None`` on error).
    """

    display: str
    data: Any = None
    is_error: bool = False
    raw: Any = None


def format_tool_output(value: Any) -> str:
    """Render a tool's return value as the text the model sees.

    Strings pass through, ``None`` becomes ``""``, pydantic models become their JSON,
    anything else is JSON-encoded (nested models included; unknown objects via ``str``).
    """
    if isinstance(value, str):
        return value
    if value is None:
        return ""
    if isinstance(value, BaseModel):
        return value.model_dump_json()
    try:
        return json.dumps(value, default=_json_default, ensure_ascii=False)
    except (TypeError, ValueError):  # e.g. non-string dict keys or reference cycles
        pass
    try:
        return json.dumps(to_jsonable_python(value, fallback=str), ensure_ascii=False)
    except (TypeError, ValueError):
        return str(value)


async def invoke(
    name: str,
    func: Callable[..., Any],
    spec: Spec,
    arguments: str | dict[str, Any] | None,
    *,
    agent_ctx: Any,
    execution_ctx: Any,
) -> ToolOutcome:
    """Run the tool ``name`` (``FunctionTool.invoke``); ``asyncio.CancelledError`` propagates."""
    try:
        validated = spec.model.model_validate(_parse_arguments(arguments))
    except (_ArgumentsError, ValidationError) as exc:
        reason = _describe_validation_error(exc) if isinstance(exc, ValidationError) else exc
        return _error(f"invalid arguments for tool {name}: {reason}")
    injected = {"agent_ctx": agent_ctx, "execution_ctx": execution_ctx}
    args, kwargs = _call_arguments(spec.params, validated, injected)
    try:
        result = await _run(func, spec.is_async, args, kwargs)
    except Exception as exc:
        return _error(f"tool {name} raised {type(exc).__name__}: {exc}")
    return _outcome(result)


class _ArgumentsError(ValueError):
    """The argument string is not a JSON object."""


def _parse_arguments(arguments: str | dict[str, Any] | None) -> dict[str, Any]:
    if arguments is None:
        return {}
    if isinstance(arguments, str):
        if not arguments.strip():
            return {}
        try:
            arguments = json.loads(arguments)
        except json.JSONDecodeError as exc:
            raise _ArgumentsError(f"invalid JSON ({exc})") from exc
    if not isinstance(arguments, dict):
        raise _ArgumentsError(f"expected a JSON object, got {type(arguments).__name__}")
    return arguments


def _describe_validation_error(exc: ValidationError) -> str:
    parts = []
    for error in exc.errors(include_url=False):
        location = ".".join(str(part) for part in error["loc"])
        parts.append(f"{location}: {error['msg']}" if location else error["msg"])
    return "; ".join(parts)


def _call_arguments(
    params: tuple[Param, ...], validated: BaseModel, injected: dict[str, Any]
) -> tuple[list[Any], dict[str, Any]]:
    args: list[Any] = []
    kwargs: dict[str, Any] = {}
    for param in params:
        value = injected[param.inject] if param.inject else getattr(validated, str(param.field))
        if param.positional_only:
            args.append(value)
        else:
            kwargs[param.name] = value
    return args, kwargs


async def _run(
    func: Callable[..., Any], is_async: bool, args: list[Any], kwargs: dict[str, Any]
) -> Any:
    if is_async:
        return await func(*args, **kwargs)
    result = await asyncio.to_thread(func, *args, **kwargs)
    if inspect.isawaitable(result):
        result = await result
    return result


def _outcome(result: Any) -> ToolOutcome:
    if isinstance(result, tuple) and len(result) == 2 and isinstance(result[0], str):
        return ToolOutcome(display=format_tool_output(result[0]), data=result[1], raw=result)
    return ToolOutcome(display=format_tool_output(result), raw=result)


def _error(message: str) -> ToolOutcome:
    return ToolOutcome(display=f"Error: {message}", is_error=True)


def _json_default(value: Any) -> Any:
    return to_jsonable_python(value, fallback=str)
