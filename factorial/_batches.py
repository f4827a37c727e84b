"""Starting and cancelling batches: what ``Orchestrator`` does for ``enqueue_batch``.

A batch of at most ``chunk_size`` tasks is one workflow, a lone leaf. A larger one is split
into leaves of at most ``chunk_size`` tasks and about 1 MiB of payloads each; the leaves are
started concurrently (each with its own payloads), then the root that counts them. So
``enqueue_batch`` costs one start per 200 tasks, whatever their number, and returns in
seconds even at 20,000 tasks. If a start fails, the leaves already started are cancelled
and nothing is left half-made.

``max_running`` bounds the tasks of one batch running at once. Only ``RUNNING_LEAVES`` leaves
run tasks at a time, each a third of the window; the others wait, payloads in hand, and the
root lets the next one start when one ends. At W(10000 tasks x 3 turns), with all 50 leaves
running four tasks each, a leaf woke for almost every task's start and end alone: the
batch's share was 11.9 history events a task (2.2 leaf workflow tasks, and a signal of
terminal events to the stream for almost every task), against 7.5 at 1,000 tasks, where
five leaves ran 40 each and their tasks' ends shared workflow tasks and signals.

Cancelling: the root cancels its leaves and each leaf cancels its running tasks, so the
batch's own history guarantees it. That path, though, waits in the server's transfer queue
behind the running tasks' work (tens of seconds for 500 tasks on a busy 2-core dev server).
``cancel_running`` therefore also cancels the leaves, then the running tasks, straight from
the client: each cancel is then recorded by its RPC. There are at most ``max_running`` tasks
running, so the time does not grow with the batch's size.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import re
from collections.abc import Awaitable, Sequence
from datetime import UTC, datetime
from typing import Any

from temporalio.client import (
    Client,
    WorkflowExecutionDescription,
    WorkflowFailureError,
    WorkflowHandle,
)
from temporalio.common import WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError

from factorial import _idempotency, _tasks
from factorial import _wire as wire
from factorial._batch_read import batch_from, read
from factorial._budget import Budget, checked_budget
from factorial._cancelling import cancel_each
from factorial._ids import idempotent_id, new_batch_id, validate_id
from factorial._payloads import chunk_payloads
from factorial._policies import FailurePolicy
from factorial._progress import max_units
from factorial._workers import agent_task_queue
from factorial.agent import BaseAgent
from factorial.context import AgentContext
from factorial.errors import InvalidPayloadError, UserError
from factorial.task import Batch
from factorial.worker import AgentWorkerConfig

#: Leaf starts in flight at once.
_CONCURRENT_STARTS = 20
#: Leaves of one batch that run tasks at once (see the module docstring).
RUNNING_LEAVES = 3
#: Task starts in flight at once in one batch, over all its leaves
#: (see ``factorial.workflows._leaf``).
MAX_STARTING = 20
#: Progress reports a root hears from all its leaves, at most (besides their final ones).
MAX_ROOT_REPORTS = 500
#: Progress reports each leaf sends at least, however many leaves there are.
MIN_LEAF_REPORTS = 4
#: Most leaves (chunks of ``batch_chunk_size`` tasks) one batch may have.
MAX_LEAVES = 1_000
#: Seconds between sweeps of a batch being cancelled (visibility lags about a second).
_SWEEP_INTERVAL = 1.5


async def enqueue(
    client: Client,
    agent: BaseAgent[Any],
    config: AgentWorkerConfig,
    owner_id: str,
    payloads: Sequence[AgentContext | dict[str, Any]],
    chunk_size: int,
    max_running: int,
    search_attributes: frozenset[str],
    idempotency_key: str | None = None,
    budget: Budget | None = None,
    on_failure: FailurePolicy | None = None,
) -> Batch:
    """Validate every payload (nothing starts if one fails), then start the batch.

    With an ``idempotency_key``, start it once and read it back (``factorial._idempotency``).
    """
    checked_budget(budget)
    validate_id(owner_id, "owner id")
    if on_failure is not None and not isinstance(on_failure, FailurePolicy):
        raise UserError(f"on_failure must be a FailurePolicy, got {on_failure!r}")
    if not payloads:
        raise InvalidPayloadError("a batch needs at least one payload")
    contexts = []
    for index, payload in enumerate(payloads):
        try:
            contexts.append(agent.validate_payload(payload).model_dump(mode="json"))
        except InvalidPayloadError as err:
            raise InvalidPayloadError(f"payload {index}: {err}") from None
    chunks = chunk_payloads(client, contexts, chunk_size)
    if len(chunks) > MAX_LEAVES:
        # The root cancels its leaves one request each; Temporal stalls a run past 2,000.
        raise UserError(
            f"a batch of {len(contexts)} tasks needs {len(chunks)} leaves, over the "
            f"{MAX_LEAVES} one batch runs; raise batch_chunk_size or split the batch"
        )
    key_id = None if idempotency_key is None else idempotent_id("batch", owner_id, idempotency_key)
    inp = wire.BatchInput(
        batch_id=key_id or new_batch_id(),
        owner_id=owner_id,
        agent_name=agent.name,
        task_queue=agent_task_queue(agent.name, config),
        total_tasks=len(contexts),
        policy=config.turn_policy(),
        max_turns=agent.max_turns,
        created_at=datetime.now(UTC),
        track_status=wire.SA_STATUS in search_attributes,
        hooks=agent.hooks_outside_turns(),
        budget=budget,
        task_budget=agent.budget,
        on_failure=on_failure,
    )
    if key_id is None:
        await start_batch(client, inp, chunks, max_running)
        return new_batch_record(inp)
    expected = _idempotency.fingerprint(
        agent.name, contexts, budget=budget, task_budget=agent.budget, on_failure=on_failure
    )
    with contextlib.suppress(WorkflowAlreadyStartedError):  # it ran and has ended: read it
        await start_batch(client, inp, chunks, max_running, {wire.IDEMPOTENCY_MEMO: expected})
    return await read(*await _idempotency.read_back(client, key_id, expected, "batch"))


async def cancel(
    client: Client, handle: WorkflowHandle[Any, Any], description: WorkflowExecutionDescription
) -> None:
    """Cancel a running batch and return once its root has ended (see the module docstring).

    The batch's own cancellation reaches every task; the sweeps (``cancel_running``) only
    make it fast. Each sweep asks the tasks that visibility shows running and were not
    asked yet.
    """
    if not await _tasks.cancel(handle, description):
        return
    asked: set[str] = set()
    ended = asyncio.ensure_future(handle.result())
    try:
        while not ended.done():
            await cancel_running(client, handle.id, asked)
            await asyncio.wait([ended], timeout=_SWEEP_INTERVAL)
        with contextlib.suppress(WorkflowFailureError):  # cancelled, as asked
            ended.result()
    finally:
        ended.cancel()


async def start_batch(
    client: Client,
    base: wire.BatchInput,
    chunks: list[list[dict[str, Any]]],
    max_running: int,
    once: dict[str, Any] | None = None,
) -> None:
    """Start the workflows of batch ``base.batch_id``: one lone leaf, or leaves then a root.

    ``once`` (an idempotent batch's memo): starts use the workflow running under their id,
    and a failed start is not undone (other callers share the leaves; the key retries it).
    """
    running, window, starting = shares(len(chunks), max_running)
    summary = f"batch of {base.total_tasks} {base.agent_name} tasks for {base.owner_id}"
    if len(chunks) == 1:
        update = {"payloads": chunks[0], "max_running": window, "max_starting": starting}
        lone = base.model_copy(update=update)
        await _start(client, lone, base.batch_id, summary, once)
        return
    leaves = _leaves(base, chunks, running, window, starting)
    started: list[str] = []
    try:
        limit = asyncio.Semaphore(_CONCURRENT_STARTS)

        async def start_leaf(leaf: wire.BatchInput) -> None:
            async with limit:
                leaf_id = wire.leaf_id_of(base.batch_id, leaf.chunk_index)
                last = leaf.first_index + len(leaf.payloads or []) - 1
                tasks = f"tasks {leaf.first_index}-{last}"
                text = f"part {leaf.chunk_index} of batch {base.batch_id}: {tasks}"
                await _start(client, leaf, leaf_id, text, once)
                started.append(leaf_id)

        await asyncio.gather(*(start_leaf(leaf) for leaf in leaves))
        sizes = [len(chunk) for chunk in chunks]
        root = base.model_copy(update={"leaf_sizes": sizes, "running_leaves": running})
        await _start(client, root, base.batch_id, summary, once)
    except BaseException:
        if once is not None:
            raise
        # Best effort: leave no leaf of a batch that failed to start running.
        await cancel_each(client, started, best_effort=True)
        raise


def shares(leaves: int, max_running: int) -> tuple[int, int, int]:
    """How a batch of ``leaves`` leaves runs at most ``max_running`` tasks at once.

    Returns the leaves that run tasks at a time, each one's window of running tasks (together
    never more than ``max_running``) and each one's task starts in flight.
    """
    running = min(leaves, RUNNING_LEAVES, max_running)
    window = max_running // running
    starting = max(1, min(window, math.ceil(MAX_STARTING / running)))
    return running, window, starting


def _leaves(
    base: wire.BatchInput,
    chunks: list[list[dict[str, Any]]],
    running: int,
    window: int,
    starting: int,
) -> list[wire.BatchInput]:
    """The leaves' inputs: the first ``running`` start their tasks at once, the rest wait."""
    leaves, first = [], 0
    for index, chunk in enumerate(chunks):
        step = _report_step(base, len(chunk))
        leaves.append(
            base.model_copy(
                update={
                    "payloads": chunk,
                    "first_index": first,
                    "chunk_index": index,
                    "report_to": base.batch_id,
                    "total_tasks": len(chunk),
                    "max_running": window,
                    "max_starting": starting,
                    "wait_for_go": index >= running,
                    "report_every": _report_every(running),
                    "report_step": step,
                    # Leaf k first reports at (k mod running + 1) / running of a step, so the
                    # root hears the running leaves one after another, not all together.
                    "report_first": math.ceil(step * (index % running + 1) / running),
                }
            )
        )
        first += len(chunk)
    return leaves


