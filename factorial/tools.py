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

import copy
import typing
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, overload

from factorial._policies import Join, join_count
from factorial._tool_invoke import ToolOutcome, format_tool_output, invoke
from factorial._tool_spec import (
    Spec,
    ToolKind,
    analyse,
    check_kind_and_timeout,
    check_name,
    tool_name,
)
from factorial.errors import ToolDefinitionError

#: The public names; the rest (``tools_by_name``, ...) serve Factorial itself. ``ToolOutcome``
#: and ``format_tool_output`` are defined with the rest of running a tool, in ``_tool_invoke``.
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
        join: For a forking tool, when its parent resumes: ``"all"`` children ended,
            the ``"first"`` completed, or a ``Quorum(k)`` completed (the rest are cancelled).
    """

    name: str
    description: str
    params_json_schema: dict[str, Any]
    func: Callable[..., Any]
    kind: ToolKind = "function"
    timeout: float | None = None
    is_enabled: bool | Callable[[Any], bool] = True
    join: Join = "all"
    _spec: Spec | None = field(default=None, repr=False, compare=False, kw_only=True)

    def __post_init__(self) -> None:
        check_name(self.name)
        check_kind_and_timeout(self.name, self.kind, self.timeout)
        join_count(self.join)
        if self.join != "all" and self.kind != "forking":
            raise ToolDefinitionError(f"tool {self.name!r}: only a forking tool has a join policy")
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
        return await invoke(
            self.name, self.func, spec, arguments, agent_ctx=agent_ctx, execution_ctx=execution_ctx
        )


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
    join: Join = "all",
) -> FunctionTool: ...
@overload
def forking_tool(
    *,
    timeout: float,
    name: str | None = None,
    description: str | None = None,
    is_enabled: bool | Callable[[Any], bool] = True,
    join: Join = "all",
) -> ToolDecorator: ...
def forking_tool(
    func: Callable[..., Any] | None = None,
    *,
    timeout: float,
    name: str | None = None,
    description: str | None = None,
    is_enabled: bool | Callable[[Any], bool] = True,
    join: Join = "all",
) -> FunctionTool | ToolDecorator:
    """Like ``function_tool`` but ``kind="forking"``: it spawns child tasks and awaits them.

    Args:
        func: The function (when used without parentheses).
        timeout: Seconds to wait for the child tasks; must be > 0. When it passes, the
            children still running are cancelled and the parent resumes with the results
            so far, whether or not ``join`` was met.
        name: Tool name; defaults to the function's name.
        description: Tool description; defaults to the docstring without its sections.
        is_enabled: Whether the model sees the tool; a callable receives the ``AgentContext``.
        join: When the parent resumes: once ``"all"`` children have ended (the default),
            once the ``"first"`` has completed, or once ``Quorum(k)`` have completed. The
            children still running then are cancelled (each announces ``run_cancelled``).
            It applies to each ``spawn_child_tasks`` call of the tool on its own; a quorum
            that can no longer be met (too many failed, or more than were spawned) waits
            for every child to end.
    """
    return _decorate(func, "forking", timeout, name, description, is_enabled, join)


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


# --- decoration -------------------------------------------------------------------------


def _decorate(
    func: Callable[..., Any] | None,
    kind: ToolKind,
    timeout: float | None,
    name: str | None,
    description: str | None,
    is_enabled: bool | Callable[[Any], bool],
    join: Join = "all",
) -> FunctionTool | ToolDecorator:
    join_count(join)  # a bad join fails at decoration, not at the first call

    def build(target: Callable[..., Any]) -> FunctionTool:
        return _build_tool(target, kind, timeout, name, description, is_enabled, join)

    return build if func is None else build(func)


def _build_tool(
    func: Callable[..., Any],
    kind: ToolKind,
    timeout: float | None,
    name: str | None,
    description: str | None,
    is_enabled: bool | Callable[[Any], bool],
    join: Join,
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
        join=join,
        _spec=spec,
    )
