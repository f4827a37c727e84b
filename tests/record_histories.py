"""Record workflow histories for the replay tests: ``python -m tests.record_histories``.

Starts a local dev server, runs scripted tasks, batches and an event stream (one scenario
each) and writes their histories to ``tests/histories/``:

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
from collections.abc import Awaitable, Callable, Collection
from datetime import timedelta
from pathlib import Path

from temporalio.api.enums.v1 import EventType, PendingActivityState, PendingWorkflowTaskState
from temporalio.client import WorkflowExecutionStatus, WorkflowHistory
from temporalio.service import RPCError, RPCStatusCode

from factorial import (
    Agent,
    AgentContext,
    AgentWorkerConfig,
    Batch,
    ExecutionContext,
    Orchestrator,
    TaskCancelledError,
    TaskStatus,
    deferred_tool,
    forking_tool,
)
from factorial._batches import RUNNING_LEAVES
from factorial._ids import events_workflow_id
from factorial._streams import open_stream
from factorial._wire import LEAF_GO_SIGNAL, RUN_TURN_ACTIVITY, TurnExecution, leaf_id_of
from factorial.devserver import DevServer
from factorial.events import EventStreamConfig
from factorial.testing import ScriptedModel, call_tool, reply
from tests.history_features import (
    FAILED_SCENARIOS,
    FEATURE_BATCH_RUNNERS,
    FEATURE_SCENARIOS,
    FEATURE_TASK_RUNNERS,
    FEATURE_TASK_SCENARIOS,
    build_feature_agents,
    config_of,
)

HISTORIES_DIR = Path(__file__).resolve().parent / "histories"
BASIC = "agent_task_basic"
STEER_DEFERRED = "agent_task_steer_deferred"
CANCELLED = "agent_task_cancelled"
FANOUT = "agent_task_fanout"
FANOUT_CHILD = "fanout_child"  # an agent only, not a recorded scenario
BATCH_LEAF = "batch_leaf"
BATCH_ROOT = "batch_root"
BATCH_ROOT_PART0 = "batch_root_part0"
BATCH_ROOT_PACED = "batch_root_paced"
BATCH_ROOT_PACED_PART3 = "batch_root_paced_part3"
BATCH_CANCELLED = "batch_cancelled"
BATCH_ROOT_CANCELLED = "batch_root_cancelled"
BATCH_ROOT_CANCELLED_PART0 = "batch_root_cancelled_part0"
OWNER_EVENTS = "owner_events_idle"
TASK_SCENARIOS = (BASIC, STEER_DEFERRED, CANCELLED, FANOUT)
BATCH_SCENARIOS = (BATCH_LEAF, BATCH_ROOT, BATCH_CANCELLED, BATCH_ROOT_CANCELLED)
# The histories recorded before the agent features' (one file each); the chunked batch
# records its root and a leaf.
BASE_SCENARIOS = (
    *TASK_SCENARIOS,
    BATCH_LEAF,
    BATCH_ROOT,
    BATCH_ROOT_PART0,
    BATCH_CANCELLED,
    BATCH_ROOT_CANCELLED,
    BATCH_ROOT_CANCELLED_PART0,
    OWNER_EVENTS,
)
#: Recorded since: a root whose leaves run ``RUNNING_LEAVES`` at a time, and a waiting leaf.
PACED_SCENARIOS = (BATCH_ROOT_PACED, BATCH_ROOT_PACED_PART3)
#: Every recorded history.
SCENARIOS = (*BASE_SCENARIOS, *PACED_SCENARIOS, *FEATURE_SCENARIOS)
V01_DIR = HISTORIES_DIR / "v0.1"
OLDER_DIR = HISTORIES_DIR / "older"
BEFORE_OPS_DIR = HISTORIES_DIR / "before_ops"
LOCAL_DIR = HISTORIES_DIR / "local"
#: What is recorded with local turns (a batch's own history does not depend on the mode).
BASE_LOCAL_SCENARIOS = TASK_SCENARIOS
LOCAL_SCENARIOS = (*TASK_SCENARIOS, *FEATURE_TASK_SCENARIOS)
CANCELED_SCENARIOS = frozenset(
    {CANCELLED, BATCH_CANCELLED, BATCH_ROOT_CANCELLED, BATCH_ROOT_CANCELLED_PART0}
)
BATCH_CHUNK_SIZE = 2
STEERING_MESSAGE = {"role": "user", "content": "Please also say thank you."}
_WAIT = 30.0


def add(a: int, b: int) -> int:
    """Add two numbers."""
    return a + b


@deferred_tool(timeout=120)
def request_approval(amount: int) -> str:
    """Ask a human to approve a payment; the answer arrives later.

    Args:
        amount: The amount to approve.
    """
    return f"approval of {amount} requested"


def _fanout_agents(prefix: str) -> tuple[Agent, Agent]:
    """A parent whose forking tool fans out to two children, and the children's agent."""
    child = Agent(
        name=f"{prefix}_fanout_child",
        model=ScriptedModel(lambda request: reply(f"found {request.messages[0]['content']}")),
    )

    @forking_tool(timeout=120)
    async def research(topics: list[str], execution_ctx: ExecutionContext) -> list[str]:
        """Research each topic in a sub-task."""
        batch = await execution_ctx.spawn_child_tasks(child, [{"query": t} for t in topics])
        return batch.task_ids

    parent = Agent(
        name=f"{prefix}_fanout",
        instructions="You delegate research.",
        tools=[research],
        model=ScriptedModel(
            lambda request: (
                call_tool("research", topics=["tides", "moons"])
                if request.turn == 0
                else reply(request.messages[-1]["content"])
            )
        ),
    )
    return parent, child


