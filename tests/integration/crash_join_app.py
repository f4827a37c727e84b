"""A worker process for the join crash test: ``python -m tests.integration.crash_join_app``.

It reads ``TEMPORAL_ADDRESS``, ``CRASH_AGENT_NAME`` and ``CRASH_TURN_EXECUTION`` from the
environment and serves a leader and its scouts until it is killed; the test builds the very
same agents (``build_agents``) to enqueue without running workers.

The leader's forking tool sends three scouts with ``join="first"``: ``near`` answers after
``NEAR_DELAY`` seconds (the window in which the test kills the worker), the two ``far`` ones
would take minutes.
"""

from __future__ import annotations

import os

from factorial import Agent, ExecutionContext, Orchestrator, forking_tool
from factorial.models import ModelRequest
from factorial.testing import Reply, ScriptedModel, call_tool, reply
from tests.integration.crash_worker_app import worker_config

#: Seconds the ``near`` scout's model takes to answer (on every attempt).
NEAR_DELAY = 4.0
QUERIES = ("far", "near", "farther")


def scout_script(request: ModelRequest) -> Reply:
    query = next(m for m in request.messages if m["role"] == "user")["content"]
    if query == "near":
        return Reply(content="found near", delay=NEAR_DELAY)
    return Reply(content="too late", delay=300)


def build_agents(name: str) -> tuple[Agent, Agent]:
    """The leader and its scout; identical in the worker processes and the test."""
    scout = Agent(name=f"{name}_scout", model=ScriptedModel(scout_script))

    @forking_tool(timeout=600, join="first")
    async def race(execution_ctx: ExecutionContext) -> list[str]:
        """Send the scouts; go on with the first back."""
        batch = await execution_ctx.spawn_child_tasks(scout, [{"query": q} for q in QUERIES])
        return batch.task_ids

    leader = Agent(
        name=f"{name}_leader",
        tools=[race],
        model=ScriptedModel(
            lambda r: call_tool("race") if r.turn == 0 else reply(r.messages[-1]["content"])
        ),
    )
    return leader, scout


def build_orchestrator() -> Orchestrator:
    """An Orchestrator on ``TEMPORAL_ADDRESS`` with both agents registered."""
    orchestrator = Orchestrator(temporal_address=os.environ["TEMPORAL_ADDRESS"])
    config = worker_config(os.environ["CRASH_TURN_EXECUTION"])
    for agent in build_agents(os.environ["CRASH_AGENT_NAME"]):
        orchestrator.register_runner(agent=agent, agent_worker_config=config)
    return orchestrator


if __name__ == "__main__":
    build_orchestrator().run()
