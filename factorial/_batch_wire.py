"""What a batch sends and receives, and the deterministic ids of its leaves and tasks.

A batch workflow's input, the reports its tasks and leaves signal, its snapshot, and what
a forking parent gets back of each task.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field
from temporalio.common import SearchAttributeKey, SearchAttributePair, TypedSearchAttributes

from factorial._budget import Budget
from factorial._policies import FailurePolicy
from factorial._task_wire import TurnPolicy
from factorial._usage import TokenUsage
from factorial._wire_names import SA_AGENT, SA_BATCH, SA_OWNER, SA_PARENT, SA_STATUS

__all__ = [
    "BatchChunk",
    "BatchCounts",
    "BatchInput",
    "BatchSnapshot",
    "BatchSummary",
    "LeafReport",
    "SubBatchProgress",
    "SubTaskResult",
    "TaskTurnReport",
    "TaskTurnReports",
    "batch_search_attributes",
    "batch_task_of",
    "leaf_id_of",
    "task_id_of",
    "task_index_of",
]


class BatchInput(BaseModel):
    """Input of a batch workflow: a root (``leaf_sizes`` set) or a leaf (``payloads`` set).

    A batch of at most ``batch_chunk_size`` tasks is one leaf, its own root. A larger one is a
    root that only counts and announces, plus one leaf per chunk of payloads; the client
    starts the leaves (each with its payloads) and then the root.
    """

    batch_id: str  # the public batch id (the root's workflow id)
    owner_id: str
    agent_name: str
    task_queue: str
    total_tasks: int
    policy: TurnPolicy = Field(default_factory=TurnPolicy)
    max_turns: int | None = None
    created_at: datetime | None = None
    parent_task_id: str | None = None
    track_status: bool = True
    # Leaf: its tasks' payloads, the batch index of the first, and its root (if not its own).
    payloads: list[dict[str, Any]] | None = None
    first_index: int = 0
    chunk_index: int = 0
    report_to: str | None = None
    # Leaf: how many of its tasks run at once (0: all; batches from 0.1).
    max_running: int = 0
    # Leaf: how many of its task starts are in flight at once (0: the leaf's default).
    max_starting: int = 0
    # Leaf of a root: start no task until the root says so (``leaf_go``).
    wait_for_go: bool = False
    # Leaf of a root: seconds between its progress reports.
    report_every: float = 1.0
    # Leaf of a root: progress units its counts must gain before it reports again (0: any),
    # and before its first report (0: ``report_step``); leaves' first reports are staggered.
    report_step: int = 0
    report_first: int = 0
    # Leaf: the lifecycle hooks the agent defines (None: unknown, run the hook activity).
    hooks: list[str] | None = None
    # Root: how many tasks each leaf runs, in chunk order.
    leaf_sizes: list[int] = Field(default_factory=list)
    # Root: how many leaves run tasks at once; when one ends the next waiting one may start
    # (0: all at once, as batches did before).
    running_leaves: int = 0
    # Legacy root: how many chunks of payloads ``add_chunk`` will deliver.
    chunk_count: int = 0
    # Sub-agent batches: return every task's output or error in the result.
    collect_results: bool = False
    # A batch that retries another batch's failed tasks: that batch's id.
    retry_of: str | None = None
    # Sub-agent batch (a lone leaf): stop once this many tasks have completed (the forking
    # tool's join policy); None: run every task to its end.
    join: int | None = None
    # A batch's own root: cancel the rest and end ``failed`` once too many tasks have failed
    # (checked by the root, from its leaves' counts); None: failures never stop it.
    on_failure: FailurePolicy | None = None
    # The batch's budget (``factorial._budget``), and each task's own (its agent's).
    budget: Budget | None = None
    task_budget: Budget | None = None

    @property
    def is_leaf(self) -> bool:
        """True for a batch that runs tasks itself."""
        return self.payloads is not None


class BatchChunk(BaseModel):
    """Update input: one chunk of a large batch's payloads."""

    index: int
    first_index: int
    payloads: list[dict[str, Any]]


class TaskTurnReport(BaseModel):
    """This task has finished ``turns`` turns (repeats and reordering are harmless)."""

    task_id: str
    turns: int
    # The task's index in its batch (reports from before it was sent carry only the id).
    index: int | None = None


class TaskTurnReports(BaseModel):
    """Signal from the turn activities of one worker process to a batch."""

    reports: list[TaskTurnReport]


class BatchCounts(BaseModel):
    """Progress counters of a batch or of one sub-batch."""

    done_units: int = 0
    completed: int = 0
    failed: int = 0
    cancelled: int = 0
    terminal_indices: list[int] = Field(default_factory=list)
    #: Tokens (and cost) of the tasks ended so far, their sub-agents' included; in a batch
    #: with a budget, also of its running tasks so far (``task_usage`` reports).
    usage: TokenUsage = Field(default_factory=TokenUsage)
    #: In a batch with a budget: the turns its tasks have run.
    turns: int = 0


