"""``@publish_progress``: custom ``progress_update_{name}_*`` events around any function.

Inside a turn (a tool, a hook, an agent method) the decorated function publishes
``progress_update_{name}_started``, then ``..._completed`` with its result as ``data``
(made JSON-safe) or ``..._failed`` with the ``error``, through the turn's
``execution_ctx.events``, like the turn's own progress events. Outside a turn it is the
plain function. Sync and async functions both work; the decorated function keeps its
signature, so it can still be a tool.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any, TypeVar, overload

from pydantic_core import to_jsonable_python

from factorial.context import ExecutionContext
from factorial.errors import UserError
from factorial.events import EventPublisher, progress_event_type

F = TypeVar("F", bound=Callable[..., Any])


@overload
def publish_progress(func: F, /) -> F: ...


@overload
def publish_progress(*, name: str | None = None) -> Callable[[F], F]: ...


def publish_progress(func: F | None = None, /, *, name: str | None = None) -> F | Callable[[F], F]:
    """Publish ``progress_update_{name}_{started,completed,failed}`` around each call.

    Use it bare (``@publish_progress``: ``name`` is the function's name) or with a name
    (``@publish_progress(name="upload")``). On a tool, put it below ``@function_tool``
    and its kin, next to the ``def``.

    Example::

        @publish_progress
        async def fetch_page(url: str) -> str:
            ...

    Raises:
        UserError: ``name`` is empty, or the decorated object is not a function.
    """
    if name is not None and (not isinstance(name, str) or not name.strip()):
        raise UserError("publish_progress(name=...) must be a non-empty string")

    def decorate(target: F) -> F:
        if not inspect.isfunction(target):
            raise UserError(
                "@publish_progress decorates a function or method, not "
                f"{type(target).__name__}; put it below @function_tool and its kin"
            )
        return _wrap(target, name or target.__name__)

    return decorate if func is None else decorate(func)


def _wrap(func: F, name: str) -> F:
    if inspect.iscoroutinefunction(func):

        @functools.wraps(func)
        async def run_async(*args: Any, **kwargs: Any) -> Any:
            events = _current_events()
            if events is None:
                return await func(*args, **kwargs)
            events.emit(progress_event_type(name, "started"))
            try:
                result = await func(*args, **kwargs)
            except Exception as err:
                _failed(events, name, err)
                raise
            _completed(events, name, result)
            return result

        return run_async  # type: ignore[return-value]  # same signature as func

    @functools.wraps(func)
    def run_sync(*args: Any, **kwargs: Any) -> Any:
        events = _current_events()
        if events is None:
            return func(*args, **kwargs)
        events.emit(progress_event_type(name, "started"))
        try:
            result = func(*args, **kwargs)
        except Exception as err:
            _failed(events, name, err)
            raise
        _completed(events, name, result)
        return result

    return run_sync  # type: ignore[return-value]  # same signature as func


def _current_events() -> EventPublisher | None:
    """The running turn's publisher, or None outside a turn."""
    try:
        return ExecutionContext.current().events
    except LookupError:
        return None


def _completed(events: EventPublisher, name: str, result: Any) -> None:
    data = to_jsonable_python(result, fallback=str)
    events.emit(progress_event_type(name, "completed"), data=data)


def _failed(events: EventPublisher, name: str, err: Exception) -> None:
    events.emit(progress_event_type(name, "failed"), error=f"{type(err).__name__}: {err}")
