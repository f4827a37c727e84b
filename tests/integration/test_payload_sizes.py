"""Payloads inside a run: compressed on the wire, and a typed error past Temporal's limit."""

from __future__ import annotations

import base64
import os
import random

from factorial import Agent, AgentWorkerConfig, Orchestrator, TaskFailedError
from factorial.models import ModelRequest
from factorial.testing import Reply, ScriptedModel, call_tool, reply

QUICK = AgentWorkerConfig(initial_backoff=0.1, max_backoff=0.2, heartbeat_timeout=5)
WORDS = ["tide", "moon", "orbit", "comet", "gravity", "ocean", "shore", "planet", "light"]


def prose(size: int, seed: int = 0) -> str:
    """About ``size`` characters of text that compresses like text does (3-5x)."""
    rng = random.Random(seed)
    words: list[str] = []
    length = 0
    while length < size:
        word = rng.choice(WORDS) + rng.choice(["", "s", "ed", "ing"])
        words.append(word)
        length += len(word) + 1
    return " ".join(words)


def noise(size: int) -> str:
    """``size`` characters that do not compress."""
    return base64.b64encode(os.urandom(size * 3 // 4)).decode()


async def test_a_large_query_runs(orchestrator: Orchestrator, unique) -> None:
    """1.5 MB of text: over a payload once in the context twice, fine compressed."""
    agent = Agent(
        name=unique("reader"),
        model=ScriptedModel(lambda r: reply(f"read {len(r.messages[-1]['content'])} chars")),
    )
    orchestrator.register_runner(agent=agent, agent_worker_config=QUICK)
    await orchestrator.start_workers()
    query = prose(1_500_000)
    task = await orchestrator.enqueue_task(
        agent=agent, owner_id=unique("owner"), payload={"query": query}
    )
    assert await task.result() == f"read {len(query)} chars"


def growing_agent(name: str, chunk: str, turns: int) -> Agent:
    def grow(part: int) -> str:
        """Return one more part of a long document."""
        return chunk[part:] + chunk[:part]

    def script(request: ModelRequest) -> Reply:
        if request.turn + 1 >= turns:
            return reply(f"done after {request.turn} parts")
        return call_tool("grow", part=request.turn)

    return Agent(name=name, tools=[grow], model=ScriptedModel(script))


async def test_a_context_growing_300kb_a_turn_keeps_going(
    orchestrator: Orchestrator, unique
) -> None:
    agent = growing_agent(unique("grower"), prose(300_000, seed=1), turns=12)
    orchestrator.register_runner(agent=agent, agent_worker_config=QUICK)
    await orchestrator.start_workers()
    task = await orchestrator.enqueue_task(agent=agent, owner_id=unique("owner"), payload={})
    assert await task.result() == "done after 11 parts"  # 3.3 MB of context, uncompressed


async def test_a_state_past_the_limit_fails_clearly_and_keeps_its_last_context(
    orchestrator: Orchestrator, unique
) -> None:
    agent = growing_agent(unique("bloater"), noise(300_000), turns=20)
    orchestrator.register_runner(agent=agent, agent_worker_config=QUICK)
    await orchestrator.start_workers()
    task = await orchestrator.enqueue_task(agent=agent, owner_id=unique("owner"), payload={})
    try:
        await task.result()
    except TaskFailedError as err:
        assert err.error is not None
        assert err.error.startswith("PayloadTooLargeError: the task's state grew to")
        assert "2,031,616-byte limit of one Temporal payload" in err.error
    else:
        raise AssertionError("the task should have failed")
    data = await orchestrator.get_task_data(task.id)
    assert data is not None and data["status"] == "failed"
    tool_results = [m for m in data["context"]["messages"] if m["role"] == "tool"]
    assert 4 <= len(tool_results) <= 10  # the last turn that fitted: ~225 KB compressed each
    assert data["context"]["turn"] == len(tool_results)
