"""Unit tests for factorial.tools: schemas, injection, invocation and definition errors."""

from __future__ import annotations

import asyncio
import enum
import threading
from collections.abc import Callable
from typing import Annotated, Any, Literal

import pytest
from pydantic import BaseModel, Field

from factorial.context import AgentContext, ExecutionContext
from factorial.errors import ToolDefinitionError, UserError
from factorial.tools import (
    FunctionTool,
    ToolOutcome,
    as_tool,
    deferred_result,
    deferred_tool,
    forking_tool,
    format_tool_output,
    function_tool,
    tools_by_name,
)


class Color(enum.Enum):
    """A color."""

    RED = "red"
    BLUE = "blue"


class Point(BaseModel):
    """A point."""

    x: int
    y: int = 0


class MyContext(AgentContext):
    """An agent context subclass."""

    user: str = "ann"


def everything(
    text: str,
    count: Annotated[int, "How many times."],
    color: Color,
    points: list[Point],
    origin: Point,
    mode: Literal["fast", "slow"] = "fast",
    limit: int | None = None,
    ratio: Annotated[float, Field(description="A ratio.", ge=0)] = 0.5,
    tags: dict[str, int] | None = None,
) -> dict[str, Any]:
    """Exercise every supported parameter type.

    A second paragraph.

    Args:
        text: Some text.
        count: Overridden by the Annotated description.
        limit: An optional limit.

    Returns:
        The received arguments.
    """
    return locals()


def make_contexts() -> tuple[MyContext, ExecutionContext]:
    """Return a fresh agent context and execution context."""
    return MyContext(query="q"), ExecutionContext(task_id="task-1", owner_id="owner-1")


async def call(tool: FunctionTool, arguments: str | dict[str, Any] | None) -> ToolOutcome:
    """Invoke ``tool`` with fresh contexts."""
    agent_ctx, execution_ctx = make_contexts()
    return await tool.invoke(arguments, agent_ctx=agent_ctx, execution_ctx=execution_ctx)


# --- schema -----------------------------------------------------------------------------


def test_schema_covers_supported_types() -> None:
    schema = function_tool(everything).params_json_schema
    props = schema["properties"]
    assert schema["type"] == "object"
    assert schema["additionalProperties"] is False
    assert schema["required"] == ["text", "count", "color", "points", "origin"]
    assert props["text"] == {"type": "string", "description": "Some text."}
    assert props["count"] == {"type": "integer", "description": "How many times."}
    assert props["color"] == {"$ref": "#/$defs/Color"}
    assert props["points"] == {"type": "array", "items": {"$ref": "#/$defs/Point"}}
    assert props["mode"] == {"type": "string", "enum": ["fast", "slow"], "default": "fast"}
    assert props["limit"]["anyOf"] == [{"type": "integer"}, {"type": "null"}]
    assert props["limit"]["default"] is None
    assert props["limit"]["description"] == "An optional limit."
    assert props["ratio"] == {
        "type": "number",
        "minimum": 0,
        "default": 0.5,
        "description": "A ratio.",
    }
    assert all("title" not in prop for prop in props.values())
    assert schema["$defs"]["Color"]["enum"] == ["red", "blue"]
    assert set(schema["$defs"]["Point"]["properties"]) == {"x", "y"}


def test_description_from_docstring_without_sections() -> None:
    tool = function_tool(everything)
    assert tool.description == "Exercise every supported parameter type.\n\nA second paragraph."


def test_openai_schema_shape() -> None:
    tool = function_tool(everything)
    schema = tool.openai_schema()
    assert schema["type"] == "function"
    assert schema["function"]["name"] == "everything"
    assert schema["function"]["description"] == tool.description
    assert schema["function"]["parameters"] == tool.params_json_schema
    schema["function"]["parameters"]["properties"].clear()
    assert tool.params_json_schema["properties"]


def test_no_parameters_and_no_description() -> None:
    def ping() -> str:
        return "pong"

    tool = function_tool(ping)
    assert tool.description == ""
    assert tool.params_json_schema == {
        "type": "object",
        "properties": {},
        "required": [],
        "additionalProperties": False,
    }


