"""Turn Python functions into tools a model can call, and run them safely.

Decorate a function with ``@function_tool`` (or ``@deferred_tool`` / ``@forking_tool``)
to get a ``FunctionTool``: an OpenAI function schema built from the signature's type
hints and Google-style docstring, plus ``invoke``, which validates the model's JSON
arguments, injects the agent and execution contexts, runs the function and turns
whatever happens into a ``ToolOutcome``::

    @function_tool
    def add(a: int, b: int) -> int:
        \"\"\"Add two numbers.

        Args:
            a: The first number.
            b: The second number.
        \"\"\"
        return a + b

Parameters named ``agent_ctx`` / ``execution_ctx``, or annotated with ``AgentContext``
(or a subclass) / ``ExecutionContext``, are injected at call time and hidden from the model.
"""  # noqa: D214 - the example's Args section is indented as code

from __future__ import annotations

import asyncio
import copy
import inspect
import json
import typing
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, overload

from pydantic import BaseModel, ValidationError
from pydantic_core import to_jsonable_python

from factorial._tool_spec import (
    Param,
    Spec,
    ToolKind,
    analyse,
    check_kind_and_timeout,
    check_name,
    tool_name,
)
from factorial.errors import ToolDefinitionError

#: The public names; the rest (``tools_by_name``, ``build_workers``, ...) serve Factorial itself.
__all__ = [
    "FunctionTool",
    "ToolOutcome",
    "as_tool",
    "deferred_result",
    "deferred_tool",
    "forking_tool",
    "format_tool_output",
    "function_tool",
]


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


@dataclass
class FunctionTool:
    """A Python callable described to the model as an OpenAI function tool.

    Attributes:
        name: The tool name the model calls.
        description: What the tool does, shown to the model.
        params_json_schema: JSON schema of the model-supplied arguments.
        func: The wrapped function.
        kind: ``"function"``, ``"deferred"`` or ``"forking"``.
        timeout: Seconds to wait; required (> 0) for deferred and forking tools.
        is_enabled: Whether the model sees the tool; a callable receives the ``AgentContext``.
    """

    name: str
    description: str
    params_json_schema: dict[str, Any]
    func: Callable[..., Any]
    kind: ToolKind = "function"
    timeout: float | None = None
    is_enabled: bool | Callable[[Any], bool] = True
    _spec: Spec | None = field(default=None, repr=False, compare=False, kw_only=True)

    def __post_init__(self) -> None:
        check_name(self.name)
        check_kind_and_timeout(self.name, self.kind, self.timeout)
        if self._spec is None:
            self._spec = analyse(self.func, self.name)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """Call the wrapped function directly."""
        return self.func(*args, **kwargs)

    def openai_schema(self) -> dict[str, Any]:
        """Return the tool in OpenAI chat-completions ``tools`` format."""
        return {
            "type": "function",
            "function": {
                "name": self.name,
                "description": self.description,
                "parameters": copy.deepcopy(self.params_json_schema),
            },
        }

    def enabled_for(self, agent_ctx: Any) -> bool:
        """Return whether the model may see this tool for the given agent context."""
        if callable(self.is_enabled):
            return bool(self.is_enabled(agent_ctx))
        return bool(self.is_enabled)

    async def invoke(
        self,
        arguments: str | dict[str, Any] | None,
        *,
        agent_ctx: Any,
        execution_ctx: Any,
    ) -> ToolOutcome:
        """Validate the model's arguments, run the tool and report the outcome.

        Never raises for bad arguments or tool exceptions (those become error outcomes);
        ``asyncio.CancelledError`` propagates.

        Args:
            arguments: The model's JSON argument string, or an already-parsed dict.
            agent_ctx: Injected into parameters that ask for the ``AgentContext``.
            execution_ctx: Injected into parameters that ask for the ``ExecutionContext``.
        """
        spec = typing.cast(Spec, self._spec)
        try:
            validated = spec.model.model_validate(_parse_arguments(arguments))
        except (_ArgumentsError, ValidationError) as exc:
            reason = _describe_validation_error(exc) if isinstance(exc, ValidationError) else exc
            return _error(f"invalid arguments for tool {self.name}: {reason}")
        injected = {"agent_ctx": agent_ctx, "execution_ctx": execution_ctx}
        args, kwargs = _call_arguments(spec.params, validated, injected)
        try:
            result = await _run(self.func, spec.is_async, args, kwargs)
        except Exception as exc:
            return _error(f"tool {self.name} raised {type(exc).__name__}: {exc}")
        return _outcome(result)


#: What ``@function_tool(name=...)`` and its kin return: the decorator proper.
ToolDecorator = Callable[[Callable[..., Any]], "FunctionTool"]


