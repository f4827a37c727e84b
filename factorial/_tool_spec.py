"""What a tool is, read off its function: parameters, argument model, JSON schema, docs.

``analyse`` turns a typed, Google-style documented function into a ``Spec``: which
parameters the model fills (validated by a pydantic model whose JSON schema the model sees)
and which are injected (``agent_ctx``/``execution_ctx``, or annotated with a context type).
Every problem is a ``ToolDefinitionError`` naming the tool and the parameter.
"""

from __future__ import annotations

import inspect
import re
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any, Literal

import docstring_parser
from pydantic import BaseModel, ConfigDict, Field, create_model
from pydantic.fields import FieldInfo

from factorial.context import AgentContext, ExecutionContext
from factorial.errors import ToolDefinitionError

ToolKind = Literal["function", "deferred", "forking"]

_KINDS: tuple[str, ...] = typing.get_args(ToolKind)
_NAME_PATTERN = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_INJECTED_NAMES = ("agent_ctx", "execution_ctx")
_VARIADIC = (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)


@dataclass(frozen=True)
class Param:
    """How one function parameter is filled at call time."""

    name: str
    field: str | None  # argument-model field name; None when injected
    inject: str | None  # "agent_ctx" / "execution_ctx" when injected
    positional_only: bool


@dataclass(frozen=True)
class Spec:
    """Everything derived from a function's signature and docstring."""

    params: tuple[Param, ...]
    model: type[BaseModel]
    schema: dict[str, Any]
    description: str
    is_async: bool


def tool_name(func: Callable[..., Any], name: str | None) -> str:
    if name is not None:
        return name
    default = getattr(func, "__name__", None)
    if not isinstance(default, str) or default == "<lambda>":
        raise ToolDefinitionError(f"cannot name the tool for {func!r}: pass name=...")
    return default


def check_name(name: str) -> None:
    if not isinstance(name, str) or not _NAME_PATTERN.match(name):
        raise ToolDefinitionError(
            f"invalid tool name {name!r}: use 1-64 letters, digits, underscores or hyphens"
        )


def check_kind_and_timeout(name: str, kind: str, timeout: float | None) -> None:
    if kind not in _KINDS:
        raise ToolDefinitionError(f"tool {name!r}: unknown kind {kind!r}; expected one of {_KINDS}")
    if timeout is None:
        if kind != "function":
            raise ToolDefinitionError(f"{kind} tool {name!r} needs a timeout in seconds")
        return
    if isinstance(timeout, bool) or not isinstance(timeout, int | float) or not timeout > 0:
        raise ToolDefinitionError(f"tool {name!r}: timeout must be > 0 seconds, got {timeout!r}")


# --- signature analysis -----------------------------------------------------------------


def analyse(func: Callable[..., Any], name: str) -> Spec:
    signature = _signature(func, name)
    hints = _type_hints(func, name)
    description, arg_docs = _parse_docstring(func)
    params: list[Param] = []
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
            params.append(Param(param.name, None, inject, positional_only))
            continue
        if hint is inspect.Parameter.empty:
            raise ToolDefinitionError(f"tool {name!r}: parameter {param.name!r} has no type hint")
        field_name = f"f{index}"
        fields[field_name] = _field_definition(param, hint, arg_docs.get(param.name))
        params.append(Param(param.name, field_name, None, positional_only))
    model, schema = _build_model(name, fields)
    return Spec(tuple(params), model, schema, description, _is_async(func))


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