async def test_parameter_names_that_shadow_pydantic_attributes() -> None:
    def shadow(json: str, model_config: int, schema: bool = False) -> str:
        return f"{json} {model_config} {schema}"

    tool = function_tool(shadow)
    assert list(tool.params_json_schema["properties"]) == ["json", "model_config", "schema"]
    outcome = await call(tool, {"json": "j", "model_config": 2})
    assert outcome.display == "j 2 False"


# --- decorators ---------------------------------------------------------------------------


def test_decorator_without_parentheses_keeps_function_callable() -> None:
    @function_tool
    def double(value: int) -> int:
        return value * 2

    assert isinstance(double, FunctionTool)
    assert double.name == "double"
    assert double.kind == "function"
    assert double.timeout is None
    assert double(4) == 8


def test_decorator_with_parentheses_overrides() -> None:
    @function_tool(name="renamed-tool", description="Custom.", is_enabled=False)
    def original(value: int) -> int:
        """Ignored docstring."""
        return value

    assert original.name == "renamed-tool"
    assert original.description == "Custom."
    assert original.enabled_for(None) is False
    assert original(3) == 3


def test_enabled_for_callable_receives_agent_context() -> None:
    @function_tool(is_enabled=lambda ctx: ctx.user == "ann")
    def gated() -> str:
        return "ok"

    agent_ctx, _ = make_contexts()
    assert gated.enabled_for(agent_ctx) is True
    agent_ctx.user = "bob"
    assert gated.enabled_for(agent_ctx) is False
    assert function_tool(gated.func).enabled_for(agent_ctx) is True


@pytest.mark.parametrize("decorator", [deferred_tool, deferred_result, forking_tool])
def test_deferred_and_forking_kinds(decorator: Callable[..., Any]) -> None:
    @decorator(timeout=30)
    def slow(job: str) -> str:
        return job

    expected = "forking" if decorator is forking_tool else "deferred"
    assert slow.kind == expected
    assert slow.timeout == 30
    assert decorator(slow.func, timeout=1.5).timeout == 1.5


@pytest.mark.parametrize("decorator", [deferred_tool, forking_tool])
@pytest.mark.parametrize("timeout", [0, -1, None, float("nan"), True])
def test_invalid_timeout_is_rejected(decorator: Callable[..., Any], timeout: Any) -> None:
    def slow(job: str) -> str:
        return job

    with pytest.raises(ToolDefinitionError, match="slow"):
        decorator(slow, timeout=timeout)


def test_direct_construction_validates_kind_timeout_and_name() -> None:
    def echo(value: str) -> str:
        return value

    tool = FunctionTool("echo", "", {"type": "object"}, echo)
    assert tool.openai_schema()["function"]["parameters"] == {"type": "object"}
    with pytest.raises(ToolDefinitionError, match="timeout"):
        FunctionTool("echo", "", {}, echo, kind="deferred")
    with pytest.raises(ToolDefinitionError, match="kind"):
        FunctionTool("echo", "", {}, echo, kind="bogus")  # type: ignore[arg-type]
    with pytest.raises(ToolDefinitionError, match="invalid tool name"):
        FunctionTool("bad name", "", {}, echo)


def test_as_tool_and_tools_by_name() -> None:
    def first(value: int) -> int:
        return value

    tool = function_tool(first)
    assert as_tool(tool) is tool
    converted = as_tool(first)
    assert isinstance(converted, FunctionTool)
    assert converted.name == "first"
    mapping = tools_by_name([tool, function_tool(name="second")(first)])
    assert list(mapping) == ["first", "second"]
    assert all(isinstance(value, FunctionTool) for value in mapping.values())


def test_tools_by_name_rejects_duplicates() -> None:
    def dup() -> None:
        return None

    with pytest.raises(ToolDefinitionError, match="dup"):
        tools_by_name([dup, function_tool(dup)])


# --- definition errors --------------------------------------------------------------------


def test_missing_type_hint_is_rejected() -> None:
    def untyped(value) -> str:  # type: ignore[no-untyped-def]
        return value

    with pytest.raises(ToolDefinitionError, match=r"'untyped'.*'value'.*type hint"):
        function_tool(untyped)


@pytest.mark.parametrize("variadic", ["args", "kwargs"])
def test_variadic_parameters_are_rejected(variadic: str) -> None:
    def star(*args: int) -> None:
        return None

    def double_star(**kwargs: int) -> None:
        return None

    func = star if variadic == "args" else double_star
    with pytest.raises(ToolDefinitionError, match=variadic):
        function_tool(func)


