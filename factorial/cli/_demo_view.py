"""What the demo shows of its batch: a live progress bar, and a line as each task ends."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    Progress,
    TaskID,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
)
from rich.text import Text

from factorial import events as ev
from factorial.task import Batch

_END_STYLE = {
    ev.RUN_COMPLETED: ("✓", "bold green"),
    ev.RUN_FAILED: ("✗", "bold red"),
    ev.RUN_CANCELLED: ("■", "bold yellow"),
}


def clip(value: Any, limit: int = 80) -> str:
    """``value`` as one line of text, cut to ``limit`` characters."""
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def short_task_id(task_id: str) -> str:
    """``batch-1a2b3c4d…-0`` for a batch task id (the index stays readable)."""
    head, sep, index = task_id.rpartition("-")
    if not sep or not head.startswith("batch-") or len(head) <= 14:
        return task_id
    return f"{head[:14]}…-{index}"


@dataclass
class Watch:
    """What the demo has seen of its batch so far."""

    batch: Batch
    last_offset: int | None = None
    outputs: dict[str, Any] = field(default_factory=dict)
    ended: dict[str, str] = field(default_factory=dict)
    final: dict[str, Any] | None = None
    #: The batch's own progress, from its last event.
    progress: float = 0.0
    #: The running sub-agent batches of its tasks: id -> (parent task id, fraction done).
    sub_batches: dict[str, tuple[str, float]] = field(default_factory=dict)
    #: What the bar shows; it never moves back.
    shown: float = 0.0

    @property
    def max_turns(self) -> int:
        return self.batch.metadata.max_progress

    def sub_batch_event(self, event: dict[str, Any]) -> None:
        """Note a sub-agent batch's progress (or, at its end, forget it)."""
        if event["event_type"] == ev.BATCH_PROGRESS:
            fraction = float(event.get("progress") or 0.0) / 100
            self.sub_batches[event["batch_id"]] = (event["parent_task_id"], fraction)
        else:
            self.sub_batches.pop(event["batch_id"], None)

    def shown_progress(self) -> float:
        """The batch's progress, plus what its tasks' running sub-agents have done.

        A task waiting for its sub-agents waits on one turn: its sub-agent batches' mean
        fraction done credits that turn (half a task's unit when the batch counts tasks, not
        turns). The credit goes when a sub-agent batch ends; the bar keeps its highest value
        until the parent's turn is counted.
        """
        meta = self.batch.metadata
        per_turn = 1.0 if meta.max_progress > meta.total_tasks else 0.5
        by_parent: dict[str, list[float]] = {}
        for parent, fraction in self.sub_batches.values():
            by_parent.setdefault(parent, []).append(fraction)
        credit = sum(sum(parts) / len(parts) for parts in by_parent.values()) * per_turn
        value = min(100.0, self.progress + 100 * credit / max(1, meta.max_progress))
        self.shown = max(self.shown, round(value, 2))
        return self.shown


class BatchView:
    """A live progress bar on a terminal; one plain line per update otherwise."""

    def __init__(self, console: Console, watch: Watch) -> None:
        self.console = console
        self.watch = watch
        self.live = console.is_terminal and not console.is_dumb_terminal
        self._bar: TaskID | None = None
        self._progress = Progress(
            TextColumn("[bold]batch"),
            BarColumn(),
            TaskProgressColumn(),
            TextColumn("{task.fields[tasks]}"),
            TextColumn("{task.fields[turns]}"),
            TimeElapsedColumn(),
            console=console,
        )
        self._last_line: str | None = None
        self._done = 0

    def __enter__(self) -> BatchView:
        if self.live:
            self._progress.start()
            self._bar = self._progress.add_task(
                "batch", total=100, tasks=self._tasks_text(0), turns=self._turns_text(0.0)
            )
        return self

    def __exit__(self, *exc: object) -> None:
        if self.live:
            self._progress.stop()

    def _tasks_text(self, done: int) -> str:
        return f"{done}/{self.watch.batch.metadata.total_tasks} tasks"

    def _turns_text(self, progress: float) -> str:
        turns = round(progress * self.watch.max_turns / 100)
        return f"{turns}/{self.watch.max_turns} turns"

    def batch_event(self, event: dict[str, Any]) -> None:
        kind = event["event_type"]
        self.watch.progress = float(event.get("progress") or 0.0)
        self._done = int(event.get("completed_tasks") or 0)
        progress = self.watch.shown_progress() if kind == ev.BATCH_PROGRESS else self.watch.progress
        self._show(progress)
        line = f"{kind:<16} {progress:5.1f}%  {self._tasks_text(self._done)}, "
        line += self._turns_text(progress)
        if kind != ev.BATCH_PROGRESS:
            tokens = (event.get("usage") or {}).get("total_tokens")
            if tokens is not None:
                line += f", {tokens:,} tokens"
            self.console.print(Text(line, style="bold"))
        elif not self.live and line != self._last_line:
            self.console.print(line)
        self._last_line = line

    def sub_batch_event(self, event: dict[str, Any]) -> None:
        """A sub-agent batch of one of the batch's tasks moved: so does the bar."""
        self.watch.sub_batch_event(event)
        self._show(self.watch.shown_progress())

    def _show(self, progress: float) -> None:
        if self.live and self._bar is not None:
            self._progress.update(
                self._bar,
                completed=progress,
                tasks=self._tasks_text(self._done),
                turns=self._turns_text(progress),
            )

    def task_ended(self, task_id: str, kind: str, detail: Any) -> None:
        mark, style = _END_STYLE.get(kind, ("·", ""))
        line = Text(no_wrap=True, overflow="ellipsis")
        line.append(f"{mark} ", style=style)
        line.append(f"{short_task_id(task_id)} ", style="magenta")
        line.append(f"{kind:<14}", style=style)
        if detail:
            line.append(f" {clip(detail, 70)}")
        # One row whatever the width: rich 15 wraps a Text despite its own no_wrap.
        self.console.print(line, no_wrap=True, overflow="ellipsis", crop=True)