class LeafReport(BaseModel):
    """Signal from a leaf to its root: its latest counters (absolute, so idempotent)."""

    chunk: int
    counts: BatchCounts
    final: bool = False
    #: On the final report of a stopped leaf: the tasks it cancelled, whose ``run_cancelled``
    #: the root announces (so the leaf's ending is one signal, not two).
    cancelled: list[str] = Field(default_factory=list)


class SubBatchProgress(BaseModel):
    """Signal from a sub-batch to its root: its latest counters (absolute, so idempotent)."""

    chunk: int
    counts: BatchCounts


class SubTaskResult(BaseModel):
    """How one task of a batch ended, as handed back to a forking parent."""

    task_id: str
    status: str
    output: Any = None
    error: str | None = None
    turn: int | None = None
    usage: TokenUsage | None = None


class BatchSnapshot(BaseModel):
    """The batch's state, answered by query and returned when it ends."""

    batch_id: str
    owner_id: str
    agent_name: str
    status: str
    total_tasks: int
    max_progress: int
    counts: BatchCounts
    created_at: datetime | None = None
    parent_task_id: str | None = None
    results: list[SubTaskResult] | None = None
    retry_of: str | None = None
    #: Why a batch ended ``failed`` (``BudgetExceeded: ...``, or its failure policy tripped).
    reason: str | None = None


class BatchSummary(BaseModel):
    """A batch's snapshot as its workflow memo keeps it (``factorial.workflows._summary``).

    The memo is meant to stay small (the server warns past 2 KB), so the ended tasks' indices
    are kept as ranges (``[first, last]``, inclusive), and results are left out.
    """

    batch_id: str
    owner_id: str
    agent_name: str
    status: str
    total_tasks: int
    max_progress: int
    counts: BatchCounts
    ended: list[tuple[int, int]] = Field(default_factory=list)
    created_at: datetime | None = None
    parent_task_id: str | None = None
    retry_of: str | None = None
    reason: str | None = None
    updated_at: datetime | None = None

    @classmethod
    def of(cls, snapshot: BatchSnapshot, updated_at: datetime | None = None) -> BatchSummary:
        """The summary of ``snapshot``."""
        counts = snapshot.counts.model_copy(update={"terminal_indices": []})
        return cls(
            **snapshot.model_dump(exclude={"counts", "results"}),
            counts=counts,
            ended=_ranges(snapshot.counts.terminal_indices),
            updated_at=updated_at,
        )

    def snapshot(self) -> BatchSnapshot:
        """The snapshot this summary keeps (without results)."""
        indices = [i for first, last in self.ended for i in range(first, last + 1)]
        return BatchSnapshot(
            **self.model_dump(exclude={"counts", "ended", "updated_at"}),
            counts=self.counts.model_copy(update={"terminal_indices": indices}),
        )


def _ranges(indices: list[int]) -> list[tuple[int, int]]:
    """Sorted ``indices`` as inclusive ranges: ``[0, 1, 2, 5]`` -> ``[(0, 2), (5, 5)]``."""
    ranges: list[tuple[int, int]] = []
    for index in sorted(indices):
        if ranges and index == ranges[-1][1] + 1:
            ranges[-1] = (ranges[-1][0], index)
        else:
            ranges.append((index, index))
    return ranges


def task_id_of(batch_id: str, index: int) -> str:
    """The deterministic id of a batch's ``index``-th task."""
    return f"{batch_id}-{index}"


def task_index_of(task_id: str) -> int:
    """The batch index in a batch task's id (the inverse of ``task_id_of``)."""
    return int(task_id.rsplit("-", 1)[1])


def batch_task_of(task_id: str) -> tuple[str, int] | None:
    """``(batch_id, index)`` if ``task_id`` has the shape of a batch task's id, else None."""
    batch_id, _, index = task_id.rpartition("-")
    return (batch_id, int(index)) if batch_id and index.isdigit() else None


def leaf_id_of(batch_id: str, chunk: int) -> str:
    """The deterministic workflow id of a batch's ``chunk``-th leaf."""
    return f"{batch_id}-part{chunk}"


def batch_search_attributes(inp: BatchInput, status: str) -> TypedSearchAttributes:
    """The search attributes of a batch's workflows (the batch, its leaves and its tasks)."""
    if not inp.track_status:
        return TypedSearchAttributes.empty
    values = {
        SA_OWNER: inp.owner_id,
        SA_AGENT: inp.agent_name,
        SA_BATCH: inp.batch_id,
        SA_STATUS: status,
        SA_PARENT: inp.parent_task_id,
    }
    return TypedSearchAttributes(
        [SearchAttributePair(SearchAttributeKey.for_keyword(k), v) for k, v in values.items() if v]
    )
