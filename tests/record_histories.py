"""Record workflow histories for the replay tests: ``python -m tests.record_histories``.

Starts a local dev server, runs scripted tasks (``tests.history_tasks``), batches and an event
stream (``tests.history_batches``), one scenario each, and writes their histories to
``tests/histories/``:

* ``agent_task_basic.json``: a tool call, then a final reply.
* ``agent_task_steer_deferred.json``: a deferred tool call; while the task waits for its
  result it is steered, then the result arrives and the next turn answers.
* ``agent_task_cancelled.json``: cancelled while a slow turn runs.
* ``agent_task_fanout.json``: a forking tool starts two sub-agents (announced by
  ``task_pending_child_task_results``); the next turn reads their results block.
* ``batch_leaf.json``: a batch of three tasks (``max_turns=2``: a tool call, then a reply)
  small enough to be a single leaf, its own root.
* ``batch_root.json`` and ``batch_root_part0.json``: a batch of five tasks split into leaves
  of two (``batch_chunk_size=2``): the root, started after its leaves (which hold the
  payloads), and its first leaf, which reports its progress to the root.
* ``batch_root_paced.json`` and ``batch_root_paced_part3.json``: a batch of eight tasks in
  leaves of two: the root of its four leaves, of which only ``RUNNING_LEAVES`` (three) run
  tasks at once, and its fourth leaf, which waits until the root, once a leaf has reported
  its end, lets it start its tasks (``leaf_go``).
* ``batch_cancelled.json``: a batch cancelled with ``cancel_batch`` while its tasks run slow
  turns; it cancels them by a local activity (``factorial.workflows._cancel``).
* ``batch_root_cancelled.json`` and ``batch_root_cancelled_part0.json``: the root of a batch
  of three tasks in leaves of two, cancelled likewise, and its first leaf. The root cancels
  its leaves by a local activity too, and announces the ``run_cancelled`` of the tasks the
  leaf lists in its final report.
* ``owner_events_idle.json``: an owner's event stream (idle timeout 1 s) that takes one
  task's events, then closes for lack of publishers and subscribers.

The agent features' scenarios (``tests.history_features``; its ``GUARDS`` names the patches
each history records):

* ``agent_task_budget.json``: a task with ``Budget(turns=2)`` that loops on a tool: it fails
  with ``BudgetExceeded`` at the boundary of its second turn (``task-budget``), its failure
  carrying its context (``failure-carries-context``).
* ``agent_task_failed.json``: a task whose model answers HTTP 400: it fails, its failure
  carrying its context (``failure-carries-context``).
* ``agent_task_fallback.json``: ``fallback_models``: the primary answers 503, the retried turn
  answers with the secondary (no patch: a retried turn).
* ``agent_task_streaming.json``: ``Agent(stream=True)`` streams its answer (no patch: the
  streaming is the turn activity's).
* ``agent_task_join.json`` and ``batch_join.json``: a forking tool with ``join="first"``
  forks a fast and a slow child; its sub-batch (``batch-join-policy``) completes once the fast
  one has, and cancels the slow one; the parent reads the results.
* ``batch_budget.json``: two looping tasks under a batch ``Budget(tokens=500)``: the batch
  (``batch-budget``) cancels them once spent and ends ``failed``.
* ``batch_failure_policy.json``: ``FailurePolicy(max_failed=0)`` over a failing and a slow
  task: the failure cancels the slow one and the batch (``batch-failure-policy``) ends
  ``failed``.

``tests/histories/local/`` holds the task scenarios recorded with local turns
(``AgentWorkerConfig(turn_execution="local")``); the files above have regular ones.
``python -m tests.record_histories local`` records only those (likewise ``activity``);
scenario names after the modes record only those scenarios (a chunked batch writes its leaf
too, the join its sub-batch), e.g. ``python -m tests.record_histories activity local
agent_task_budget``.

``tests/histories/v0.1/`` holds histories recorded by 0.1 (tasks, ``BatchWorkflow`` batches
and two event-stream runs); they are never re-recorded, and must keep replaying.
``tests/histories/before_ops/`` (and its ``local/``) keeps every scenario as recorded before
the batch summary memo (``batch-summary-memo``), the sub-agents' event
(``task-pending-child-task-results-event``) and the other patches of the operations and agent
features issues; they must keep replaying.
``tests/histories/older/`` likewise keeps histories of code since changed behind a
``workflow.patched``: ``batch_cancelled.json`` and ``batch_root_cancelled.json`` are a leaf
and a root that cancelled their tasks or leaves with one ``RequestCancelExternal`` command
each (before ``leaf-stop-by-local-activity`` and ``root-cancel-by-local-activity``).

A task's id is its file's name; a batch's id is random (``batch-<hex>``), and its first leaf's
is ``{batch_id}-part0``. ``load_history`` takes the workflow id from the history's started
event, so a replay runs under the id the workflow really had. ``tests/integration/
test_replay.py`` also calls ``record_all`` to record fresh histories against the current code.
"""

