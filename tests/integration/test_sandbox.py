"""Workflow code runs in the SDK's sandbox, which catches non-deterministic calls.

Only libraries are passed through; ``factorial.workflows`` (and the rest of ``factorial``)
are not, so a clock call in a workflow module fails its workflow task
instead of completing. ``Orchestrator(sandboxed_workflows=False)`` is the explicit way out.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable

from temporalio.api.enums.v1 import EventType
from temporalio.worker import UnsandboxedWorkflowRunner, Worker
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner

from factorial import Agent, Orchestrator
from factorial._workers import workflow_runner
from factorial.devserver import DevServer
from factorial.testing import ScriptedModel, reply
from tests.integration.clock_workflow import ClockReadingWorkflow


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
