"""The fallback crash test's worker: ``python -m tests.integration.fallback_worker_app``.

It reads ``TEMPORAL_ADDRESS``, ``FALLBACK_AGENT_NAME`` and ``FALLBACK_TURN_EXECUTION`` and
serves one agent whose model is ``fallback_models(primary, secondary)``: the primary
answers after ``PRIMARY_DELAY`` seconds (the window in which the test kills the worker),
the secondary at once. The test builds the very same agent with ``build_agent``.
"""

from __future__ import annotations

import os

from factorial import Agent, AgentWorkerConfig, Orchestrator, fallback_models
from factorial.testing import ScriptedModel, reply

#: Seconds the primary model takes to answer.
PRIMARY_DELAY = 5.0


def worker_config(turn_execution: str) -> AgentWorkerConfig:
    """A lost regular turn is retried 2 s after its last heartbeat; a lost local one runs
    again when its workflow task times out (10 s)."""
    return AgentWorkerConfig(
        turn_execution=turn_execution, heartbeat_timeout=2.0, initial_backoff=0.2, max_retries=3
    )


def build_agent(name: str) -> Agent:
    """The agent; identical in the worker processes and the test."""
    return Agent(
        name=name,
        model=fallback_models(
            ScriptedModel([reply("from primary", delay=PRIMARY_DELAY)], name="primary"),
            ScriptedModel([reply("from secondary")], name="secondary"),
        ),
    )


if __name__ == "__main__":
    orchestrator = Orchestrator(temporal_address=os.environ["TEMPORAL_ADDRESS"])
    orchestrator.register_runner(
        agent=build_agent(os.environ["FALLBACK_AGENT_NAME"]),
        agent_worker_config=worker_config(os.environ["FALLBACK_TURN_EXECUTION"]),
    )
    orchestrator.run()
