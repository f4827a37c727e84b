"""Workflow code runs in the SDK's sandbox, which catches non-deterministic calls.

Only libraries are passed through; ``factorial.workflows`` (and the rest of ``factorial``)
are not, so a clock call in a workflow module fails its workflow task
instead of completing. ``Orchestrator(sandboxed_workflows=False)`` (``factorial worker
--unsandboxed``) is the explicit way out, and every committed history replays on it too.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.worker import Replayer, UnsandboxedWorkflowRunner, Worker
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner

from factorial import Agent, Orchestrator
from factorial._converter import DATA_CONVERTER
from factorial._workers import workflow_runner
from factorial.devserver import DevServer
from factorial.testing import ScriptedModel, reply
from factorial.workflows import (
    AgentTaskWorkflow,
    BatchWorkflow,
    LegacyBatchWorkflow,
    OwnerEventsWorkflow,
)
from tests.integration.clock_workflow import ClockReadingWorkflow
from tests.record_histories import HISTORIES_DIR, load_history

#: Every committed history: today's, each mode's, and those kept from older code.
ALL_HISTORIES = sorted(
    str(path.relative_to(HISTORIES_DIR))
    for path in HISTORIES_DIR.rglob("*.json*")
    if path.suffix in (".json", ".gz")
)


def test_workflow_code_is_not_passed_through() -> None:
    runner = workflow_runner()
    assert isinstance(runner, SandboxedWorkflowRunner)
    passed = runner.restrictions.passthrough_modules
    for module in ("factorial", "factorial.workflows.batch", "factorial.activities", "tests"):
        assert not any(module == p or module.startswith(f"{p}.") for p in passed), module
    assert isinstance(workflow_runner(sandboxed=False), UnsandboxedWorkflowRunner)


async def test_a_clock_call_in_workflow_code_fails_its_workflow_task(
    orchestrator: Orchestrator,
) -> None:
    client = await orchestrator.client()
    queue = f"sandbox-{uuid.uuid4().hex[:8]}"
    async with Worker(
        client,
        task_queue=queue,
        workflows=[ClockReadingWorkflow],
        workflow_runner=workflow_runner(),
    ):
        handle = await client.start_workflow(
            ClockReadingWorkflow.run, id=f"clock-{uuid.uuid4().hex[:8]}", task_queue=queue
        )

        async def failed_task() -> str:
            while True:
                async for event in handle.fetch_history_events():
                    if event.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED:
                        return event.workflow_task_failed_event_attributes.failure.message
                await asyncio.sleep(0.2)

        message = await asyncio.wait_for(failed_task(), 30)
        await handle.terminate()
    assert "datetime.datetime.now" in message, message


async def test_unsandboxed_workflows_run_tasks(
    temporal_server: DevServer, unique: Callable[[str], str]
) -> None:
    orchestrator = Orchestrator(temporal_address=temporal_server.address, sandboxed_workflows=False)
    agent = Agent(name=unique("bare"), model=ScriptedModel([reply("no sandbox")]))
    orchestrator.register_runner(agent=agent)
    try:
        await orchestrator.start_workers()
        task = await orchestrator.enqueue_task(agent=agent, owner_id=unique("o"), payload={})
        assert await asyncio.wait_for(task.result(), 60) == "no sandbox"
    finally:
        await orchestrator.close()


@pytest.mark.parametrize("name", ALL_HISTORIES)
async def test_every_history_replays_unsandboxed(name: str) -> None:
    """The unsandboxed runner takes the same workflows: ``test_replay`` replays them sandboxed."""
    replayer = Replayer(
        workflows=[AgentTaskWorkflow, BatchWorkflow, LegacyBatchWorkflow, OwnerEventsWorkflow],
        data_converter=DATA_CONVERTER,
        workflow_runner=workflow_runner(sandboxed=False),
    )
    result = await replayer.replay_workflow(load_history(HISTORIES_DIR / name))
    assert result.replay_failure is None