@overload
def function_tool(func: Callable[..., Any], /) -> FunctionTool: ...
@overload
def function_tool(
    *,
    name: str | None = None,
    description: str | None = None,
    is_enabled: bool | Callable[[Any], bool] = True,
) -> ToolDecorator: ...
def function_tool(
    func: Callable[..., Any] | None = None,
    *,
    name: str | None = None,
    description: str | None = None,
    is_enabled: bool | Callable[[Any], bool] = True,
) -> FunctionTool | ToolDecorator:
    """Make a function a tool; use as ``@function_tool`` or ``@function_tool(name=...)``.

    Args:
        func: The function (when used without parentheses).
        name: Tool name; defaults to the function's name.
        description: Tool description; defaults to the docstring without its sections.
        is_enabled: Whether the model sees the tool; a callable receives the ``AgentContext``.
    """
    return _decorate(func, "function", None, name, description, is_enabled)


@overload
def deferred_tool(
    func: Callable[..., Any],
    *,
    timeout: float,
    name: str | None = None,
    description: str | None = None,
    is_enabled: bool | Callable[[Any], bool] = True,
) -> FunctionTool: ...
@overload
def deferred_tool(
    *,
    timeout: float,
    name: str | None = None,
    description: str | None = None,
    is_enabled: bool | Callable[[Any], bool] = True,
) -> ToolDecorator: ...
def deferred_tool(
    func: Callable[..., Any] | None = None,
    *,
    timeout: float,
    name: str | None = None,
    description: str | None = None,
    is_enabled: bool | Callable[[Any], bool] = True,
) -> FunctionTool | ToolDecorator:
    """Like ``function_tool`` but ``kind="deferred"``: its result arrives later, within ``timeout``.

    Args:
        func: The function (when used without parentheses).
        timeout: Seconds to wait for the result; must be > 0.
        name: Tool name; defaults to the function's name.
        description: Tool description; defaults to the docstring without its sections.
        is_enabled: Whether the model sees the tool; a callable receives the ``AgentContext``.
    """
    return _decorate(func, "deferred", timeout, name, description, is_enabled)


#: The same decorator as ``deferred_tool``, under the name nFactorial users know; the
#: documentation uses ``deferred_tool``.
deferred_result = deferred_tool


@overload
def forking_tool(
    func: Callable[..., Any],
    *,
    timeout: float,
    name: str | None = None,
    description: str | None = None,
    is_enabled: bool | Callable[[Any], bool] = True,
) -> FunctionTool: ...
@overload
def forking_tool(
    *,
    timeout: float,
    name: str | None = None,
    description: str | None = None,
    is_enabled: bool | Callable[[Any], bool] = True,
) -> ToolDecorator: ...
def forking_tool(
    func: Callable[..., Any] | None = None,
    *,
    timeout: float,
    name: str | None = None,
    description: str | None = None,
    is_enabled: bool | Callable[[Any], bool] = True,
) -> FunctionTool | ToolDecorator:
    """Like ``function_tool`` but ``kind="forking"``: it spawns child tasks and awaits them.

    Args:
        func: The function (when used without parentheses).
        timeout: Seconds to wait for the child tasks; must be > 0.
        name: Tool name; defaults to the function's name.
        description: Tool description; defaults to the docstring without its sections.
        is_enabled: Whether the model sees the tool; a callable receives the ``AgentContext``.
    """
    return _decorate(func, "forking", timeout, name, description, is_enabled)


def as_tool(obj: Callable[..., Any] | FunctionTool) -> FunctionTool:
    """Return ``obj`` if it is already a tool, else wrap it with ``function_tool``."""
    if isinstance(obj, FunctionTool):
        return obj
    return function_tool(obj)


def tools_by_name(tools: Iterable[Callable[..., Any] | FunctionTool]) -> dict[str, FunctionTool]:
    """Convert callables to tools and index them by name.

    Raises:
        ToolDefinitionError: When two tools share a name.
    """
    result: dict[str, FunctionTool] = {}
    for obj in tools:
        tool = as_tool(obj)
        if tool.name in result:
            raise ToolDefinitionError(f"duplicate tool name {tool.name!r}")
        result[tool.name] = tool
    return result


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


# --- decoration -------------------------------------------------------------------------


def _decorate(
    func: Callable[..., Any] | None,
    kind: ToolKind,
    timeout: float | None,
    name: str | None,
    description: str | None,
    is_enabled: bool | Callable[[Any], bool],
) -> FunctionTool | ToolDecorator:
    def build(target: Callable[..., Any]) -> FunctionTool:
        return _build_tool(target, kind, timeout, name, description, is_enabled)

    return build if func is None else build(func)


def _build_tool(
    func: Callable[..., Any],
    kind: ToolKind,
    timeout: float | None,
    name: str | None,
    description: str | None,
    is_enabled: bool | Callable[[Any], bool],
) -> FunctionTool:
    if not callable(func):
        raise ToolDefinitionError(
            f"cannot make a tool from {func!r}: not callable (pass the name as name=...)"
        )
    named = tool_name(func, name)
    check_name(named)
    check_kind_and_timeout(named, kind, timeout)
    spec = analyse(func, named)
    return FunctionTool(
        name=named,
        description=spec.description if description is None else description,
        params_json_schema=spec.schema,
        func=func,
        kind=kind,
        timeout=timeout,
        is_enabled=is_enabled,
        _spec=spec,
    )


# --- invocation -------------------------------------------------------------------------


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
