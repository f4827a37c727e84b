"""A task's whole life on a real Temporal server: turns, tools, events, status and data."""

from __future__ import annotations

from factorial import Agent, AgentContext, Orchestrator, TaskStatus
from factorial.testing import ScriptedModel, call_tool, reply
from tests.conftest import collect_events, has_event


def add(a: int, b: int) -> int:
    """Add two numbers."""
    return a + b


async def test_task_runs_to_completion_with_events(orchestrator: Orchestrator, unique) -> None:
    agent = Agent(
        name=unique("adder"),
        instructions="You add numbers.",
        tools=[add],
        model=ScriptedModel([call_tool("add", a=2, b=3), reply("2 + 3 = 5")]),
    )
    orchestrator.register_runner(agent=agent)
    await orchestrator.start_workers()
    owner = unique("owner")

    task = await orchestrator.enqueue_task(
        agent=agent, owner_id=owner, payload=AgentContext(query="What is 2 + 3?")
    )
    assert await task.result() == "2 + 3 = 5"
    events = await collect_events(orchestrator, owner, has_event("run_completed"))

    types = [e["event_type"] for e in events]
    assert types[0] == "run_started"
    assert types[-2:] == ["agent_output", "run_completed"]
    assert types.count("progress_update_run_turn_completed") == 2
    assert "progress_update_tool_action_completed" in types
    for event in events:
        assert event["task_id"] == task.id
        assert event["owner_id"] == owner
        assert event["agent_name"] == agent.name
        assert "timestamp" in event
    output = next(e for e in events if e["event_type"] == "agent_output")
    assert output["data"] == "2 + 3 = 5"
    assert output["turn"] == 2
    tool_done = next(
        e for e in events if e["event_type"] == "progress_update_tool_action_completed"
    )
    assert tool_done["data"]["result"] == "5"

    assert await orchestrator.get_task_status(task.id) == TaskStatus.COMPLETED
    data = await orchestrator.get_task_data(task.id)
    assert data is not None
    assert data["status"] == "completed"
    assert data["output"] == "2 + 3 = 5"
    assert data["turn"] == 2
    messages = data["context"]["messages"]
    assert [m["role"] for m in messages] == ["user", "assistant", "tool", "assistant"]
