"""OpenTelemetry tracing: Temporal's interceptor, and our spans for model and tool calls.

``Orchestrator(tracing=True)`` puts ``temporalio.contrib.opentelemetry.TracingInterceptor`` on
its client (and so on its workers): starting a task or batch, its workflows and every turn
activity become spans of one trace. Inside a turn, ``factorial.model_call`` and
``factorial.tool_call`` spans carry the agent, task id, turn and tokens. Spans go to the
process's global tracer provider: configure its exporter (OTLP, console, ...) yourself.

OpenTelemetry is the optional extra ``factorial-temporal[otel]`` and is imported only when
used; without it the spans below are no-ops.
"""

from __future__ import annotations

import contextlib
import importlib.util
from collections.abc import Iterator
from typing import Any, Protocol

from factorial.errors import UserError

#: The name of Factorial's tracer.
TRACER_NAME = "factorial"
MODEL_CALL_SPAN = "factorial.model_call"
TOOL_CALL_SPAN = "factorial.tool_call"

_INSTALL_HINT = "pip install 'factorial-temporal[otel]'"


class SpanLike(Protocol):
    """The part of an OpenTelemetry span we use."""

    def set_attribute(self, key: str, value: Any) -> None:
        """Set one attribute."""


class _NoSpan:
    def set_attribute(self, key: str, value: Any) -> None:
        pass


def available() -> bool:
    """Whether OpenTelemetry's API and SDK are installed."""
    return all(
        importlib.util.find_spec(name) is not None
        for name in ("opentelemetry.trace", "opentelemetry.sdk")
    )


def require() -> None:
    """Raise ``UserError`` unless the ``otel`` extra is installed."""
    if not available():
        raise UserError(f"tracing needs OpenTelemetry, which is not installed: {_INSTALL_HINT}")


def interceptor() -> Any:
    """A new ``TracingInterceptor`` (for the client, which hands it to its workers).

    Raises:
        UserError: The ``otel`` extra is not installed.
    """
    require()
    from temporalio.contrib.opentelemetry import TracingInterceptor

    return TracingInterceptor()


def is_tracing_interceptor(value: object) -> bool:
    """Whether ``value`` is Temporal's ``TracingInterceptor`` (without importing OTel)."""
    return any(cls.__name__ == "TracingInterceptor" for cls in type(value).__mro__)


@contextlib.contextmanager
def span(name: str, **attributes: str | int) -> Iterator[SpanLike]:
    """A span under the current one (a no-op without OpenTelemetry).

    Attribute names get the ``factorial.`` prefix. An exception that leaves the span is
    recorded on it and sets its status to error.
    """
    if not _API_INSTALLED:
        yield _NoSpan()
        return
    from opentelemetry import trace

    tracer = trace.get_tracer(TRACER_NAME)
    prefixed = {f"factorial.{key}": value for key, value in attributes.items()}
    with tracer.start_as_current_span(name, attributes=prefixed) as current:
        yield _Prefixed(current)


class _Prefixed:
    """Sets attributes on a span under the ``factorial.`` prefix."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner

    def set_attribute(self, key: str, value: Any) -> None:
        self._inner.set_attribute(f"factorial.{key}", value)


_API_INSTALLED = importlib.util.find_spec("opentelemetry") is not None and (
    importlib.util.find_spec("opentelemetry.trace") is not None
)
