"""Cancel requests sent straight to the server (``factorial._cancelling``), on a real server."""

from __future__ import annotations

import asyncio

from factorial import Agent, Orchestrator, TaskStatus
from factorial._cancelling import cancel_and_wait
from factorial.testing import Reply, ScriptedModel


async def test_cancel_and_wait_names_the_workflows_that_closed_cancelled(
    orchestrator: Orchestrator, unique
) -> None:
    """A running task is cancelled and named; an ended one and an unknown id are not."""
    slow = Agent(name=unique("slow"), model=ScriptedModel([Reply(content="late", delay=60)]))
    quick = Agent(name=unique("quick"), model=ScriptedModel([Reply(content="done")]))
    orchestrator.register_runner(slow)
    orchestrator.register_runner(quick)
    await orchestrator.start_workers()
    owner = unique("owner")
    running = await orchestrator.enqueue_task(agent=slow, owner_id=owner, payload={})
    ended = await orchestrator.enqueue_task(agent=quick, owner_id=owner, payload={})
    await asyncio.wait_for(ended.result(), 30)

    client = await orchestrator.client()
    named = await cancel_and_wait(client, [running.id, ended.id, unique("no-such-task")], 30)

    assert named == [running.id]
    assert await orchestrator.get_task_status(running.id) == TaskStatus.CANCELLED
    assert await orchestrator.get_task_status(ended.id) == TaskStatus.COMPLETED


async def test_cancel_and_wait_gives_up_on_a_workflow_that_does_not_close(
    orchestrator: Orchestrator, unique
) -> None:
    """A workflow that outlives the wait is not named (its batch learns its end later)."""
    slow = Agent(name=unique("slow"), model=ScriptedModel([Reply(content="late", delay=60)]))
    orchestrator.register_runner(slow)
    # No worker runs the task: its cancel request is recorded, but nothing closes it.
    owner = unique("owner")
    task = await orchestrator.enqueue_task(agent=slow, owner_id=owner, payload={})

    named = await cancel_and_wait(await orchestrator.client(), [task.id], 0.5)

    assert named == []
    assert await orchestrator.get_task_status(task.id) != TaskStatus.CANCELLED