from __future__ import annotations

import asyncio
import gzip
import json
import sys
from collections.abc import Collection
from pathlib import Path

from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowHistory

from factorial import Agent, Orchestrator
from factorial._wire import TurnExecution
from factorial.devserver import DevServer
from tests.history_batches import (
    BASE_BATCH_SCENARIOS,
    BATCH_RUNNERS,
    CANCELED_BATCH_SCENARIOS,
    PACED_SCENARIOS,
    build_batch_agents,
)
from tests.history_features import (
    FAILED_SCENARIOS,
    FEATURE_BATCH_RUNNERS,
    FEATURE_SCENARIOS,
    FEATURE_TASK_RUNNERS,
    FEATURE_TASK_SCENARIOS,
    build_feature_agents,
    config_of,
)
from tests.history_tasks import CANCELLED, TASK_RUNNERS, TASK_SCENARIOS, build_task_agents

HISTORIES_DIR = Path(__file__).resolve().parent / "histories"
# The histories recorded before the agent features' (one file each).
BASE_SCENARIOS = (*TASK_SCENARIOS, *BASE_BATCH_SCENARIOS)
#: Every recorded history.
SCENARIOS = (*BASE_SCENARIOS, *PACED_SCENARIOS, *FEATURE_SCENARIOS)
V01_DIR = HISTORIES_DIR / "v0.1"
OLDER_DIR = HISTORIES_DIR / "older"
BEFORE_OPS_DIR = HISTORIES_DIR / "before_ops"
LOCAL_DIR = HISTORIES_DIR / "local"
#: What is recorded with local turns (a batch's own history does not depend on the mode).
BASE_LOCAL_SCENARIOS = TASK_SCENARIOS
LOCAL_SCENARIOS = (*TASK_SCENARIOS, *FEATURE_TASK_SCENARIOS)
CANCELED_SCENARIOS = frozenset({CANCELLED, *CANCELED_BATCH_SCENARIOS})


def build_agents(prefix: str) -> dict[str, Agent]:
    """The scripted agent of each scenario, named ``{prefix}_{scenario}``."""
    return {
        **build_feature_agents(prefix),
        **build_task_agents(prefix),
        **build_batch_agents(prefix),
    }


_RUNNERS = {**TASK_RUNNERS, **FEATURE_TASK_RUNNERS}
_BATCH_RUNNERS = {**BATCH_RUNNERS, **FEATURE_BATCH_RUNNERS}


