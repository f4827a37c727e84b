"""Replay recorded task, batch and event-stream histories against the current code.

The committed histories in ``tests/histories`` (regenerate with
``python -m tests.record_histories``) catch changes that would break tasks and batches already
running in production: ``Replayer.replay_workflow`` raises on any nondeterminism. Those in
``tests/histories/v0.1`` were recorded by 0.1 and are never regenerated: workflows started by
0.1 must still run on this code (through ``workflow.patched`` and ``LegacyBatchWorkflow``).
A fresh recording against the session server guards the current code too (all but the
slowest agent-feature scenarios, whose own tests replay fresh histories of them).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowHistory
from temporalio.worker import Replayer
from temporalio.workflow import NondeterminismError

from factorial import Orchestrator
from factorial._converter import DATA_CONVERTER
from factorial._wire import BATCH_WORKFLOW, LEAF_GO_SIGNAL, TurnExecution
from factorial._workers import workflow_runner
from factorial.workflows import (
    AgentTaskWorkflow,
    BatchWorkflow,
    LegacyBatchWorkflow,
    OwnerEventsWorkflow,
)
from tests.history_batches import (
    BATCH_CANCELLED,
    BATCH_LEAF,
    BATCH_ROOT,
    BATCH_ROOT_CANCELLED,
    BATCH_ROOT_CANCELLED_PART0,
    BATCH_ROOT_PACED,
    BATCH_ROOT_PACED_PART3,
    BATCH_ROOT_PART0,
    leaf_steps,
)
from tests.history_features import (
    FEATURE_SCENARIOS,
    FEATURE_TASK_SCENARIOS,
    GUARDS,
    NOT_RECORDED_FRESH,
    TASK_FALLBACK,
)
from tests.history_tasks import CANCELLED
from tests.record_histories import (
    BASE_LOCAL_SCENARIOS,
    BASE_SCENARIOS,
    BEFORE_OPS_DIR,
    HISTORIES_DIR,
    LOCAL_DIR,
    LOCAL_SCENARIOS,
    OLDER_DIR,
    SCENARIOS,
    V01_DIR,
    load_history,
    record_all,
)

V01_HISTORIES = sorted(p.name for p in V01_DIR.iterdir())


def replayer() -> Replayer:
    """A replayer configured like the workers."""
    return Replayer(
        workflows=[AgentTaskWorkflow, BatchWorkflow, LegacyBatchWorkflow, OwnerEventsWorkflow],
        data_converter=DATA_CONVERTER,
        workflow_runner=workflow_runner(),
    )


async def replay(history: WorkflowHistory) -> None:
    """Replay ``history``; raises on nondeterminism or any other workflow task failure."""
    result = await replayer().replay_workflow(history)
    assert result.replay_failure is None


def patch_ids(history: WorkflowHistory) -> set[str]:
    """The ``workflow.patched`` ids recorded in ``history``."""
    ids = set()
    for event in history.events:
        attributes = event.marker_recorded_event_attributes
        if event.event_type == EventType.EVENT_TYPE_MARKER_RECORDED and "patch-data" in (
            attributes.details
        ):
            [payload] = attributes.details["patch-data"].payloads
            ids.add(json.loads(payload.data)["id"])
    return ids


def test_every_scenario_is_recorded() -> None:
    recorded = sorted(path.stem for path in HISTORIES_DIR.glob("*.json"))
    assert recorded == sorted(SCENARIOS)
    assert sorted(path.stem for path in LOCAL_DIR.glob("*.json")) == sorted(LOCAL_SCENARIOS)


@pytest.mark.parametrize("scenario", SCENARIOS)
async def test_recorded_history_replays(scenario: str) -> None:
    await replay(load_history(HISTORIES_DIR / f"{scenario}.json"))


@pytest.mark.parametrize("scenario", LOCAL_SCENARIOS)
async def test_history_with_local_turns_replays(scenario: str) -> None:
    history = load_history(LOCAL_DIR / f"{scenario}.json")
    kinds = [e.event_type for e in history.events]
    assert EventType.EVENT_TYPE_MARKER_RECORDED in kinds or scenario == CANCELLED, kinds
    await replay(history)


async def test_local_turn_replay_detects_nondeterminism() -> None:
    """A history whose local turn was another activity fails too."""
    history = load_history(LOCAL_DIR / f"{SCENARIOS[0]}.json")
    marker = next(e for e in history.events if e.event_type == EventType.EVENT_TYPE_MARKER_RECORDED)
    attributes = marker.marker_recorded_event_attributes
    [data] = attributes.details["data"].payloads
    data.data = data.data.replace(b'"run_turn"', b'"some_other_activity"')
    with pytest.raises(NondeterminismError):
        await replay(history)


@pytest.mark.parametrize("name", V01_HISTORIES)
async def test_history_of_0_1_replays(name: str) -> None:
    await replay(load_history(V01_DIR / name))


BEFORE_OPS_HISTORIES = sorted(
    str(p.relative_to(BEFORE_OPS_DIR)) for p in BEFORE_OPS_DIR.rglob("*.json")
)


@pytest.mark.parametrize("name", BEFORE_OPS_HISTORIES)
async def test_history_from_before_the_operations_patches_replays(name: str) -> None:
    await replay(load_history(BEFORE_OPS_DIR / name))


def test_before_ops_histories_cover_every_scenario() -> None:
    expected = {f"{s}.json" for s in BASE_SCENARIOS}
    expected |= {f"local/{s}.json" for s in BASE_LOCAL_SCENARIOS}
    assert set(BEFORE_OPS_HISTORIES) == expected


def test_recorded_histories_have_todays_patches() -> None:
    """The committed histories were recorded with the batch memo and the sub-agents' event."""
    assert "batch-summary-memo" in patch_ids(load_history(HISTORIES_DIR / f"{BATCH_LEAF}.json"))
    assert "batch-summary-memo" in patch_ids(load_history(HISTORIES_DIR / f"{BATCH_ROOT}.json"))
    fanout = load_history(HISTORIES_DIR / "agent_task_fanout.json")
    assert "task-pending-child-task-results-event" in patch_ids(fanout)
    for name in ("batch_leaf.json", "batch_root.json", "agent_task_fanout.json"):
        assert not patch_ids(load_history(BEFORE_OPS_DIR / name)) & {
            "batch-summary-memo",
            "task-pending-child-task-results-event",
        }


