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
import re
import types
import typing
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal, overload

import docstring_parser
from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model
from pydantic.fields import FieldInfo
from pydantic_core import to_jsonable_python

from factorial.context import AgentContext, ExecutionContext
from factorial.errors import ToolDefinitionError

ToolKind = Literal["function", "deferred", "forking"]

_KINDS: tuple[str, ...] = typing.get_args(ToolKind)
_NAME_PATTERN = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_INJECTED_NAMES = ("agent_ctx", "execution_ctx")
_VARIADIC = (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)


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


@dataclass(frozen=True)
class _Param:
    """How one function parameter is filled at call time."""

    name: str
    field: str | None  # argument-model field name; None when injected
    inject: str | None  # "agent_ctx" / "execution_ctx" when injected
    positional_only: bool


@dataclass(frozen=True)
class _Spec:
    """Everything derived from a function's signature and docstring."""

    params: tuple[_Param, ...]
    model: type[BaseModel]
    schema: dict[str, Any]
    description: str
    is_async: bool


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
    _spec: _Spec | None = field(default=None, repr=False, compare=False, kw_only=True)

    def __post_init__(self) -> None:
        _check_name(self.name)
        _check_kind_and_timeout(self.name, self.kind, self.timeout)
        if self._spec is None:
            self._spec = _analyse(self.func, self.name)

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
        spec = typing.cast(_Spec, self._spec)
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
    tool_name = _tool_name(func, name)
    _check_name(tool_name)
    _check_kind_and_timeout(tool_name, kind, timeout)
    spec = _analyse(func, tool_name)
    return FunctionTool(
        name=tool_name,
        description=spec.description if description is None else description,
        params_json_schema=spec.schema,
        func=func,
        kind=kind,
        timeout=timeout,
        is_enabled=is_enabled,
        _spec=spec,
    )


def _tool_name(func: Callable[..., Any], name: str | None) -> str:
    if name is not None:
        return name
    default = getattr(func, "__name__", None)
    if not isinstance(default, str) or default == "<lambda>":
        raise ToolDefinitionError(f"cannot name the tool for {func!r}: pass name=...")
    return default


def _check_name(name: str) -> None:
    if not isinstance(name, str) or not _NAME_PATTERN.match(name):
        raise ToolDefinitionError(
            f"invalid tool name {name!r}: use 1-64 letters, digits, underscores or hyphens"
        )


def _check_kind_and_timeout(name: str, kind: str, timeout: float | None) -> None:
    if kind not in _KINDS:
        raise ToolDefinitionError(f"tool {name!r}: unknown kind {kind!r}; expected one of {_KINDS}")
    if timeout is None:
        if kind != "function":
            raise ToolDefinitionError(f"{kind} tool {name!r} needs a timeout in seconds")
        return
    if isinstance(timeout, bool) or not isinstance(timeout, int | float) or not timeout > 0:
        raise ToolDefinitionError(f"tool {name!r}: timeout must be > 0 seconds, got {timeout!r}")


# --- signature analysis -----------------------------------------------------------------


def _analyse(func: Callable[..., Any], name: str) -> _Spec:
    signature = _signature(func, name)
    hints = _type_hints(func, name)
    description, arg_docs = _parse_docstring(func)
    params: list[_Param] = []
    fields: dict[str, Any] = {}
    for index, param in enumerate(signature.parameters.values()):
        if param.kind in _VARIADIC:
            raise ToolDefinitionError(
                f"tool {name!r}: parameter {param.name!r} is variadic (*args/**kwargs);"
                " tools need named, typed parameters"
            )
        positional_only = param.kind is inspect.Parameter.POSITIONAL_ONLY
        hint = hints.get(param.name, inspect.Parameter.empty)
        inject = _injection(param.name, hint)
        if inject is not None:
            params.append(_Param(param.name, None, inject, positional_only))
            continue
        if hint is inspect.Parameter.empty:
            raise ToolDefinitionError(f"tool {name!r}: parameter {param.name!r} has no type hint")
        field_name = f"f{index}"
        fields[field_name] = _field_definition(param, hint, arg_docs.get(param.name))
        params.append(_Param(param.name, field_name, None, positional_only))
    model, schema = _build_model(name, fields)
    return _Spec(tuple(params), model, schema, description, _is_async(func))


def _signature(func: Callable[..., Any], name: str) -> inspect.Signature:
    try:
        return inspect.signature(func)
    except (TypeError, ValueError) as exc:
        raise ToolDefinitionError(f"tool {name!r}: cannot read the signature: {exc}") from exc


