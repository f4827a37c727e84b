"""Factorial's own metrics, recorded through the Temporal SDK's metric meter.

They leave the worker by the same road as the SDK's own metrics (``temporal_*``): the
runtime's Prometheus endpoint (``Orchestrator(metrics_address=...)``). Activity code records
through ``activity.metric_meter()``; the task workflow records how a task ended through
``workflow.metric_meter()``, which stays silent while a workflow replays, so a task is counted
once however often its history is replayed. Outside Temporal (``run_inline``) nothing is
recorded. Every metric carries an ``agent`` label; durations are in milliseconds.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import TYPE_CHECKING

from temporalio import activity, workflow
from temporalio.common import MetricMeter

if TYPE_CHECKING:
    from factorial._usage import TokenUsage

#: Turn attempts that ended, by ``outcome`` (``succeeded``, ``failed`` or ``cancelled``).
TURNS = "factorial_turns"
#: Turn attempts that were retries of a failed attempt.
TURN_RETRIES = "factorial_turn_retries"
#: Milliseconds one turn attempt took (model call, tools, hooks, events).
TURN_DURATION = "factorial_turn_duration"
#: Milliseconds one model call took, by ``outcome`` (``succeeded``, ``failed``, ``cancelled``).
MODEL_LATENCY = "factorial_model_latency"
#: Prompt tokens the model reported.
INPUT_TOKENS = "factorial_input_tokens"
#: Completion tokens the model reported.
OUTPUT_TOKENS = "factorial_output_tokens"
#: Tool calls, by ``tool``.
TOOL_CALLS = "factorial_tool_calls"
#: Tool calls that failed (bad arguments, the tool raised, unknown tool), by ``tool``.
TOOL_ERRORS = "factorial_tool_errors"
#: Tasks that ended, by ``outcome`` (``completed``, ``failed`` or ``cancelled``).
TASKS = "factorial_tasks"

#: Every metric this module defines.
NAMES = (
    TURNS,
    TURN_RETRIES,
    TURN_DURATION,
    MODEL_LATENCY,
    INPUT_TOKENS,
    OUTPUT_TOKENS,
    TOOL_CALLS,
    TOOL_ERRORS,
    TASKS,
)

_DURATION_BUCKETS_MS = (50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000, 120000, 300000)

#: Histogram buckets of our durations, for the runtime's Prometheus settings.
HISTOGRAM_BUCKETS: Mapping[str, Sequence[float]] = {
    TURN_DURATION: _DURATION_BUCKETS_MS,
    MODEL_LATENCY: _DURATION_BUCKETS_MS,
}

#: The label of a tool call whose name the agent does not know (model-invented names
#: would otherwise grow the label's values without bound).
UNKNOWN_TOOL = "unknown"


def _activity_meter() -> MetricMeter | None:
    return activity.metric_meter() if activity.in_activity() else None


def record_turn(agent: str, outcome: str, seconds: float, attempt: int) -> None:
    """Count a turn attempt that ended (and a retry if it was one), with its duration."""
    meter = _activity_meter()
    if meter is None:
        return
    labels = {"agent": agent}
    meter.create_counter(
        TURNS, "Turn attempts that ended, by outcome (succeeded, failed, cancelled)."
    ).add(1, {**labels, "outcome": outcome})
    meter.create_histogram_timedelta(TURN_DURATION, "Duration of a turn attempt.", "ms").record(
        timedelta(seconds=seconds), labels
    )
    if attempt > 1:
        meter.create_counter(TURN_RETRIES, "Turn attempts that retried a failed one.").add(
            1, labels
        )


def record_model_call(agent: str, seconds: float, usage: TokenUsage | None, outcome: str) -> None:
    """Record one model call's latency and, when it answered, the tokens it reported."""
    meter = _activity_meter()
    if meter is None:
        return
    labels = {"agent": agent}
    meter.create_histogram_timedelta(MODEL_LATENCY, "Duration of a model call.", "ms").record(
        timedelta(seconds=seconds), {**labels, "outcome": outcome}
    )
    if usage is None:
        return
    prompt, completion = usage.prompt_tokens, usage.completion_tokens
    if prompt:
        meter.create_counter(INPUT_TOKENS, "Prompt tokens the model reported.").add(prompt, labels)
    if completion:
        meter.create_counter(OUTPUT_TOKENS, "Completion tokens the model reported.").add(
            completion, labels
        )


def record_tool_call(agent: str, tool: str, is_error: bool) -> None:
    """Count one tool call, and a tool error if it failed."""
    meter = _activity_meter()
    if meter is None:
        return
    labels = {"agent": agent, "tool": tool}
    meter.create_counter(TOOL_CALLS, "Tool calls.").add(1, labels)
    if is_error:
        meter.create_counter(TOOL_ERRORS, "Tool calls that failed.").add(1, labels)


def record_task_end(agent: str, outcome: str) -> None:
    """Count a task that ended; call from workflow code (silent during replay)."""
    workflow.metric_meter().create_counter(TASKS, "Tasks that ended, by outcome.").add(
        1, {"agent": agent, "outcome": outcome}
    )
