"""The replay scenarios of batches and of an event stream, for ``tests.record_histories``.

They run only with regular turns: a batch's own history does not depend on its tasks' mode.
Each returns the ids of the histories it records (a chunked batch's root and a leaf).
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowExecutionStatus, WorkflowHistory

from factorial import Agent, AgentContext, AgentWorkerConfig, Batch, Orchestrator, TaskStatus
from factorial._batches import RUNNING_LEAVES
from factorial._ids import events_workflow_id
from factorial._streams import open_stream
from factorial._wire import LEAF_GO_SIGNAL, leaf_id_of
from factorial.events import EventStreamConfig
from factorial.testing import ScriptedModel, call_tool, reply
from tests.history_tasks import WAIT, add, poll, slow_agent, turn_running

BATCH_LEAF = "batch_leaf"
BATCH_ROOT = "batch_root"
BATCH_ROOT_PART0 = "batch_root_part0"
BATCH_ROOT_PACED = "batch_root_paced"
BATCH_ROOT_PACED_PART3 = "batch_root_paced_part3"
BATCH_CANCELLED = "batch_cancelled"
BATCH_ROOT_CANCELLED = "batch_root_cancelled"
BATCH_ROOT_CANCELLED_PART0 = "batch_root_cancelled_part0"
OWNER_EVENTS = "owner_events_idle"
BATCH_SCENARIOS = (BATCH_LEAF, BATCH_ROOT, BATCH_CANCELLED, BATCH_ROOT_CANCELLED)
#: The histories recorded before the agent features' (a chunked batch records its root and
#: a leaf).
BASE_BATCH_SCENARIOS = (
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
#: The histories whose workflow ends cancelled.
CANCELED_BATCH_SCENARIOS = frozenset(
    {BATCH_CANCELLED, BATCH_ROOT_CANCELLED, BATCH_ROOT_CANCELLED_PART0}
)
BATCH_CHUNK_SIZE = 2


def build_batch_agents(prefix: str) -> dict[str, Agent]:
    """The scripted agent of each batch and stream scenario, named ``{prefix}_{scenario}``."""
    return {
        BATCH_LEAF: _batch_agent(f"{prefix}_batch_leaf"),
        BATCH_ROOT: _batch_agent(f"{prefix}_batch_root"),
        BATCH_ROOT_PACED: _batch_agent(f"{prefix}_batch_root_paced"),
        BATCH_CANCELLED: slow_agent(f"{prefix}_batch_cancelled"),
        BATCH_ROOT_CANCELLED: slow_agent(f"{prefix}_batch_root_cancelled"),
        OWNER_EVENTS: Agent(name=f"{prefix}_owner_events", model=ScriptedModel([reply("2")])),
    }


def _batch_agent(name: str) -> Agent:
    """Two turns per task: a tool call, then a final reply."""
    return Agent(
        name=name,
        instructions="You add numbers.",
        tools=[add],
        max_turns=2,
        model=ScriptedModel([call_tool("add", a=2, b=3), reply("2 + 3 = 5")]),
    )


async def _batch_result(orch: Orchestrator, batch_id: str) -> None:
    """Wait until the batch has completed, then check every task answered."""
    handle = (await orch.client()).get_workflow_handle(batch_id)
    await asyncio.wait_for(handle.result(), WAIT)
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
        await poll(lambda t=task_id: turn_running(orch, t), f"the slow turn of {task_id}")
    cancelled = await asyncio.wait_for(orch.cancel_batch(batch.id), WAIT)
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
            await poll(lambda t=task_id: turn_running(orch, t), f"the slow turn of {task_id}")
        cancelled = await asyncio.wait_for(chunked.cancel_batch(batch.id), WAIT)
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
    await asyncio.wait_for(task.result(), WAIT)

    async def closed() -> bool:
        run = client.get_workflow_handle(handle.id, run_id=run_id)
        return (await run.describe()).status == WorkflowExecutionStatus.COMPLETED

    await poll(closed, "the idle stream to close")
    return {OWNER_EVENTS: f"{handle.id}@{run_id}"}


BATCH_RUNNERS = {
    BATCH_LEAF: run_batch_leaf,
    BATCH_ROOT: run_batch_root,
    BATCH_ROOT_PACED: run_batch_root_paced,
    BATCH_CANCELLED: run_batch_cancelled,
    BATCH_ROOT_CANCELLED: run_batch_root_cancelled,
    OWNER_EVENTS: run_owner_events,
}