FEATURE_HISTORIES = [f"{s}.json" for s in FEATURE_SCENARIOS]
FEATURE_HISTORIES += [f"local/{s}.json" for s in FEATURE_TASK_SCENARIOS]


@pytest.mark.parametrize("name", FEATURE_HISTORIES)
def test_feature_histories_record_the_patches_they_guard(name: str) -> None:
    """Each agent feature's history holds the ``workflow.patched`` ids its commands are under.

    The histories replay in ``test_recorded_history_replays`` and
    ``test_history_with_local_turns_replays``.
    """
    scenario = name.removeprefix("local/").removesuffix(".json")
    assert GUARDS[scenario] <= patch_ids(load_history(HISTORIES_DIR / name))


@pytest.mark.parametrize("directory", [HISTORIES_DIR, LOCAL_DIR])
def test_fallback_history_holds_a_retried_turn(directory: Path) -> None:
    """The fallback model's history is of a turn that completed on its second attempt."""
    history = load_history(directory / f"{TASK_FALLBACK}.json")
    assert turn_attempts(history) == [2]


def turn_attempts(history: WorkflowHistory) -> list[int]:
    """The attempt on which each completed turn (regular or local) ran."""
    attempts = []
    for event in history.events:
        if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED:
            attempts.append(event.activity_task_started_event_attributes.attempt)
        elif event.event_type == EventType.EVENT_TYPE_MARKER_RECORDED:
            details = event.marker_recorded_event_attributes.details
            if "data" in details and "patch-data" not in details:
                [payload] = details["data"].payloads
                attempts.append(json.loads(payload.data)["attempt"])
    return attempts


@pytest.mark.parametrize(
    "scenario", [BATCH_CANCELLED, BATCH_ROOT_CANCELLED, BATCH_ROOT_CANCELLED_PART0]
)
async def test_batch_cancelled_by_commands_before_the_patch_replays(scenario: str) -> None:
    """A leaf or root that sent one ``RequestCancelExternal`` per task or leaf still replays,
    and today's cancel them by a local activity instead."""
    cancel_external = EventType.EVENT_TYPE_REQUEST_CANCEL_EXTERNAL_WORKFLOW_EXECUTION_INITIATED
    older = load_history(OLDER_DIR / f"{scenario}.json")
    assert cancel_external in [e.event_type for e in older.events]
    await replay(older)
    current = load_history(HISTORIES_DIR / f"{scenario}.json")
    kinds = [e.event_type for e in current.events]
    assert cancel_external not in kinds and EventType.EVENT_TYPE_MARKER_RECORDED in kinds