def _report_every(leaves: int) -> float:
    """Seconds between a leaf's progress reports: the root hears about one a second in all.

    ``leaves``: the leaves that run tasks at once.

    Every report costs the root's history a signal, a workflow task and a ``batch_progress``
    event. At one every ``leaves / 10`` s (ten a second in all) a 50-leaf root passed the
    server's 10,240-event warning after 18 minutes; one a second in all is ten times fewer.
    ``_report_step`` bounds the reports of a batch that runs for hours.
    """
    return max(1.0, float(leaves))


def _report_step(base: wire.BatchInput, leaf_tasks: int) -> int:
    """Progress units a leaf gains between two reports.

    The root hears about ``MAX_ROOT_REPORTS`` progress reports in all, however long the batch
    runs, and each leaf reports at least ``MIN_LEAF_REPORTS`` times.

    The time throttle alone let a root's history grow with the batch's duration (a batch of
    slow turns running for hours would pass Temporal's 50k-event limit); with this step it is
    bounded by the batch's size: at most ``MAX_ROOT_REPORTS`` or ``MIN_LEAF_REPORTS`` per leaf,
    whichever is more, plus two per leaf (its staggered first report and its final one), each
    about six events (signal, workflow task, ``batch_progress``): about 4,000 events for 100
    leaves (20,000 tasks), about 37,000 for the most a batch may have (1,000; under the
    50,000 limit, over the 10,240 warning).
    """
    batch_step = math.ceil(max_units(base.max_turns, base.total_tasks) / MAX_ROOT_REPORTS)
    leaf_step = max(1, max_units(base.max_turns, leaf_tasks) // MIN_LEAF_REPORTS)
    return min(batch_step, leaf_step)


def _start(
    client: Client, inp: wire.BatchInput, workflow_id: str, about: str, once: dict[str, Any] | None
) -> Awaitable[Any]:
    # The batch itself (not a leaf of it) starts with its summary in its memo, so get_batch
    # answers before any worker has run it.
    own = inp.report_to is None
    memo: dict[str, Any] = {}
    if own:
        memo[wire.BATCH_SUMMARY_MEMO] = wire.BatchSummary.of(_first_snapshot(inp))
        memo.update(once or {})
    if inp.retry_of:
        memo[wire.RETRY_OF_MEMO] = inp.retry_of
    return client.start_workflow(
        wire.BATCH_WORKFLOW,
        inp,
        id=workflow_id,
        task_queue=wire.BATCH_TASK_QUEUE,
        search_attributes=wire.batch_search_attributes(inp, "active"),
        static_summary=about,
        id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
        id_conflict_policy=_idempotency.conflict_policy(once is not None),
        memo=memo or None,
    )


def new_batch_record(inp: wire.BatchInput) -> Batch:
    """The ``Batch`` of a batch just enqueued (nothing has run yet)."""
    return batch_from(_first_snapshot(inp))


def _first_snapshot(inp: wire.BatchInput) -> wire.BatchSnapshot:
    return wire.BatchSnapshot(
        batch_id=inp.batch_id,
        owner_id=inp.owner_id,
        agent_name=inp.agent_name,
        status="active",
        total_tasks=inp.total_tasks,
        max_progress=max_units(inp.max_turns, inp.total_tasks),
        counts=wire.BatchCounts(),
        created_at=inp.created_at,
        parent_task_id=inp.parent_task_id,
        retry_of=inp.retry_of,
    )


async def cancel_running(client: Client, batch_id: str, done: set[str]) -> None:
    """Cancel the batch's running leaves, then its running tasks, from the client.

    Only the batch's own workflows (``{batch_id}-partK`` and ``{batch_id}-N``) are asked: a
    task's sub-agent batch is cancelled by its task, after the task itself. Ids in ``done``
    were asked before and are skipped; the ones asked now are added. Visibility may miss a
    task that has just started: call again, or let its leaf cancel it.
    """
    own = re.compile(rf"{re.escape(batch_id)}-(part)?\d+")
    query = f"WorkflowId STARTS_WITH '{batch_id}-' AND ExecutionStatus = 'Running'"
    ids = [
        e.id async for e in client.list_workflows(query) if own.fullmatch(e.id) and e.id not in done
    ]
    done.update(ids)
    # Leaves first, so none starts a task in the place of one cancelled here.
    await cancel_each(client, [i for i in ids if "-part" in i], best_effort=True)
    await cancel_each(client, [i for i in ids if "-part" not in i], best_effort=True)