def _type_hints(func: Callable[..., Any], name: str) -> dict[str, Any]:
    try:
        if inspect.isfunction(func) or inspect.ismethod(func):
            return typing.get_type_hints(func, include_extras=True)
        parameters = inspect.signature(func, eval_str=True).parameters.values()
        return {p.name: p.annotation for p in parameters if p.annotation is not p.empty}
    except Exception as exc:
        raise ToolDefinitionError(f"tool {name!r}: cannot resolve type hints: {exc}") from exc


def _parse_docstring(func: Callable[..., Any]) -> tuple[str, dict[str, str]]:
    doc = inspect.getdoc(func)
    if not doc:
        return "", {}
    try:
        parsed = docstring_parser.parse(doc)
    except docstring_parser.ParseError:
        return doc.strip(), {}
    parts = [part for part in (parsed.short_description, parsed.long_description) if part]
    arg_docs = {p.arg_name: p.description for p in parsed.params if p.description}
    return "\n\n".join(parts), arg_docs


def _injection(param_name: str, hint: Any) -> str | None:
    base = _strip_optional(_strip_annotated(hint))
    if isinstance(base, type):
        if issubclass(base, AgentContext):
            return "agent_ctx"
        if issubclass(base, ExecutionContext):
            return "execution_ctx"
    return param_name if param_name in _INJECTED_NAMES else None


def _strip_annotated(hint: Any) -> Any:
    return typing.get_args(hint)[0] if typing.get_origin(hint) is Annotated else hint


def _strip_optional(hint: Any) -> Any:
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        members = [arg for arg in typing.get_args(hint) if arg is not type(None)]
        if len(members) == 1:
            return members[0]
    return hint


def _field_definition(
    param: inspect.Parameter, hint: Any, doc: str | None
) -> tuple[Any, FieldInfo]:
    """Return ``(annotation, FieldInfo)``; string ``Annotated`` metadata becomes the description."""
    annotation, notes, has_field_description = hint, [], False
    if typing.get_origin(hint) is Annotated:
        base, *metadata = typing.get_args(hint)
        notes = [m for m in metadata if isinstance(m, str)]
        kept = [m for m in metadata if not isinstance(m, str)]
        has_field_description = any(isinstance(m, FieldInfo) and m.description for m in kept)
        annotation = Annotated[(base, *kept)] if kept else base
    options: dict[str, Any] = {"alias": param.name}
    text = " ".join(notes) or doc
    if text and not has_field_description:
        options["description"] = text
    default = ... if param.default is inspect.Parameter.empty else param.default
    return annotation, Field(default, **options)


def _build_model(name: str, fields: dict[str, Any]) -> tuple[type[BaseModel], dict[str, Any]]:
    try:
        model = _create_arguments_model(name, fields)
        return model, _clean_schema(model.model_json_schema())
    except Exception as exc:
        raise _locate_schema_error(name, fields, exc) from exc


def _create_arguments_model(name: str, fields: dict[str, Any]) -> type[BaseModel]:
    config = ConfigDict(extra="forbid")
    return create_model(f"{name}_arguments", __config__=config, **fields)


def _locate_schema_error(name: str, fields: dict[str, Any], exc: Exception) -> ToolDefinitionError:
    """Name the first parameter whose type cannot be validated or described as JSON schema."""
    for field_name, definition in fields.items():
        try:
            _create_arguments_model(name, {field_name: definition}).model_json_schema()
        except Exception as field_exc:
            alias = definition[1].alias
            return ToolDefinitionError(
                f"tool {name!r}: parameter {alias!r} has an unsupported type: {field_exc}"
            )
    return ToolDefinitionError(f"tool {name!r}: cannot build the argument schema: {exc}")


def _clean_schema(raw: dict[str, Any]) -> dict[str, Any]:
    properties = {
        key: {k: v for k, v in prop.items() if k != "title"}
        for key, prop in raw.get("properties", {}).items()
    }
    schema: dict[str, Any] = {
        "type": "object",
        "properties": properties,
        "required": list(raw.get("required", [])),
        "additionalProperties": False,
    }
    if "$defs" in raw:
        schema["$defs"] = raw["$defs"]
    return schema


def _is_async(func: Callable[..., Any]) -> bool:
    if inspect.iscoroutinefunction(func):
        return True
    # Callable objects whose __call__ is async.
    return not inspect.isroutine(func) and inspect.iscoroutinefunction(type(func).__call__)


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
    params: tuple[_Param, ...], validated: BaseModel, injected: dict[str, Any]
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
