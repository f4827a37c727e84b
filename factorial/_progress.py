"""Batch progress, counted in one place: by leaves, roots, the Orchestrator and sub-agents.

The rule (from the seed): with ``max_turns`` set, a batch's maximum is ``max_turns * tasks``;
each finished turn adds one and a task that ends adds the turns it had left. Without it, each
task that ends adds one. Completed, failed and cancelled all count; so does a task a cancelled
batch never started.

Pure code: workflows import it.
"""

from __future__ import annotations

from collections.abc import Iterable

from factorial._wire import BatchCounts, TokenUsage

OUTCOMES = ("completed", "failed", "cancelled")


def max_units(max_turns: int | None, tasks: int) -> int:
    """The batch's maximum progress: ``max_turns * tasks``, or ``tasks``."""
    return (max_turns or 1) * tasks


def percent(done_units: int, maximum: int) -> float:
    """Progress 0-100, rounded to two decimals."""
    return round(100.0 * done_units / max(1, maximum), 2)


def combine(parts: Iterable[BatchCounts]) -> BatchCounts:
    """The counts of a batch from those of its leaves."""
    total = BatchCounts()
    for counts in parts:
        total.done_units += counts.done_units
        total.completed += counts.completed
        total.failed += counts.failed
        total.cancelled += counts.cancelled
        total.terminal_indices.extend(counts.terminal_indices)
        total.usage += counts.usage
        total.turns += counts.turns
    total.terminal_indices.sort()
    return total


class Tally:
    """Finished turns and outcomes of one leaf's tasks, by batch index."""

    def __init__(self, max_turns: int | None) -> None:
        self.max_turns = max_turns
        self.turns: dict[int, int] = {}
        self.outcomes: dict[int, str] = {}
        self.usage = TokenUsage()
        #: Running tasks' usage so far (``task_usage`` reports, in a batch with a budget).
        self.live: dict[int, TokenUsage] = {}

    def turned(self, index: int, turns: int) -> bool:
        """Record that task ``index`` finished ``turns`` turns; True if that moved progress."""
        if index in self.outcomes or turns <= self.turns.get(index, 0):
            return False
        self.turns[index] = turns
        return self.max_turns is not None

    def spent(self, index: int, turns: int, usage: TokenUsage) -> bool:
        """Record a running task's usage so far after ``turns`` turns; True if it is news.

        Reports are absolute: a repeat, or one older than the latest, changes nothing.
        """
        if index in self.outcomes or turns < self.turns.get(index, 0):
            return False
        self.turns[index] = turns
        self.live[index] = usage
        return True

    def ended(self, index: int, outcome: str, usage: TokenUsage | None = None) -> None:
        """Record how task ``index`` ended, and the tokens it used where known.

        ``outcome`` is ``completed``, ``failed`` or ``cancelled``. A task whose usage is not
        known (cancelled) keeps the usage it last reported.
        """
        live = self.live.pop(index, None)
        if index not in self.outcomes:
            usage = usage if usage is not None else live
            if usage is not None:
                self.usage += usage
        self.outcomes[index] = outcome

    def count(self, outcome: str) -> int:
        """How many tasks ended with ``outcome``."""
        return sum(1 for ended in self.outcomes.values() if ended == outcome)

    def spent_so_far(self) -> tuple[TokenUsage, int]:
        """Tokens of the ended tasks and the running ones' latest reports; turns reported."""
        return sum(self.live.values(), self.usage), sum(self.turns.values())

    def done_units(self) -> int:
        """Progress units so far (see the module docstring)."""
        if not self.max_turns:
            return len(self.outcomes)
        cap = self.max_turns
        return len(self.outcomes) * cap + sum(
            min(turns, cap) for i, turns in self.turns.items() if i not in self.outcomes
        )

    def counts(self) -> BatchCounts:
        """The counters so far."""
        outcomes = list(self.outcomes.values())
        usage, turns = self.spent_so_far()
        return BatchCounts(
            done_units=self.done_units(),
            completed=outcomes.count("completed"),
            failed=outcomes.count("failed"),
            cancelled=outcomes.count("cancelled"),
            terminal_indices=sorted(self.outcomes),
            usage=usage,
            turns=turns,
        )


def lost(counts: BatchCounts, indices: range, max_turns: int | None) -> BatchCounts:
    """``counts`` of a leaf that can no longer report, its unreported tasks counted cancelled."""
    known = set(counts.terminal_indices)
    missing = [i for i in indices if i not in known]
    return BatchCounts(
        done_units=max_units(max_turns, len(indices)),
        completed=counts.completed,
        failed=counts.failed,
        cancelled=counts.cancelled + len(missing),
        terminal_indices=list(indices),
        usage=counts.usage,
        turns=counts.turns,
    )
