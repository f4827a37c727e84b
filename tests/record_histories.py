"""Record task workflow histories for the replay tests: ``python -m tests.record_histories``.

Starts a local dev server, runs three scripted tasks and writes their histories to
``tests/histories/``:

* ``agent_task_basic.json``: a tool call, then a final reply.
* ``agent_task_steer_deferred.json``: a deferred tool call; while the task waits for its
  result it is steered, then the result arrives and the next turn answers.
* ``agent_task_cancelled.json``: cancelled while a slow turn runs.

Each task's id is its file's name, so ``WorkflowHistory.from_json(path.stem, ...)`` gets the
real workflow id back. ``tests/integration/test_replay.py`` also calls ``record_all`` to record
fresh histories against the current code.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path

from temporalio.api.enums.v1 import EventType, PendingActivityState
from temporalio.client import WorkflowHistory

from factorial import (
    Agent,
    AgentContext,
    Orchestrator,
    TaskCancelledError,
    deferred_tool,
)
from factorial._wire import RUN_TURN_ACTIVITY
from factorial.devserver import DevServer
from factorial.testing import ScriptedModel, call_tool, reply

HISTORIES_DIR = Path(__file__).resolve().parent / "histories"
BASIC = "agent_task_basic"
STEER_DEFERRED = "agent_task_steer_deferred"
CANCELLED = "agent_task_cancelled"
SCENARIOS = (BASIC, STEER_DEFERRED, CANCELLED)
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


def build_agents(prefix: str) -> dict[str, Agent]:
    """The scripted agent of each scenario, named ``{prefix}_{scenario}``."""
    return {
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
        CANCELLED: Agent(
            name=f"{prefix}_cancelled",
            instructions="You think slowly.",
            model=ScriptedModel([reply("never sent", delay=120)]),
        ),
    }


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


async def run_basic(orch: Orchestrator, agent: Agent, task_id: str, owner: str) -> None:
    """A tool call, then a final reply."""
    await _enqueue(orch, agent, task_id, owner, "What is 2 + 3?")
    result = await asyncio.wait_for(orch.get_task_result(task_id), _WAIT)
    assert result == "2 + 3 = 5", result


async def run_steer_deferred(orch: Orchestrator, agent: Agent, task_id: str, owner: str) -> None:
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


async def run_cancelled(orch: Orchestrator, agent: Agent, task_id: str, owner: str) -> None:
    """Cancelled while its first (slow) turn runs."""
    await _enqueue(orch, agent, task_id, owner, "Think about it.")
    handle = (await orch.client()).get_workflow_handle(task_id)

    async def turn_running() -> bool:
        description = await handle.describe()
        return any(
            pending.activity_type.name == RUN_TURN_ACTIVITY
            and pending.state == PendingActivityState.PENDING_ACTIVITY_STATE_STARTED
            for pending in description.raw_description.pending_activities
        )

    await _poll(turn_running, "the slow turn to start")
    await orch.cancel_task(task_id)
    try:
        await asyncio.wait_for(orch.get_task_result(task_id), _WAIT)
    except TaskCancelledError:
        pass
    else:
        raise AssertionError("the task was not cancelled")


_RUNNERS = {BASIC: run_basic, STEER_DEFERRED: run_steer_deferred, CANCELLED: run_cancelled}


async def record_all(
    orch: Orchestrator, *, prefix: str = "replay", owner: str = "replay-owner", id_suffix: str = ""
) -> dict[str, WorkflowHistory]:
    """Run every scenario on ``orch`` (its workers are started here) and fetch the histories.

    Task ids are ``{scenario}{id_suffix}``; the result maps scenario names to histories.
    """
    agents = build_agents(prefix)
    for agent in agents.values():
        orch.register_runner(agent=agent)
    await orch.start_workers()
    client = await orch.client()
    histories: dict[str, WorkflowHistory] = {}
    for scenario, runner in _RUNNERS.items():
        task_id = f"{scenario}{id_suffix}"
        await runner(orch, agents[scenario], task_id, owner)
        history = await client.get_workflow_handle(task_id).fetch_history()
        _check_closed(scenario, history)
        histories[scenario] = history
    return histories


def _check_closed(scenario: str, history: WorkflowHistory) -> None:
    expected = (
        EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CANCELED
        if scenario == CANCELLED
        else EventType.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED
    )
    last = history.events[-1].event_type
    assert last == expected, f"{scenario} ended with {EventType.Name(last)}"


def load_history(path: Path) -> WorkflowHistory:
    """A recorded history; its workflow id is the file's stem."""
    return WorkflowHistory.from_json(path.stem, json.loads(path.read_text()))


async def main() -> None:
    server = DevServer().start()
    orch = Orchestrator(temporal_address=server.address)
    try:
        histories = await record_all(orch)
    finally:
        await orch.close()
        server.stop()
    HISTORIES_DIR.mkdir(exist_ok=True)
    for scenario, history in histories.items():
        path = HISTORIES_DIR / f"{scenario}.json"
        path.write_text(history.to_json() + "\n")
        print(f"wrote {path} ({len(history.events)} events)", file=sys.stderr)


if __name__ == "__main__":
    asyncio.run(main())
