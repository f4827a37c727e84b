"""Only ``RUNNING_LEAVES`` leaves of a batch run tasks at once; the root lets the next one go.

Each waiting leaf starts its first task only after its root told it to (``leaf_go``), and
the root tells one leaf each time another has reported its end. A cancelled batch tells no
waiting leaf to go: those leaves start nothing, and their tasks count as cancelled.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from temporalio.client import WorkflowHistory

from factorial import Agent, AgentWorkerConfig, Orchestrator
from factorial import _wire as wire
from factorial._batches import RUNNING_LEAVES
from factorial.devserver import DevServer
from factorial.task import Batch
from factorial.testing import Reply, ScriptedModel, call_tool, reply
from tests.conftest import has_event
from tests.history_batches import leaf_steps
from tests.ledger import EventLedger

QUICK = AgentWorkerConfig(initial_backoff=0.1, max_backoff=0.2, heartbeat_timeout=5)
#: Ten tasks in leaves of two: five leaves, two of which wait.
LEAVES, CHUNK = 5, 2


def noop() -> str:
    """Do nothing."""
    return "ok"


async def _history(orchestrator: Orchestrator, workflow_id: str) -> WorkflowHistory:
    client = await orchestrator.client()
    return await client.get_workflow_handle(workflow_id).fetch_history()


async def _leaf_steps(orchestrator: Orchestrator, batch_id: str, chunk: int) -> list[str]:
    """Leaf ``chunk``'s ``leaf_go`` signals and task starts, in order (``leaf_steps``)."""
    return leaf_steps(await _history(orchestrator, wire.leaf_id_of(batch_id, chunk)))


async def _root_order(orchestrator: Orchestrator, batch_id: str) -> list[str]:
    """The root's history as ``final`` (a leaf reported its end) and ``go:<leaf>`` steps."""
    client = await orchestrator.client()
    steps = []
    for event in (await _history(orchestrator, batch_id)).events:
        if event.HasField("workflow_execution_signaled_event_attributes"):
            signaled = event.workflow_execution_signaled_event_attributes
            if signaled.signal_name == wire.LEAF_REPORT_SIGNAL:
                payloads = signaled.input.payloads
                report = (await client.data_converter.decode(payloads, [wire.LeafReport]))[0]
                if report.final:
                    steps.append("final")
        if event.HasField("signal_external_workflow_execution_initiated_event_attributes"):
            sent = event.signal_external_workflow_execution_initiated_event_attributes
            if sent.signal_name == wire.LEAF_GO_SIGNAL:
                steps.append(f"go:{sent.workflow_execution.workflow_id}")
    return steps


@contextlib.asynccontextmanager
async def _paced_batch(
    temporal_server: DevServer, agent: Agent, owner: str
) -> AsyncIterator[tuple[Orchestrator, EventLedger, Batch]]:
    """A batch of ``agent`` in ``LEAVES`` leaves (three tasks at once), and its owner's ledger."""
    orchestrator = Orchestrator(
        temporal_address=temporal_server.address, batch_chunk_size=CHUNK, max_running_tasks=3
    )
    orchestrator.register_runner(agent=agent, agent_worker_config=QUICK)
    try:
        await orchestrator.start_workers()
        async with EventLedger(orchestrator, owner) as ledger:
            batch = await orchestrator.enqueue_batch(
                agent=agent, owner_id=owner, payloads=[{}] * (LEAVES * CHUNK)
            )
            yield orchestrator, ledger, batch
    finally:
        await orchestrator.close()


async def test_waiting_leaves_start_when_the_root_lets_them(temporal_server, unique) -> None:
    agent = Agent(name=unique("paced"), model=ScriptedModel([reply("done")]))
    async with _paced_batch(temporal_server, agent, unique("owner")) as (orch, ledger, batch):
        await ledger.wait_for_tasks(batch.task_ids)
        await ledger.wait_until(has_event("batch_completed"))
        await ledger.settle()
        ledger.assert_exactly_once(batch.task_ids, batch_ids=[batch.id], expected="completed")

        for chunk in range(LEAVES):
            steps = await _leaf_steps(orch, batch.id, chunk)
            assert "start" in steps, (chunk, steps)
            if chunk < RUNNING_LEAVES:
                assert "go" not in steps, (chunk, steps)
            else:
                assert steps.count("go") == 1, (chunk, steps)
                assert steps.index("go") < steps.index("start"), (chunk, steps)

        # The root lets leaf k go only once k - RUNNING_LEAVES + 1 leaves have ended.
        steps = await _root_order(orch, batch.id)
        released = [s.removeprefix("go:") for s in steps if s.startswith("go:")]
        waiting = [wire.leaf_id_of(batch.id, k) for k in range(RUNNING_LEAVES, LEAVES)]
        assert released == waiting, steps
        for position, step in enumerate(steps):
            if step.startswith("go:"):
                ended = steps[:position].count("final")
                assert ended >= released.index(step.removeprefix("go:")) + 1, steps
        assert steps.count("final") == LEAVES


async def test_a_cancelled_batch_lets_no_waiting_leaf_start(temporal_server, unique) -> None:
    # Each task takes three turns of a second: no leaf ends before the cancel.
    slow = [call_tool("noop"), call_tool("noop"), Reply(content="late")]
    agent = Agent(
        name=unique("pacedcancel"),
        tools=[noop],
        model=ScriptedModel([step.model_copy(update={"delay": 1.0}) for step in slow]),
    )
    async with _paced_batch(temporal_server, agent, unique("owner")) as (orch, ledger, batch):
        await ledger.wait_until(has_event("run_started"))
        cancelled = await asyncio.wait_for(orch.cancel_batch(batch.id), 60)
        await ledger.wait_until(has_event("batch_cancelled"))
        await ledger.settle()
        assert cancelled.metadata.status == "cancelled"

        started = {e["task_id"] for e in ledger.of_type("run_started")}
        waiting = range(RUNNING_LEAVES * CHUNK, LEAVES * CHUNK)
        assert not started & {wire.task_id_of(batch.id, i) for i in waiting}, started
        ledger.assert_exactly_once(started, batch_ids=[batch.id], expected="cancelled")

        for chunk in range(RUNNING_LEAVES, LEAVES):
            assert await _leaf_steps(orch, batch.id, chunk) == [], chunk  # no go, no start
        final = await orch.get_batch(batch.id)
        assert final.metadata.status == "cancelled"
        assert final.metadata.cancelled == LEAVES * CHUNK, final.metadata
