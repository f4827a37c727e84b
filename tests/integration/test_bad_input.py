"""Bad input gets a typed error before anything starts, and leaves nothing behind."""

from __future__ import annotations

import base64
import os

import pytest
from temporalio.service import RPCError, RPCStatusCode

from factorial import (
    Agent,
    AgentContext,
    AgentNotRegisteredError,
    InvalidIdError,
    InvalidPayloadError,
    Orchestrator,
    PayloadTooLargeError,
    TaskNotFoundError,
    TaskStateError,
    UserError,
)
from factorial._ids import events_workflow_id
from factorial.testing import ScriptedModel, reply


class TicketContext(AgentContext):
    ticket_id: int


async def assert_nothing_created(orch: Orchestrator, owner_id: str) -> None:
    """Neither a task nor the owner's event stream was started."""
    client = await orch.client()
    with pytest.raises(RPCError) as info:
        await client.get_workflow_handle(events_workflow_id(owner_id)).describe()
    assert info.value.status == RPCStatusCode.NOT_FOUND


@pytest.fixture
def agent(unique) -> Agent:
    return Agent(
        name=unique("strict"), context_class=TicketContext, model=ScriptedModel([reply("ok")])
    )


async def test_unregistered_agent(orchestrator: Orchestrator, agent: Agent, unique) -> None:
    owner = unique("owner")
    with pytest.raises(AgentNotRegisteredError):
        await orchestrator.enqueue_task(agent=agent, owner_id=owner, payload={"ticket_id": 1})
    await assert_nothing_created(orchestrator, owner)


async def test_invalid_payload(orchestrator: Orchestrator, agent: Agent, unique) -> None:
    orchestrator.register_runner(agent=agent)
    owner = unique("owner")
    with pytest.raises(InvalidPayloadError, match="ticket_id"):
        await orchestrator.enqueue_task(agent=agent, owner_id=owner, payload={"query": "x"})
    with pytest.raises(InvalidPayloadError):
        agent.create_task(owner_id=owner, payload={"ticket_id": "not a number"})
    await assert_nothing_created(orchestrator, owner)


@pytest.mark.parametrize("owner", ["", "has space", "slash/inside", "x" * 201, "ünïcode", "-lead"])
async def test_invalid_owner_id(orchestrator: Orchestrator, agent: Agent, owner: str) -> None:
    orchestrator.register_runner(agent=agent)
    with pytest.raises(InvalidIdError):
        await orchestrator.enqueue_task(agent=agent, owner_id=owner, payload={"ticket_id": 1})


async def test_payload_too_large(orchestrator: Orchestrator, agent: Agent, unique) -> None:
    orchestrator.register_runner(agent=agent)
    owner = unique("owner")
    noise = base64.b64encode(os.urandom(3 * 1024 * 1024)).decode()  # does not compress
    huge = {"ticket_id": 1, "query": noise}
    with pytest.raises(PayloadTooLargeError, match="compressed"):
        await orchestrator.enqueue_task(agent=agent, owner_id=owner, payload=huge)
    await assert_nothing_created(orchestrator, owner)


async def test_unknown_and_invalid_task_ids(orchestrator: Orchestrator) -> None:
    for call in (
        orchestrator.get_task_status,
        orchestrator.get_task_data,
        orchestrator.cancel_task,
        orchestrator.get_task_result,
    ):
        with pytest.raises(TaskNotFoundError):
            await call("task-does-not-exist")
        with pytest.raises(InvalidIdError):
            await call("not a valid id")
    with pytest.raises(TaskNotFoundError):
        await orchestrator.steer_task("task-does-not-exist", [{"role": "user", "content": "x"}])
    with pytest.raises(TaskNotFoundError):
        await orchestrator.complete_deferred_tool("task-does-not-exist", "call_1", "r")


async def test_duplicate_task_id_and_steering_errors(
    orchestrator: Orchestrator, agent: Agent, unique
) -> None:
    orchestrator.register_runner(agent=agent)
    await orchestrator.start_workers()
    task = agent.create_task(owner_id=unique("owner"), payload={"ticket_id": 7})
    started = await orchestrator.enqueue_task(agent=agent, task=task)
    with pytest.raises(UserError, match="already exists"):
        await orchestrator.enqueue_task(agent=agent, task=task)
    assert await started.result() == "ok"

    with pytest.raises(TaskStateError):
        await orchestrator.steer_task(task.id, [{"role": "user", "content": "too late"}])


async def test_bad_steering_messages(orchestrator: Orchestrator, unique) -> None:
    from factorial.testing import Reply

    agent = Agent(name=unique("slowpoke"), model=ScriptedModel([Reply(content="x", delay=5)]))
    orchestrator.register_runner(agent=agent)
    await orchestrator.start_workers()
    task = await orchestrator.enqueue_task(agent=agent, owner_id=unique("o"), payload={})
    with pytest.raises(InvalidPayloadError):
        await orchestrator.steer_task(task.id, [{"content": "no role"}])
    with pytest.raises(InvalidPayloadError):
        await orchestrator.steer_task(task.id, [])
    await orchestrator.cancel_task(task.id)


def test_duplicate_agent_names_rejected(unique) -> None:
    orch = Orchestrator(temporal_address="127.0.0.1:1")
    name = unique("twin")
    orch.register_runner(agent=Agent(name=name))
    with pytest.raises(UserError, match="already registered"):
        orch.register_runner(agent=Agent(name=name))
