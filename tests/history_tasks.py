"""The replay scenarios of single agent tasks, for ``tests.record_histories``.

Each task scenario runs in both turn modes, under the id its history's file is named after.
The waiting helpers here serve the batch scenarios (``tests.history_batches``) too.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from temporalio.api.enums.v1 import PendingActivityState, PendingWorkflowTaskState
from temporalio.service import RPCError, RPCStatusCode

from factorial import (
    Agent,
    AgentContext,
    ExecutionContext,
    Orchestrator,
    TaskCancelledError,
    deferred_tool,
    forking_tool,
)
from factorial._wire import RUN_TURN_ACTIVITY
from factorial.testing import ScriptedModel, call_tool, reply

BASIC = "agent_task_basic"
STEER_DEFERRED = "agent_task_steer_deferred"
CANCELLED = "agent_task_cancelled"
FANOUT = "agent_task_fanout"
FANOUT_CHILD = "fanout_child"  # an agent only, not a recorded scenario
TASK_SCENARIOS = (BASIC, STEER_DEFERRED, CANCELLED, FANOUT)
STEERING_MESSAGE = {"role": "user", "content": "Please also say thank you."}
#: How long a scenario waits for a result or a state, in seconds.
WAIT = 30.0


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


def build_task_agents(prefix: str) -> dict[str, Agent]:
    """The scripted agent of each task scenario, named ``{prefix}_{scenario}``."""
    fanout, fanout_child = _fanout_agents(prefix)
    return {
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
        CANCELLED: slow_agent(f"{prefix}_cancelled"),
    }


def slow_agent(name: str) -> Agent:
    """A first turn that takes two minutes: long enough to be cancelled while it runs."""
    return Agent(
        name=name,
        instructions="You think slowly.",
        model=ScriptedModel([reply("never sent", delay=120)]),
    )


async def poll(check: Callable[[], Awaitable[bool]], what: str) -> None:
    """Wait until ``check`` holds (at most ``WAIT`` seconds, else fail naming ``what``)."""

    async def loop() -> None:
        while not await check():
            await asyncio.sleep(0.05)

    try:
        await asyncio.wait_for(loop(), WAIT)
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
    result = await asyncio.wait_for(orch.get_task_result(task_id), WAIT)
    assert result == "2 + 3 = 5", result


async def run_steer_deferred(
    orch: Orchestrator, agent: Agent, task_id: str, owner: str, local: bool
) -> None:
    """A deferred tool call; steered while waiting; completed; a final reply."""
    await _enqueue(orch, agent, task_id, owner, "Pay invoice 7 (100 EUR).")

    async def waiting_for_tool() -> bool:
        data = await orch.get_task_data(task_id)
        return data is not None and data["status"] == "pending_tool_results"

    await poll(waiting_for_tool, "the deferred tool call")
    await orch.steer_task(task_id, [STEERING_MESSAGE])
    assert await orch.complete_deferred_tool(task_id, "call_0_0", {"approved": True})
    result = await asyncio.wait_for(orch.get_task_result(task_id), WAIT)
    assert result == "Paid 100. Thank you!", result
    data = await orch.get_task_data(task_id)
    assert data is not None
    messages = data["context"]["messages"]
    assert [m["role"] for m in messages] == ["user", "assistant", "tool", "user", "assistant"]
    assert messages[3] == STEERING_MESSAGE


async def turn_running(orch: Orchestrator, task_id: str, local: bool = False) -> bool:
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
    await poll(lambda: turn_running(orch, task_id, local), "the slow turn to start")
    await orch.cancel_task(task_id)
    try:
        await asyncio.wait_for(orch.get_task_result(task_id), WAIT)
    except TaskCancelledError:
        pass
    else:
        raise AssertionError("the task was not cancelled")


async def run_fanout(
    orch: Orchestrator, agent: Agent, task_id: str, owner: str, local: bool
) -> None:
    """A forking tool starts two sub-tasks; the parent reads their results block."""
    await _enqueue(orch, agent, task_id, owner, "Tell me about tides and moons.")
    output = await asyncio.wait_for(orch.get_task_result(task_id), WAIT)
    assert output.startswith("<sub_task_results>") and "found tides" in output, output


TASK_RUNNERS = {
    BASIC: run_basic,
    STEER_DEFERRED: run_steer_deferred,
    CANCELLED: run_cancelled,
    FANOUT: run_fanout,
}
