"""A worker process for the budget crash test: ``python -m tests.integration.budget_worker_app``.

It reads ``TEMPORAL_ADDRESS``, ``CRASH_AGENT_NAME`` and ``CRASH_TURN_EXECUTION`` from the
environment and serves one scripted agent with a token budget until it is killed. The test
builds the very same agent with ``build_agent`` to enqueue its task without a worker.

Every turn uses ``TOKENS_PER_TURN`` tokens and calls the ``noop`` tool; turn 1's model call
answers after ``TURN_1_DELAY`` seconds, the window in which the test kills the worker. With a
budget of ``BUDGET_TOKENS`` the task must stop after exactly ``TURNS_TO_BUDGET`` turns.
"""

from __future__ import annotations

import os

from factorial import Agent, Budget, Orchestrator, TokenUsage
from factorial.models import ModelRequest
from factorial.testing import Reply, ScriptedModel
from tests.integration.crash_worker_app import worker_config

TURN_1_DELAY = 4.0
TOKENS_PER_TURN = 100
BUDGET_TOKENS = 350
#: 100, 200, 300 leave room; 400 does not: the 4th turn's boundary stops the task.
TURNS_TO_BUDGET = 4


def noop() -> str:
    """Do nothing."""
    return "ok"


def _turn(request: ModelRequest) -> Reply:
    return Reply(
        tool_calls=[{"name": "noop"}],
        usage=TokenUsage(prompt_tokens=TOKENS_PER_TURN - 10, completion_tokens=10),
        delay=TURN_1_DELAY if request.turn == 1 else 0.0,
    )


def build_agent(name: str) -> Agent:
    """The budget crash test's agent; identical in the worker processes and the test."""
    return Agent(
        name=name,
        tools=[noop],
        model=ScriptedModel(_turn),
        budget=Budget(tokens=BUDGET_TOKENS),
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
