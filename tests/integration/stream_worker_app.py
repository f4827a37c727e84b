"""A worker process for the streaming crash test: ``python -m tests.integration.stream_worker_app``.

It reads ``TEMPORAL_ADDRESS``, ``STREAM_AGENT_NAME``, ``STREAM_TURN_EXECUTION`` and
``STREAM_BASE_URL`` (the test's local OpenAI-compatible server) from the environment and
serves one streaming agent until it is killed. The test builds the very same agent with
``build_agent`` to enqueue tasks without running workers.
"""

from __future__ import annotations

import os

from factorial import Agent, AgentWorkerConfig, Orchestrator
from factorial.models import openai_compatible


def worker_config(turn_execution: str) -> AgentWorkerConfig:
    """A lost regular turn counts as lost after 2 s without a heartbeat and is retried 0.2 s
    later; a lost local turn runs again once its workflow task times out (10 s)."""
    return AgentWorkerConfig(
        turn_execution=turn_execution, heartbeat_timeout=2.0, initial_backoff=0.2, max_retries=3
    )


def build_agent(name: str, base_url: str) -> Agent:
    """The streaming crash test's agent; identical in the worker processes and the test."""
    return Agent(
        name=name,
        instructions="Answer at length.",
        model=openai_compatible("stream-model", base_url=base_url),
        stream=True,
    )


if __name__ == "__main__":
    orchestrator = Orchestrator(temporal_address=os.environ["TEMPORAL_ADDRESS"])
    orchestrator.register_runner(
        agent=build_agent(os.environ["STREAM_AGENT_NAME"], os.environ["STREAM_BASE_URL"]),
        agent_worker_config=worker_config(os.environ["STREAM_TURN_EXECUTION"]),
    )
    orchestrator.run()