def test_0_1_histories_cover_every_workflow() -> None:
    types = {
        load_history(V01_DIR / name)
        .events[0]
        .workflow_execution_started_event_attributes.workflow_type.name
        for name in V01_HISTORIES
    }
    assert types == {"AgentTaskWorkflow", "BatchWorkflow", "OwnerEventsWorkflow"}


async def test_replay_detects_nondeterminism() -> None:
    """The check is not vacuous: a history whose first turn was another activity fails."""
    history = load_history(HISTORIES_DIR / f"{SCENARIOS[0]}.json")
    scheduled = next(
        e for e in history.events if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
    )
    scheduled.activity_task_scheduled_event_attributes.activity_type.name = "some_other_activity"
    with pytest.raises(NondeterminismError):
        await replay(history)


@pytest.mark.parametrize("scenario", [BATCH_LEAF, BATCH_ROOT_PART0, BATCH_ROOT_PACED_PART3])
async def test_batch_replay_detects_nondeterminism(scenario: str) -> None:
    """A leaf whose first child had another workflow type fails (lone leaf, leaf of a root,
    leaf that waited for ``leaf_go``)."""
    history = load_history(HISTORIES_DIR / f"{scenario}.json")
    initiated = next(
        e
        for e in history.events
        if e.event_type == EventType.EVENT_TYPE_START_CHILD_WORKFLOW_EXECUTION_INITIATED
    )
    attributes = initiated.start_child_workflow_execution_initiated_event_attributes
    attributes.workflow_type.name = "SomeOtherWorkflow"
    with pytest.raises(NondeterminismError):
        await replay(history)


def test_histories_keep_their_workflow_ids() -> None:
    """A batch's history replays under its real id: the one its leaves and tasks report to."""
    root = load_history(HISTORIES_DIR / f"{BATCH_ROOT}.json")
    leaf = load_history(HISTORIES_DIR / f"{BATCH_ROOT_PART0}.json")
    assert root.workflow_id.startswith("batch-")
    assert leaf.workflow_id == f"{root.workflow_id}-part0"
    task = load_history(HISTORIES_DIR / f"{SCENARIOS[0]}.json")
    assert task.workflow_id == SCENARIOS[0]


def test_paced_histories_hold_the_leaf_go_path() -> None:
    """The root told its fourth leaf to go, which started its tasks only then."""
    root = load_history(HISTORIES_DIR / f"{BATCH_ROOT_PACED}.json")
    leaf = load_history(HISTORIES_DIR / f"{BATCH_ROOT_PACED_PART3}.json")
    sent = [
        event.signal_external_workflow_execution_initiated_event_attributes
        for event in root.events
        if event.event_type == EventType.EVENT_TYPE_SIGNAL_EXTERNAL_WORKFLOW_EXECUTION_INITIATED
    ]
    released = [s.workflow_execution.workflow_id for s in sent if s.signal_name == LEAF_GO_SIGNAL]
    assert released == [leaf.workflow_id] == [f"{root.workflow_id}-part3"]
    assert leaf_steps(leaf) == ["go", "start", "start"]


async def record_fresh(
    orchestrator: Orchestrator, unique: Callable[[str], str], turn_execution: TurnExecution
) -> dict[str, WorkflowHistory]:
    """Record the scenarios of ``turn_execution`` on the session server, under fresh ids.

    All but ``NOT_RECORDED_FRESH``.
    """
    return await record_all(
        orchestrator,
        prefix=unique("replay"),
        owner=unique("owner"),
        id_suffix="-" + unique("run"),
        turn_execution=turn_execution,
        only=[s for s in SCENARIOS if s not in NOT_RECORDED_FRESH],
    )


async def test_fresh_histories_replay(
    orchestrator: Orchestrator, unique: Callable[[str], str]
) -> None:
    histories = await record_fresh(orchestrator, unique, "activity")
    assert sorted(histories) == sorted(set(SCENARIOS) - NOT_RECORDED_FRESH)
    batch = histories[BATCH_LEAF]
    started = batch.events[0].workflow_execution_started_event_attributes
    assert started.workflow_type.name == BATCH_WORKFLOW and batch.workflow_id.startswith("batch-")
    assert histories[BATCH_ROOT].workflow_id == histories[BATCH_ROOT_PART0].workflow_id[:-6]
    for history in histories.values():
        await replay(history)


async def test_fresh_histories_with_local_turns_replay(
    orchestrator: Orchestrator, unique: Callable[[str], str]
) -> None:
    histories = await record_fresh(orchestrator, unique, "local")
    assert sorted(histories) == sorted(set(LOCAL_SCENARIOS) - NOT_RECORDED_FRESH)
    for history in histories.values():
        await replay(history)
