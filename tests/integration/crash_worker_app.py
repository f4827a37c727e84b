"""A worker process for the crash test: ``python -m tests.integration.crash_worker_app``.

It reads ``TEMPORAL_ADDRESS``, ``CRASH_AGENT_NAME`` and ``CRASH_TURN_EXECUTION`` from the
environment and serves one scripted agent until it is killed. The test process builds the
very same agent (same name, same ``AgentWorkerConfig``) with ``build_agent`` to enqueue tasks
without running workers.

The script: turn 0 calls the ``add`` tool, turn 1 answers after ``TURN_1_DELAY`` seconds,
which is the window in which the test kills the worker.
"""

from __future__ import annotations

import os

from factorial import Agent, AgentWorkerConfig, Orchestrator
from factorial.testing import ScriptedModel, call_tool, reply

#: Seconds the model of turn 1 takes to answer (on every attempt).
TURN_1_DELAY = 4.0
FINAL_ANSWER = "2 + 3 = 5"


def worker_config(turn_execution: str) -> AgentWorkerConfig:
    """A lost regular turn counts as lost after 2 s without a heartbeat, and is retried 0.2 s
    later; a lost local turn is run again once its workflow task times out (10 s)."""
    return AgentWorkerConfig(
        turn_execution=turn_execution,
        heartbeat_timeout=2.0,
        initial_backoff=0.2,
        max_retries=3,
    )


def add(a: int, b: int) -> int:
    """Add two numbers."""
    return a + b


def build_agent(name: str) -> Agent:
    """The crash test's agent; identical in the worker processes and the test."""
    return Agent(
        name=name,
        instructions="You add numbers.",
        tools=[add],
        model=ScriptedModel([call_tool("add", a=2, b=3), reply(FINAL_ANSWER, delay=TURN_1_DELAY)]),
    )


def build_orchestrator() -> Orchestrator:
    """An Orchestrator on ``TEMPORAL_ADDRESS`` with the agent ``CRASH_AGENT_NAME`` registered."""
    orchestrator = Orchestrator(temporal_address=os.environ["TEMPORAL_ADDRESS"])
    orchestrator.register_runner(
        agent=build_agent(os.environ["CRASH_AGENT_NAME"]),
        agent_worker_config=worker_config(os.environ["CRASH_TURN_EXECUTION"]),
    )
    return orchestrator


if __name__ == "__main__":
    build_orchestrator().run()