def build_agents(prefix: str) -> dict[str, Agent]:
    """The scripted agent of each scenario, named ``{prefix}_{scenario}``."""
    fanout, fanout_child = _fanout_agents(prefix)
    return {
        **build_feature_agents(prefix),
        FANOUT: fanout,
        FANOUT_CHILD: fanout_child,
        BASIC: Agent(
            name=f"{prefix}_basic",
            instructions="You add numbers.",
            tools=[add],
            model=ScriptedModel([call_tool("add", a=2, b=3), reply("2 + 3 = 5")]),
        ),
        STEER_DEFERRED: Agent(
            name=f"{prefix}_steer_deferred",
            instructions="You pay invoices after approval.",
            tools=[request_approval],
            model=ScriptedModel(
                [call_tool("request_approval", amount=100), reply("Paid 100. Thank you!")]
            ),
        ),
        CANCELLED: _slow_agent(f"{prefix}_cancelled"),
        BATCH_LEAF: _batch_agent(f"{prefix}_batch_leaf"),
        BATCH_ROOT: _batch_agent(f"{prefix}_batch_root"),
        BATCH_ROOT_PACED: _batch_agent(f"{prefix}_batch_root_paced"),
        BATCH_CANCELLED: _slow_agent(f"{prefix}_batch_cancelled"),
        BATCH_ROOT_CANCELLED: _slow_agent(f"{prefix}_batch_root_cancelled"),
        OWNER_EVENTS: Agent(name=f"{prefix}_owner_events", model=ScriptedModel([reply("2")])),
    }


def _slow_agent(name: str) -> Agent:
    """A first turn that takes two minutes: long enough to be cancelled while it runs."""
    return Agent(
        name=name,
        instructions="You think slowly.",
        model=ScriptedModel([reply("never sent", delay=120)]),
    )


def _batch_agent(name: str) -> Agent:
    """Two turns per task: a tool call, then a final reply."""
    return Agent(
        name=name,
        instructions="You add numbers.",
        tools=[add],
        max_turns=2,
        model=ScriptedModel([call_tool("add", a=2, b=3), reply("2 + 3 = 5")]),
    )


async def _poll(check: Callable[[], Awaitable[bool]], what: str) -> None:
    async def loop() -> None:
        while not await check():
            await asyncio.sleep(0.05)

    try:
        await asyncio.wait_for(loop(), _WAIT)
    except TimeoutError:
        raise AssertionError(f"timed out waiting for {what}") from None


async def _enqueue(orch: Orchestrator, agent: Agent, task_id: str, owner: str, query: str) -> str:
    task = agent.create_task(owner_id=owner, payload=AgentContext(query=query))
    task = await orch.enqueue_task(agent=agent, task=task.model_copy(update={"id": task_id}))
    return task.id


async def run_basic(
    orch: Orchestrator, agent: Agent, task_id: str, owner: str, local: bool
) -> None:
    """A tool call, then a final reply."""
    await _enqueue(orch, agent, task_id, owner, "What is 2 + 3?")
    result = await asyncio.wait_for(orch.get_task_result(task_id), _WAIT)
    assert result == "2 + 3 = 5", result


async def run_steer_deferred(
    orch: Orchestrator, agent: Agent, task_id: str, owner: str, local: bool
) -> None:
    """A deferred tool call; steered while waiting; completed; a final reply."""
    await _enqueue(orch, agent, task_id, owner, "Pay invoice 7 (100 EUR).")

    async def waiting_for_tool() -> bool:
        data = await orch.get_task_data(task_id)
        return data is not None and data["status"] == "pending_tool_results"

    await _poll(waiting_for_tool, "the deferred tool call")
    await orch.steer_task(task_id, [STEERING_MESSAGE])
    assert await orch.complete_deferred_tool(task_id, "call_0_0", {"approved": True})
    result = await asyncio.wait_for(orch.get_task_result(task_id), _WAIT)
    assert result == "Paid 100. Thank you!", result
    data = await orch.get_task_data(task_id)
    assert data is not None
    messages = data["context"]["messages"]
    assert [m["role"] for m in messages] == ["user", "assistant", "tool", "user", "assistant"]
    assert messages[3] == STEERING_MESSAGE


