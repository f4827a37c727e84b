"""A task whose model is a real OpenAI-compatible HTTP server, through Temporal workers."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from factorial import Agent, AgentWorkerConfig, Orchestrator
from factorial.models import openai_compatible
from tests.conftest import collect_events, has_event
from tests.unit.test_openai_http import Canned, FakeOpenAIServer, _completion, running


class SequenceServer(FakeOpenAIServer):
    """Answers the n-th request with the n-th canned answer (the last one repeats)."""

    def __init__(self, answers: list[Canned]) -> None:
        self.answers = answers
        super().__init__()

    @property
    def canned(self) -> Canned:  # type: ignore[override]
        return self.answers[min(len(self.requests), len(self.answers)) - 1]

    @canned.setter
    def canned(self, value: Canned) -> None:
        pass


@pytest.fixture
def llm_server() -> Iterator[SequenceServer]:
    tool_call = {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {
                "id": "call_abc",
                "type": "function",
                "function": {"name": "lookup", "arguments": json.dumps({"term": "temporal"})},
            }
        ],
    }
    srv = SequenceServer(
        [
            Canned(
                status=429, body={"error": {"message": "slow down"}}, headers={"Retry-After": "1"}
            ),
            Canned(body=_completion(tool_call, "tool_calls")),
            Canned(body=_completion({"role": "assistant", "content": "Temporal is durable."})),
        ]
    )
    with running(srv):
        yield srv


def lookup(term: str) -> str:
    """Look a term up."""
    return f"{term}: a durable execution engine"


async def test_task_talks_to_an_openai_compatible_server(
    orchestrator: Orchestrator, llm_server: SequenceServer, unique
) -> None:
    agent = Agent(
        name=unique("http"),
        instructions="Answer briefly.",
        tools=[lookup],
        model=openai_compatible("local-model", base_url=llm_server.base_url),
    )
    config = AgentWorkerConfig(initial_backoff=0.1, max_backoff=5)
    orchestrator.register_runner(agent=agent, agent_worker_config=config)
    await orchestrator.start_workers()
    owner = unique("owner")

    task = await orchestrator.enqueue_task(
        agent=agent, owner_id=owner, payload={"query": "Temporal?"}
    )

    assert await task.result() == "Temporal is durable."
    requests: list[dict[str, Any]] = llm_server.requests
    assert len(requests) == 3  # the 429 once, then two turns: the client itself never retried
    assert requests[1]["model"] == "local-model"
    assert requests[1]["messages"][0] == {"role": "system", "content": "Answer briefly."}
    assert requests[1]["tools"][0]["function"]["name"] == "lookup"
    assert requests[2]["messages"][-1] == {
        "role": "tool",
        "tool_call_id": "call_abc",
        "content": "temporal: a durable execution engine",
    }
    events = await collect_events(orchestrator, owner, has_event("run_completed"))
    failed = [e for e in events if e["event_type"] == "task_failed"]
    assert len(failed) == 1 and "HTTP 429" in failed[0]["error"]
