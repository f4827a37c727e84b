"""``Agent(stream=True)`` against the local OpenAI-compatible server, streaming over real HTTP.

Every turn mode streams the answer as group-committed ``progress_update_completion_chunk``
events (fewer events than deltas, concatenating to the answer) and reassembles streamed tool
calls so the tools run as without streaming. A worker SIGKILLed mid-stream: the turn runs again
on another worker and the task completes once; the killed attempt's chunks may have been
published, and a reader that starts a turn's text afresh on each
``progress_update_completion_started`` ends with exactly the answer.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from factorial import Agent, AgentContext, Orchestrator
from factorial.devserver import DevServer
from factorial.events import COMPLETION_CHUNK
from factorial.models import openai_compatible
from tests.conftest import collect_events, has_event
from tests.integration.stream_worker_app import build_agent, worker_config
from tests.integration.test_openai_worker import SequenceServer, lookup
from tests.integration.test_worker_crash import log_tail, start_worker, stop_process
from tests.ledger import EventLedger
from tests.unit.test_openai_http import Canned, running
from tests.unit.test_openai_stream import text_chunks, tool_call_chunks

PIECES = [f" word{i}" for i in range(60)]
ANSWER = "".join(PIECES)


def answers_by_attempt(events: list[dict[str, Any]]) -> list[str]:
    """Each model call's streamed text, as a UI shows it: reset on every completion start."""
    texts: list[str] = []
    for event in events:
        if event["event_type"] == "progress_update_completion_started":
            texts.append("")
        elif event["event_type"] == COMPLETION_CHUNK:
            texts[-1] += event["data"]
    return texts


@pytest.mark.parametrize("turn_execution", ["activity", "local", "auto"], indirect=True)
async def test_streamed_answer_and_tool_calls(
    orchestrator: Orchestrator, unique: Callable[[str], str]
) -> None:
    fragments = ['{"te', 'rm": "tem', 'poral"}']
    srv = SequenceServer(
        [
            Canned(chunks=tool_call_chunks([("call_1", "lookup", fragments)])),
            Canned(chunks=text_chunks(PIECES), chunk_delay=0.01),
        ]
    )
    with running(srv):
        agent = Agent(
            name=unique("streamer"),
            tools=[lookup],
            model=openai_compatible("local-model", base_url=srv.base_url),
            stream=True,
        )
        orchestrator.register_runner(agent=agent)
        await orchestrator.start_workers()
        owner = unique("owner")
        task = await orchestrator.enqueue_task(
            agent=agent, owner_id=owner, payload={"query": "Temporal?"}
        )
        assert await task.result() == ANSWER
        events = await collect_events(orchestrator, owner, has_event("run_completed"))

    assert all(request["stream"] is True for request in srv.requests)
    assert srv.requests[1]["messages"][-1] == {  # the reassembled tool call ran
        "role": "tool",
        "tool_call_id": "call_1",
        "content": "temporal: a durable execution engine",
    }
    chunks = [e for e in events if e["event_type"] == COMPLETION_CHUNK]
    assert 1 <= len(chunks) < len(PIECES)  # group-committed, never one event per delta
    assert "".join(c["data"] for c in chunks) == ANSWER
    assert {(c["turn"], c["attempt"], c["task_id"]) for c in chunks} == {(1, 1, task.id)}
    assert [c["index"] for c in chunks] == list(range(len(chunks)))
    types = [e["event_type"] for e in events]
    last_chunk = max(i for i, t in enumerate(types) if t == COMPLETION_CHUNK)
    assert last_chunk < types.index("agent_output")
    completed = [e for e in events if e["event_type"] == "progress_update_completion_completed"]
    assert completed[0]["data"]["tool_calls"][0]["arguments"] == "".join(fragments)
    assert completed[-1]["data"]["usage"]["prompt_tokens"] == 20  # include_usage


@pytest.mark.parametrize("turn_execution", ["activity", "local"])
async def test_worker_killed_mid_stream_finishes_once(
    temporal_server: DevServer, unique: Callable[[str], str], tmp_path: Path, turn_execution: str
) -> None:
    pieces = [f" slow{i}" for i in range(40)]
    srv = SequenceServer([Canned(chunks=text_chunks(pieces), chunk_delay=0.1)])  # 4 s a call
    owner = unique("owner")
    processes: list[subprocess.Popen[bytes]] = []
    with running(srv):
        name = unique("stream_crash")
        env = {
            **os.environ,
            "TEMPORAL_ADDRESS": temporal_server.address,
            "STREAM_AGENT_NAME": name,
            "STREAM_TURN_EXECUTION": turn_execution,
            "STREAM_BASE_URL": srv.base_url,
        }
        agent = build_agent(name, srv.base_url)
        orch = Orchestrator(temporal_address=temporal_server.address)
        orch.register_runner(agent=agent, agent_worker_config=worker_config(turn_execution))
        log_a, log_b = tmp_path / "worker_a.log", tmp_path / "worker_b.log"
        try:
            async with EventLedger(orch, owner) as ledger:
                worker_a = start_worker(env, log_a, "tests.integration.stream_worker_app")
                processes.append(worker_a)
                task = await orch.enqueue_task(
                    agent=agent, owner_id=owner, payload=AgentContext(query="Go on.")
                )
                await ledger.wait_until(lambda events: _chunks(events) != [], timeout=45)
                stop_process(worker_a)  # SIGKILL while the answer streams
                assert worker_a.returncode == -9
                killed_text = "".join(c["data"] for c in _chunks(ledger.events))
                assert killed_text and len(killed_text) < len("".join(pieces))

                worker_b = start_worker(env, log_b, "tests.integration.stream_worker_app")
                processes.append(worker_b)
                try:
                    result = await asyncio.wait_for(task.result(), 60)
                except TimeoutError:
                    raise AssertionError(f"worker B did not finish:\n{log_tail(log_b)}") from None
                assert result == "".join(pieces)
                await ledger.wait_for_tasks([task.id])
                await ledger.settle()
        finally:
            for process in processes:
                stop_process(process, kill=False)
            await orch.close()

    ledger.assert_exactly_once([task.id], expected="completed")
    types = [e["event_type"] for e in ledger.events]
    assert types.count("run_completed") == 1 and types.count("agent_output") == 1, types
    texts = answers_by_attempt(ledger.events)
    assert len(texts) == 2, texts  # the killed attempt, and the one that finished
    assert "".join(pieces).startswith(texts[0]) and texts[0].startswith(killed_text)
    assert texts[-1] == "".join(pieces)
    chunks = _chunks(ledger.events)
    assert len(chunks) < 2 * len(pieces)
    attempts = [c["attempt"] for c in chunks]
    assert attempts == sorted(attempts)
    if turn_execution == "activity":  # a retried activity; a local turn starts at 1 again
        assert attempts[0] == 1 and attempts[-1] == 2
    assert len(srv.requests) == 2


def _chunks(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [e for e in events if e["event_type"] == COMPLETION_CHUNK]