async def _turn_running(orch: Orchestrator, task_id: str, local: bool = False) -> bool:
    """Whether the task's turn has started (and not ended).

    A regular turn is a started pending activity; a local one runs inside the workflow task,
    which stays started for as long as it runs.
    """
    try:
        description = await (await orch.client()).get_workflow_handle(task_id).describe()
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:  # a batch's child not started yet
            return False
        raise
    raw = description.raw_description
    if local:
        started = PendingWorkflowTaskState.PENDING_WORKFLOW_TASK_STATE_STARTED
        return raw.pending_workflow_task.state == started
    return any(
        pending.activity_type.name == RUN_TURN_ACTIVITY
        and pending.state == PendingActivityState.PENDING_ACTIVITY_STATE_STARTED
        for pending in description.raw_description.pending_activities
    )


async def run_cancelled(
    orch: Orchestrator, agent: Agent, task_id: str, owner: str, local: bool
) -> None:
    """Cancelled while its first (slow) turn runs."""
    await _enqueue(orch, agent, task_id, owner, "Think about it.")
    await _poll(lambda: _turn_running(orch, task_id, local), "the slow turn to start")
    await orch.cancel_task(task_id)
    try:
        await asyncio.wait_for(orch.get_task_result(task_id), _WAIT)
    except TaskCancelledError:
        pass
    else:
        raise AssertionError("the task was not cancelled")


async def run_fanout(
    orch: Orchestrator, agent: Agent, task_id: str, owner: str, local: bool
) -> None:
    """A forking tool starts two sub-tasks; the parent reads their results block."""
    await _enqueue(orch, agent, task_id, owner, "Tell me about tides and moons.")
    output = await asyncio.wait_for(orch.get_task_result(task_id), _WAIT)
    assert output.startswith("<sub_task_results>") and "found tides" in output, output


_RUNNERS = {
    BASIC: run_basic,
    STEER_DEFERRED: run_steer_deferred,
    CANCELLED: run_cancelled,
    FANOUT: run_fanout,
    **FEATURE_TASK_RUNNERS,
}


async def _batch_result(orch: Orchestrator, batch_id: str) -> None:
    """Wait until the batch has completed, then check every task answered."""
    handle = (await orch.client()).get_workflow_handle(batch_id)
    await asyncio.wait_for(handle.result(), _WAIT)
    batch = await orch.get_batch(batch_id)
    assert batch.metadata.status == "completed" and batch.progress == 100.0, batch
    for task_id in batch.task_ids:
        assert await orch.get_task_result(task_id) == "2 + 3 = 5", task_id


async def run_batch_leaf(orch: Orchestrator, agent: Agent, owner: str) -> dict[str, str]:
    """Three two-turn tasks in one leaf (the batch is its own root)."""
    payloads = [AgentContext(query=f"What is 2 + 3? ({i})") for i in range(3)]
    batch = await orch.enqueue_batch(agent=agent, owner_id=owner, payloads=payloads)
    assert batch.metadata.max_progress == 6, batch
    await _batch_result(orch, batch.id)
    return {BATCH_LEAF: batch.id}


async def _chunked_batch(orch: Orchestrator, agent: Agent, owner: str, count: int) -> Batch:
    """``count`` two-turn tasks in leaves of ``BATCH_CHUNK_SIZE``, run to completion."""
    # A second orchestrator on the same client only enqueues; ``orch``'s workers run it all.
    chunked = Orchestrator(client=await orch.client(), batch_chunk_size=BATCH_CHUNK_SIZE)
    chunked.register_runner(agent=agent)  # the default config, as in ``record_all``
    try:
        payloads = [AgentContext(query=f"What is 2 + 3? ({i})") for i in range(count)]
        batch = await chunked.enqueue_batch(agent=agent, owner_id=owner, payloads=payloads)
    finally:
        await chunked.close()
    assert len(batch.task_ids) == count and batch.metadata.max_progress == 2 * count, batch
    await _batch_result(orch, batch.id)
    return batch


async def run_batch_root(orch: Orchestrator, agent: Agent, owner: str) -> dict[str, str]:
    """Five two-turn tasks in leaves of two: a root with three leaves."""
    batch = await _chunked_batch(orch, agent, owner, 5)
    return {BATCH_ROOT: batch.id, BATCH_ROOT_PART0: leaf_id_of(batch.id, 0)}


