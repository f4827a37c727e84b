"""Idempotent enqueue on a real Temporal server: one key, one run, however it is asked."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from factorial import (
    Agent,
    Budget,
    FailurePolicy,
    IdempotencyConflictError,
    Orchestrator,
    TaskStatus,
)
from factorial._model_types import ModelRequest
from factorial.testing import Reply, ScriptedModel
from tests.conftest import BOTH_TURN_MODES

pytestmark = BOTH_TURN_MODES


def counting_agent(name: str, calls: list[str]) -> Agent:
    """An agent whose model answers ``done <query>`` and records each task it answers."""

    def answer(request: ModelRequest) -> Reply:
        calls.append(request.task_id)
        return Reply(content=f"done {request.messages[-1]['content']}")

    return Agent(name=name, instructions="Answer.", model=ScriptedModel(answer))


async def workflow_ids(orch: Orchestrator, workflow_id: str, closed: int) -> list[str]:
    """The runs visibility lists under ``workflow_id``, once ``closed`` of them show closed."""
    client = await orch.client()
    query = f"WorkflowId = '{workflow_id}'"
    while True:
        runs = [e async for e in client.list_workflows(query)]
        if sum(e.close_time is not None for e in runs) >= closed:
            return [e.run_id for e in runs]
        await asyncio.sleep(0.2)


async def test_racing_enqueues_with_one_key_start_one_task(
    orchestrator: Orchestrator, unique: Any
) -> None:
    calls: list[str] = []
    agent = counting_agent(unique("idem"), calls)
    orchestrator.register_runner(agent=agent)
    await orchestrator.start_workers()
    owner = unique("owner")

    def enqueue(query: str = "q", who: str = owner) -> Any:
        return orchestrator.enqueue_task(
            agent, owner_id=who, payload={"query": query}, idempotency_key="order-1"
        )

    tasks = await asyncio.gather(*(enqueue() for _ in range(6)))
    assert len({t.id for t in tasks}) == 1
    task = tasks[0]
    assert all(t.agent == agent.name and t.metadata.owner_id == owner for t in tasks)
    assert len({t.metadata.created_at for t in tasks}) == 1  # the run's, whoever started it
    assert await task.result() == "done q"
    client = await orchestrator.client()
    first_run = (await client.get_workflow_handle(task.id).describe()).run_id

    # After the run has ended: the same task, ended, and no second run.
    again = await enqueue()
    assert again.id == task.id and again.status == TaskStatus.COMPLETED
    assert await again.result() == "done q"
    made = agent.create_task(owner_id=owner, payload={"query": "q"})  # its own id gives way
    from_task = await orchestrator.enqueue_task(agent, made, idempotency_key="order-1")
    assert from_task.id == task.id != made.id
    assert await workflow_ids(orchestrator, task.id, closed=1) == [first_run]
    assert calls == [task.id]

    # The key is the owner's: another owner's key names another task.
    other = await enqueue(who=unique("other-owner"))
    assert other.id != task.id
    assert await other.result() == "done q"

    # The same key with another payload or agent is refused, naming the task it has.
    with pytest.raises(IdempotencyConflictError) as refused:
        await enqueue(query="something else")
    assert refused.value.existing_id == task.id
    second = counting_agent(unique("idem-other"), [])
    orchestrator.register_runner(agent=second)
    with pytest.raises(IdempotencyConflictError, match="of agent"):
        await orchestrator.enqueue_task(
            second, owner_id=owner, payload={"query": "q"}, idempotency_key="order-1"
        )
    assert calls == [task.id, other.id]


async def test_racing_enqueues_with_one_key_start_one_batch(
    orchestrator: Orchestrator, unique: Any
) -> None:
    calls: list[str] = []
    agent = counting_agent(unique("idem-batch"), calls)
    orchestrator.register_runner(agent=agent)
    owner = unique("owner")
    payloads = [{"query": str(i)} for i in range(3)]

    def enqueue(items: list[dict[str, Any]] = payloads) -> Any:
        return orchestrator.enqueue_batch(agent, owner, items, idempotency_key="nightly")

    # Enqueued before any worker runs: every caller reads the one batch back.
    batches = await asyncio.gather(*(enqueue() for _ in range(5)))
    assert len({b.id for b in batches}) == 1
    batch = batches[0]
    assert all(b.task_ids == batch.task_ids and len(b.task_ids) == 3 for b in batches)
    assert all(b.metadata.owner_id == owner for b in batches)

    await orchestrator.start_workers()
    client = await orchestrator.client()
    await client.get_workflow_handle(batch.id).result()
    again = await enqueue()
    assert again.id == batch.id and again.task_ids == batch.task_ids
    assert again.metadata.status == "completed" and again.metadata.completed == 3
    assert len(await workflow_ids(orchestrator, batch.id, closed=1)) == 1
    for task_id in batch.task_ids:
        assert len(await workflow_ids(orchestrator, task_id, closed=1)) == 1
    assert sorted(calls) == sorted(batch.task_ids)

    with pytest.raises(IdempotencyConflictError, match="another payload"):
        await enqueue(payloads[:2])


async def test_racing_enqueues_of_a_batch_of_several_leaves(
    temporal_server: Any, turn_execution: Any, unique: Any
) -> None:
    from tests.conftest import ModeOrchestrator

    orch = ModeOrchestrator(
        temporal_address=temporal_server.address,
        turn_execution=turn_execution,
        batch_chunk_size=2,
    )
    try:
        calls: list[str] = []
        agent = counting_agent(unique("idem-leaves"), calls)
        orch.register_runner(agent=agent)
        await orch.start_workers()
        owner = unique("owner")
        payloads = [{"query": str(i)} for i in range(5)]
        batches = await asyncio.gather(
            *(orch.enqueue_batch(agent, owner, payloads, idempotency_key="k") for _ in range(4))
        )
        assert len({b.id for b in batches}) == 1
        batch = batches[0]
        client = await orch.client()
        await client.get_workflow_handle(batch.id).result()
        assert (await orch.get_batch(batch.id)).metadata.completed == 5
        assert sorted(calls) == sorted(batch.task_ids)
    finally:
        await orch.close()


async def test_a_key_repeated_with_other_limits_conflicts(
    orchestrator: Orchestrator, unique: Any
) -> None:
    """A batch's budget and failure policy, and a task's agent budget, are part of the key."""
    agent = counting_agent(unique("idem-limits"), [])
    orchestrator.register_runner(agent=agent)
    await orchestrator.start_workers()
    owner = unique("owner")
    payloads = [{"query": "a"}]

    def enqueue(budget: Budget | None, on_failure: FailurePolicy | None) -> Any:
        return orchestrator.enqueue_batch(
            agent, owner, payloads, idempotency_key="b", budget=budget, on_failure=on_failure
        )

    budget, policy = Budget(tokens=1000), FailurePolicy(max_failed=1)
    batch = await enqueue(budget, policy)
    assert (await enqueue(Budget(tokens=1000), FailurePolicy(max_failed=1))).id == batch.id
    for other_budget, other_policy, named in [
        (Budget(tokens=2000), policy, "another budget"),
        (None, policy, "another budget"),
        (budget, FailurePolicy(max_failed=2), "another failure policy"),
        (budget, None, "another failure policy"),
    ]:
        with pytest.raises(IdempotencyConflictError, match=named) as refused:
            await enqueue(other_budget, other_policy)
        assert refused.value.existing_id == batch.id

    # A task's budget is its agent's: the same agent name with another budget conflicts.
    task = await orchestrator.enqueue_task(
        agent, owner_id=owner, payload={"query": "t"}, idempotency_key="t"
    )
    elsewhere = Orchestrator(client=await orchestrator.client())
    try:
        budgeted = Agent(name=agent.name, model=ScriptedModel([]), budget=Budget(turns=3))
        elsewhere.register_runner(agent=budgeted)
        with pytest.raises(IdempotencyConflictError, match="another agent budget") as refused:
            await elsewhere.enqueue_task(
                budgeted, owner_id=owner, payload={"query": "t"}, idempotency_key="t"
            )
        assert refused.value.existing_id == task.id
    finally:
        await elsewhere.close()
    assert await task.result() == "done t"