def test_lambda_needs_a_name() -> None:
    with pytest.raises(ToolDefinitionError, match="name="):
        function_tool(lambda: None)
    assert function_tool(name="noop")(lambda: None).name == "noop"


def test_unsupported_type_names_the_parameter() -> None:
    def bad(ok: int, lock: threading.Lock) -> None:
        return None

    def bad_callable(ok: int, hook: Callable[[int], int]) -> None:
        return None

    with pytest.raises(ToolDefinitionError, match=r"'bad'.*'lock'"):
        function_tool(bad)
    with pytest.raises(ToolDefinitionError, match=r"'bad_callable'.*'hook'"):
        function_tool(bad_callable)


def test_unresolvable_hint_is_a_definition_error() -> None:
    def broken(value: NoSuchType) -> None:  # type: ignore[name-defined]  # noqa: F821
        return None

    with pytest.raises(ToolDefinitionError, match="broken"):
        function_tool(broken)


def test_not_callable_is_rejected() -> None:
    with pytest.raises(ToolDefinitionError):
        function_tool("name")  # type: ignore[arg-type]


def test_definition_error_is_a_user_error() -> None:
    assert issubclass(ToolDefinitionError, UserError)


# --- injection ----------------------------------------------------------------------------


def by_name(query: str, agent_ctx, execution_ctx) -> str:  # type: ignore[no-untyped-def]
    """Injection by parameter name."""
    return f"{query} {agent_ctx.query} {execution_ctx.task_id}"


def by_annotation(ctx: MyContext, query: str, run: ExecutionContext) -> str:
    """Injection by annotation, including an AgentContext subclass."""
    return f"{query} {ctx.user} {run.owner_id}"


def by_optional_annotation(query: str, ctx: AgentContext | None = None) -> str:
    """Injection by an Optional annotation."""
    return f"{query} {type(ctx).__name__}"


async def test_injection_by_name_is_hidden_and_passed() -> None:
    tool = function_tool(by_name)
    assert list(tool.params_json_schema["properties"]) == ["query"]
    assert tool.params_json_schema["required"] == ["query"]
    outcome = await call(tool, '{"query": "hi"}')
    assert outcome == ToolOutcome(display="hi q task-1", raw="hi q task-1")


async def test_injection_by_annotation_is_hidden_and_passed() -> None:
    tool = function_tool(by_annotation)
    assert list(tool.params_json_schema["properties"]) == ["query"]
    outcome = await call(tool, {"query": "hi"})
    assert outcome.display == "hi ann owner-1"
    optional = function_tool(by_optional_annotation)
    assert list(optional.params_json_schema["properties"]) == ["query"]
    assert (await call(optional, {"query": "x"})).display == "x MyContext"


async def test_model_cannot_supply_injected_parameters() -> None:
    outcome = await call(function_tool(by_name), {"query": "hi", "agent_ctx": "fake"})
    assert outcome.is_error
    assert "agent_ctx" in outcome.display


# --- invocation ---------------------------------------------------------------------------


async def test_arguments_are_validated_into_python_objects() -> None:
    tool = function_tool(everything)
    arguments = (
        '{"text": "t", "count": "3", "color": "blue", "points": [{"x": 1}],'
        ' "origin": {"x": 0, "y": 2}, "tags": {"a": 1}}'
    )
    outcome = await call(tool, arguments)
    assert not outcome.is_error, outcome.display
    received = outcome.raw
    assert received["count"] == 3
    assert received["color"] is Color.BLUE
    assert received["points"] == [Point(x=1)]
    assert isinstance(received["origin"], Point)
    assert received["mode"] == "fast"
    assert received["limit"] is None
    assert received["ratio"] == 0.5
    assert received["tags"] == {"a": 1}
    assert outcome.data is None


async def test_sync_tool_runs_off_the_event_loop_thread() -> None:
    def where() -> int:
        return threading.get_ident()

    outcome = await call(function_tool(where), None)
    assert outcome.raw != threading.get_ident()
    assert outcome.display == str(outcome.raw)