async def run_batch_root_paced(orch: Orchestrator, agent: Agent, owner: str) -> dict[str, str]:
    """Eight two-turn tasks in leaves of two: four leaves, the fourth waiting for ``leaf_go``."""
    batch = await _chunked_batch(orch, agent, owner, 8)
    assert RUNNING_LEAVES == 3, "part3 is no longer the first waiting leaf"
    waiting = leaf_id_of(batch.id, RUNNING_LEAVES)
    history = await (await orch.client()).get_workflow_handle(waiting).fetch_history()
    # Told to go once, before it started either of its tasks.
    assert leaf_steps(history) == ["go", "start", "start"], leaf_steps(history)
    return {BATCH_ROOT_PACED: batch.id, BATCH_ROOT_PACED_PART3: waiting}


def leaf_steps(history: WorkflowHistory) -> list[str]:
    """A leaf's ``leaf_go`` signals (``go``) and task starts (``start``), in order."""
    steps = []
    for event in history.events:
        if event.event_type == EventType.EVENT_TYPE_START_CHILD_WORKFLOW_EXECUTION_INITIATED:
            steps.append("start")
        elif event.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED:
            if event.workflow_execution_signaled_event_attributes.signal_name == LEAF_GO_SIGNAL:
                steps.append("go")
    return steps


async def run_batch_cancelled(orch: Orchestrator, agent: Agent, owner: str) -> dict[str, str]:
    """Cancelled with ``cancel_batch`` while every task's first (slow) turn runs."""
    payloads = [AgentContext(query=f"Think about it. ({i})") for i in range(2)]
    batch = await orch.enqueue_batch(agent=agent, owner_id=owner, payloads=payloads)
    for task_id in batch.task_ids:
        await _poll(lambda t=task_id: _turn_running(orch, t), f"the slow turn of {task_id}")
    cancelled = await asyncio.wait_for(orch.cancel_batch(batch.id), _WAIT)
    assert cancelled.metadata.status == "cancelled", cancelled
    for task_id in batch.task_ids:
        assert await orch.get_task_status(task_id) == TaskStatus.CANCELLED, task_id
    return {BATCH_CANCELLED: batch.id}


async def run_batch_root_cancelled(orch: Orchestrator, agent: Agent, owner: str) -> dict[str, str]:
    """Three tasks in leaves of two, cancelled while every task's first (slow) turn runs."""
    chunked = Orchestrator(client=await orch.client(), batch_chunk_size=BATCH_CHUNK_SIZE)
    # Regular turns: a local turn would hold its workflow task for the whole slow turn.
    chunked.register_runner(
        agent=agent, agent_worker_config=AgentWorkerConfig(turn_execution="activity")
    )
    try:
        payloads = [AgentContext(query=f"Think about it. ({i})") for i in range(3)]
        batch = await chunked.enqueue_batch(agent=agent, owner_id=owner, payloads=payloads)
        for task_id in batch.task_ids:
            await _poll(lambda t=task_id: _turn_running(orch, t), f"the slow turn of {task_id}")
        cancelled = await asyncio.wait_for(chunked.cancel_batch(batch.id), _WAIT)
    finally:
        await chunked.close()
    assert cancelled.metadata.status == "cancelled", cancelled
    for task_id in batch.task_ids:
        assert await orch.get_task_status(task_id) == TaskStatus.CANCELLED, task_id
    return {BATCH_ROOT_CANCELLED: batch.id, BATCH_ROOT_CANCELLED_PART0: leaf_id_of(batch.id, 0)}


async def run_owner_events(orch: Orchestrator, agent: Agent, owner: str) -> dict[str, str]:
    """A stream with a 1 s idle timeout takes one task's events, then closes (completes)."""
    client = await orch.client()
    stream_owner = f"{owner}-idle"
    await open_stream(client, stream_owner, EventStreamConfig(idle_timeout=timedelta(seconds=1)))
    handle = client.get_workflow_handle(events_workflow_id(stream_owner))
    run_id = (await handle.describe()).run_id
    task = await orch.enqueue_task(agent=agent, owner_id=stream_owner, payload={"query": "1+1?"})
    await asyncio.wait_for(task.result(), _WAIT)

    async def closed() -> bool:
        run = client.get_workflow_handle(handle.id, run_id=run_id)
        return (await run.describe()).status == WorkflowExecutionStatus.COMPLETED

    await _poll(closed, "the idle stream to close")
    return {OWNER_EVENTS: f"{handle.id}@{run_id}"}


_BATCH_RUNNERS = {
    BATCH_LEAF: run_batch_leaf,
    BATCH_ROOT: run_batch_root,
    BATCH_ROOT_PACED: run_batch_root_paced,
    BATCH_CANCELLED: run_batch_cancelled,
    BATCH_ROOT_CANCELLED: run_batch_root_cancelled,
    OWNER_EVENTS: run_owner_events,
    **FEATURE_BATCH_RUNNERS,
}


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
