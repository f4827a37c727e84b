"""An agent's lifecycle hooks: their signatures, checked at construction, and calling them.

A hook may be sync or async. One that raises is logged and the run goes on: a hook observes
a run, it does not decide it.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from factorial.context import AgentContext, ExecutionContext
from factorial.errors import HookSignatureError

if TYPE_CHECKING:
    from factorial.agent import BaseAgent

logger = logging.getLogger("factorial")

#: Positional arguments each lifecycle hook receives.
HOOK_ARITY = {
    "on_run_start": 2,  # (agent_ctx, execution_ctx)
    "on_run_end": 3,  # (agent_ctx, execution_ctx, RunCompletion)
    "on_turn_start": 2,  # (agent_ctx, execution_ctx)
    "on_turn_end": 3,  # (agent_ctx, execution_ctx, TurnCompletion)
    "on_pending_tool_call": 3,  # (agent_ctx, execution_ctx, ToolCall)
    "on_pending_tool_results": 3,  # (agent_ctx, execution_ctx, list[tuple[str, Any]])
    "on_run_cancelled": 2,  # (agent_ctx, execution_ctx)
}


def check_hook(name: str, hook: Callable[..., Any] | None) -> None:
    """Raise ``HookSignatureError`` if ``hook`` cannot take the arguments of hook ``name``."""
    if hook is None:
        return
    if not callable(hook):
        raise HookSignatureError(f"{name} must be callable, got {type(hook).__name__}")
    try:
        inspect.signature(hook).bind(*([None] * HOOK_ARITY[name]))
    except TypeError as err:
        raise HookSignatureError(
            f"{name} must accept {HOOK_ARITY[name]} positional arguments: {err}"
        ) from None
    except ValueError:  # builtins without a signature: trust them
        return


async def call_hook(agent: BaseAgent[Any], name: str, agent_ctx: AgentContext, *extra: Any) -> None:
    """Call ``agent``'s hook ``name`` if it has one; log what it raises."""
    hook = agent.hooks.get(name)
    if hook is None:
        return
    try:
        await _maybe_await(hook(agent_ctx, ExecutionContext.current(), *extra))
    except asyncio.CancelledError:
        raise
    except Exception:
        logger.exception("lifecycle hook %s of agent %s raised", name, agent.name)


async def _maybe_await(value: Any) -> Any:
    return await value if inspect.isawaitable(value) else value
