"""The batch events a root (or a lone leaf) announces: progress, then one ending; and the
terminal events of a batch's tasks (``announce_end``).

``batch_progress`` goes out whenever the progress or the count of ended tasks changes; while
a send is in flight, newer progress replaces the queued one, so a busy batch sends the latest
state, not every step. ``batch_completed``, ``batch_failed`` (its budget or failure policy
stopped it, with the ``reason``) or ``batch_cancelled`` goes out exactly once, after every
task's terminal event.
"""

from __future__ import annotations

from typing import Any

from temporalio import workflow

from factorial.workflows._emitter import StreamEmitter

with workflow.unsafe.imports_passed_through():
    from factorial import _wire as wire
    from factorial import events as ev
    from factorial._progress import max_units, percent


def announce_end(
    events: StreamEmitter,
    agent_name: str,
    result: wire.SubTaskResult,
    reason: str | None = None,
) -> None:
    """A task's terminal events, from its result: ``agent_output`` and ``run_completed``,
    ``run_cancelled`` (with the ``reason`` its batch stopped it, if given) or ``run_failed``."""
    task: dict[str, Any] = {"task_id": result.task_id, "agent_name": agent_name}
    usage = result.usage.model_dump(mode="json") if result.usage is not None else None
    ending = ev.terminal_events(
        result.status,
        turn=result.turn,
        output=result.output,
        error=result.error,
        usage=usage,
        reason=reason,
    )
    for event_type, fields in ending:
        events.emit(event_type, **task, **fields)


class Announcer:
    """Publishes one batch's events."""

    def __init__(self, inp: wire.BatchInput, events: StreamEmitter) -> None:
        self._inp = inp
        self._events = events
        self._last: tuple[float, int] | None = None

    def progress(self, counts: wire.BatchCounts) -> None:
        """Announce ``batch_progress`` if it moved."""
        value = percent(counts.done_units, max_units(self._inp.max_turns, self._inp.total_tasks))
        ended = counts.completed + counts.failed + counts.cancelled
        if (value, ended) != self._last:
            self._last = (value, ended)
            self._events.emit(
                ev.BATCH_PROGRESS, coalesce=True, **self._fields(counts, value, "active")
            )

    def tasks_cancelled(self, task_ids: list[str], reason: str | None = None) -> None:
        """Announce ``run_cancelled`` for tasks a leaf stopped (from its final report)."""
        for task_id in task_ids:
            result = wire.SubTaskResult(task_id=task_id, status="cancelled")
            announce_end(self._events, self._inp.agent_name, result, reason)

    def ended(self, counts: wire.BatchCounts, status: str, reason: str | None = None) -> None:
        """Announce the batch's end: ``batch_completed`` (at 100%), ``batch_failed`` (its
        budget or failure policy stopped it: ``reason``) or ``batch_cancelled``."""
        if status == "completed":
            if self._last is None or self._last[0] != 100.0:
                self._events.emit(
                    ev.BATCH_PROGRESS, coalesce=True, **self._fields(counts, 100.0, "active")
                )
            self._events.emit(ev.BATCH_COMPLETED, **self._fields(counts, 100.0, status))
        else:
            value = percent(
                counts.done_units, max_units(self._inp.max_turns, self._inp.total_tasks)
            )
            if status == "failed":
                fields = {**self._fields(counts, value, status), "reason": reason}
                self._events.emit(ev.BATCH_FAILED, **fields)
            else:
                self._events.emit(ev.BATCH_CANCELLED, **self._fields(counts, value, status))

    def _fields(self, counts: wire.BatchCounts, progress: float, status: str) -> dict[str, Any]:
        parent = self._inp.parent_task_id
        return {
            "agent_name": self._inp.agent_name,
            "progress": progress,
            "completed_tasks": counts.completed + counts.failed + counts.cancelled,
            "total_tasks": self._inp.total_tasks,
            "outcomes": {
                "completed": counts.completed,
                "failed": counts.failed,
                "cancelled": counts.cancelled,
            },
            "usage": counts.usage.model_dump(mode="json"),
            "status": status,
            **({"parent_task_id": parent} if parent else {}),
        }