async def test_async_tool_is_awaited() -> None:
    @function_tool
    async def sleepy(seconds: float) -> Point:
        await asyncio.sleep(seconds)
        return Point(x=1, y=2)

    outcome = await call(sleepy, '{"seconds": 0}')
    assert outcome.display == '{"x":1,"y":2}'
    assert outcome.raw == Point(x=1, y=2)


async def test_async_callable_object_is_awaited() -> None:
    class Greeter:
        async def __call__(self, who: str) -> str:
            return f"hello {who}"

    outcome = await call(function_tool(name="greet")(Greeter()), {"who": "bob"})
    assert outcome.display == "hello bob"


async def test_display_data_tuple() -> None:
    @function_tool
    def report(value: int) -> tuple[str, dict[str, int]]:
        return f"got {value}", {"value": value}

    outcome = await call(report, '{"value": 5}')
    assert outcome == ToolOutcome(display="got 5", data={"value": 5}, raw=("got 5", {"value": 5}))


async def test_other_tuples_are_formatted_whole() -> None:
    @function_tool
    def pair() -> tuple[int, int]:
        return 1, 2

    outcome = await call(pair, "")
    assert outcome.display == "[1, 2]"
    assert outcome.data is None


async def test_raising_tool_becomes_error_outcome() -> None:
    @function_tool
    def explode(value: int) -> int:
        raise ValueError(f"bad value {value}")

    @function_tool
    async def explode_async() -> None:
        raise KeyError("missing")

    outcome = await call(explode, {"value": 7})
    assert outcome == ToolOutcome(
        display="Error: tool explode raised ValueError: bad value 7", is_error=True
    )
    outcome = await call(explode_async, None)
    assert outcome.is_error
    assert outcome.display == "Error: tool explode_async raised KeyError: 'missing'"


async def test_cancellation_propagates() -> None:
    @function_tool
    async def cancelled() -> None:
        raise asyncio.CancelledError

    with pytest.raises(asyncio.CancelledError):
        await call(cancelled, None)


@pytest.mark.parametrize(
    ("arguments", "reason"),
    [
        ("{not json", "invalid JSON"),
        ("[1, 2]", "expected a JSON object, got list"),
        ('"text"', "expected a JSON object, got str"),
        ('{"value": "abc"}', "value: Input should be a valid integer"),
        ("{}", "value: Field required"),
        ('{"value": 1, "other": 2}', "other: Extra inputs are not permitted"),
        ({"value": [1]}, "value: Input should be a valid integer"),
    ],
)
async def test_invalid_arguments_become_error_outcome(
    arguments: str | dict[str, Any], reason: str
) -> None:
    calls = []

    @function_tool
    def strict(value: int) -> int:
        calls.append(value)
        return value

    outcome = await call(strict, arguments)
    assert outcome.is_error
    assert outcome.raw is None
    assert outcome.display.startswith("Error: invalid arguments for tool strict: ")
    assert reason in outcome.display
    assert calls == []


async def test_nested_model_and_enum_validation_errors() -> None:
    outcome = await call(
        function_tool(everything),
        {"text": "t", "count": 1, "color": "green", "points": [{"y": 1}], "origin": {"x": 0}},
    )
    assert outcome.is_error
    assert "color: Input should be 'red' or 'blue'" in outcome.display
    assert "points.0.x: Field required" in outcome.display


async def test_positional_only_parameters() -> None:
    def positional(value: int, /, agent_ctx: AgentContext, scale: int = 2) -> int:
        return value * scale

    outcome = await call(function_tool(positional), {"value": 3})
    assert outcome.display == "6"


# --- output formatting --------------------------------------------------------------------


def test_format_tool_output() -> None:
    assert format_tool_output("plain") == "plain"
    assert format_tool_output(None) == ""
    assert format_tool_output(Point(x=1)) == '{"x":1,"y":0}'
    assert format_tool_output({"a": [1, 2]}) == '{"a": [1, 2]}'
    assert format_tool_output([Point(x=1), {"p": Point(x=2, y=3)}]) == (
        '[{"x": 1, "y": 0}, {"p": {"x": 2, "y": 3}}]'
    )
    assert format_tool_output(Color.RED) == '"red"'
    assert format_tool_output({"obj": threading}).startswith('{"obj": "<module')
    assert format_tool_output(3.5) == "3.5"
    assert format_tool_output(["é"]) == '["é"]'