async def record_all(
    orch: Orchestrator,
    *,
    prefix: str = "replay",
    owner: str = "replay-owner",
    id_suffix: str = "",
    turn_execution: TurnExecution = "activity",
    only: Collection[str] | None = None,
) -> dict[str, WorkflowHistory]:
    """Run the scenarios on ``orch`` (its workers are started here) and fetch the histories.

    Task ids are ``{scenario}{id_suffix}`` and batch ids are random; the result maps the
    names in ``SCENARIOS`` (``LOCAL_SCENARIOS`` with local turns) to histories, each
    carrying its real workflow id. ``only`` runs just the scenarios it names (those of
    ``_RUNNERS`` and ``_BATCH_RUNNERS``), with what they record besides (a batch's leaf).
    """
    agents = build_agents(prefix)
    for scenario, agent in agents.items():
        orch.register_runner(agent=agent, agent_worker_config=config_of(scenario, turn_execution))
    await orch.start_workers()
    client = await orch.client()
    local = turn_execution == "local"
    workflow_ids: dict[str, str] = {}
    for scenario, runner in _RUNNERS.items():
        if only is None or scenario in only:
            task_id = f"{scenario}{id_suffix}"
            besides = await runner(orch, agents[scenario], task_id, owner, local)
            workflow_ids[scenario] = task_id
            if besides and not local:  # a sub-batch's history does not depend on the mode
                workflow_ids.update(besides)
    if not local:
        for scenario, batch_runner in _BATCH_RUNNERS.items():
            if only is None or scenario in only:
                workflow_ids.update(await batch_runner(orch, agents[scenario], owner))
    histories: dict[str, WorkflowHistory] = {}
    for scenario, workflow_id in workflow_ids.items():
        workflow_id, _, run_id = workflow_id.partition("@")
        handle = client.get_workflow_handle(workflow_id, run_id=run_id or None)
        history = await handle.fetch_history()
        _check_closed(scenario, history)
        histories[scenario] = history
    return histories


def _check_closed(scenario: str, history: WorkflowHistory) -> None:
    expected = EventType.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED
    if scenario in CANCELED_SCENARIOS:
        expected = EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CANCELED
    elif scenario in FAILED_SCENARIOS:
        expected = EventType.EVENT_TYPE_WORKFLOW_EXECUTION_FAILED
    last = history.events[-1].event_type
    assert last == expected, f"{scenario} ended with {EventType.Name(last)}"


def load_history(path: Path) -> WorkflowHistory:
    """A recorded history, under the workflow id its started event names (else the file's stem).

    The id matters: a workflow sees it (``workflow.info().workflow_id``), and a batch passes
    it to its tasks and leaves. Large histories are stored gzipped (``.json.gz``).
    """
    raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    data = json.loads(raw)
    started = data["events"][0].get("workflowExecutionStartedEventAttributes", {})
    return WorkflowHistory.from_json(started.get("workflowId") or path.stem, data)


async def main(modes: list[TurnExecution], only: list[str] | None) -> None:
    for mode in modes:
        # A server per mode: the task scenarios' ids are their names, the same in each mode.
        server = DevServer().start()
        try:
            orch = Orchestrator(temporal_address=server.address)
            try:
                histories = await record_all(
                    orch, prefix=f"replay_{mode}", turn_execution=mode, only=only
                )
            finally:
                await orch.close()
        finally:
            server.stop()
        directory = HISTORIES_DIR if mode == "activity" else LOCAL_DIR
        directory.mkdir(exist_ok=True)
        for scenario, history in histories.items():
            path = directory / f"{scenario}.json"
            path.write_text(history.to_json() + "\n")
            print(f"wrote {path} ({len(history.events)} events)", file=sys.stderr)


def _arguments(argv: list[str]) -> tuple[list[TurnExecution], list[str] | None]:
    """The turn modes (both if none is named) and the scenarios (all if none is named)."""
    modes: list[TurnExecution] = []
    only: list[str] = []
    for arg in argv:
        if arg in ("activity", "local"):
            modes.append("local" if arg == "local" else "activity")
        elif arg in _RUNNERS or arg in _BATCH_RUNNERS:
            only.append(arg)
        else:
            raise SystemExit(
                "usage: python -m tests.record_histories [activity] [local] [scenario ...]\n"
                f"scenarios: {' '.join([*_RUNNERS, *_BATCH_RUNNERS])}"
            )
    return modes or ["activity", "local"], only or None


if __name__ == "__main__":
    asyncio.run(main(*_arguments(sys.argv[1:])))
