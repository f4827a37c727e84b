"""The agent features across continue-as-new: a task that starts a fresh run at every turn
boundary (``AgentWorkerConfig(continue_as_new_bytes=1024)``) still streams its answers,
moves to its fallback model on each retried turn, publishes its custom progress, and joins
its sub-agents, each event exactly once. Both turn modes.

Budgets, idempotent enqueue and resuming across continue-as-new are in ``test_budgets`` and
``test_resume``.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Callable
from typing import Any

from factorial import (
    Agent,
    AgentWorkerConfig,
    BaseAgent,
    ExecutionContext,
    Orchestrator,
    fallback_models,
    forking_tool,
    publish_progress,
)
from factorial.events import COMPLETION_CHUNK
from factorial.models import ModelRequest, openai_compatible
from factorial.testing import Fail, Reply, ScriptedModel, call_tool, reply
from tests.conftest import BOTH_TURN_MODES
from tests.integration.test_join_policies import JOINED, helper_script
from tests.integration.test_openai_worker import SequenceServer, lookup
from tests.ledger import EventLedger
from tests.unit.test_openai_http import Canned, running
from tests.unit.test_openai_stream import text_chunks, tool_call_chunks

pytestmark = BOTH_TURN_MODES

#: A fresh run after every turn (the smallest threshold), and quick retries.
EVERY_TURN = AgentWorkerConfig(
    continue_as_new_bytes=1024, initial_backoff=0.1, max_backoff=0.2, heartbeat_timeout=5
)
#: Sub-agents run regular turns, so a cancelled slow one stops at once in either mode.
HELPER = AgentWorkerConfig(turn_execution="activity", heartbeat_timeout=5)


async def run_task(
    orchestrator: Orchestrator,
    owner: str,
    agent: BaseAgent[Any],
    helpers: tuple[BaseAgent[Any], ...] = (),
    also_ended: Callable[[str], list[str]] = lambda task_id: [],
) -> tuple[Any, EventLedger, str]:
    """Run ``agent`` (continuing as new at every turn) to its end; its output and events.

    ``also_ended(task_id)`` names the other tasks (sub-agents) whose ends to wait for.
    """
    orchestrator.register_runner(agent=agent, agent_worker_config=EVERY_TURN)
    for helper in helpers:
        orchestrator.register_runner(agent=helper, agent_worker_config=HELPER)
    await orchestrator.start_workers()
    async with EventLedger(orchestrator, owner) as ledger:
        task = await orchestrator.enqueue_task(agent=agent, owner_id=owner, payload={"query": "go"})
        output = await asyncio.wait_for(task.result(), 60)
        await ledger.wait_for_tasks([task.id, *also_ended(task.id)])
        await ledger.settle(0.5)  # a duplicate would arrive with the rest
    return output, ledger, task.id


async def runs_of(orchestrator: Orchestrator, task_id: str) -> int:
    """How many runs the task had: its latest run and those it continued from."""
    client = await orchestrator.client()
    runs, run_id = 0, ""
    while True:
        history = await client.get_workflow_handle(task_id, run_id=run_id or None).fetch_history()
        runs += 1
        started = history.events[0].workflow_execution_started_event_attributes
        run_id = started.continued_execution_run_id
        if not run_id:
            return runs


PIECES = [f" word{i}" for i in range(30)]
ANSWER = "".join(PIECES)
INTROS = [["Looking", " up", " temporal."], ["And", " once", " more."]]


def streamed_tool_turn(intro: list[str], call_id: str) -> Canned:
    """A streamed answer with some text, then a ``lookup`` call in argument fragments."""
    text = text_chunks(intro, finish_reason=None, usage=False)
    fragments = ['{"term"', ': "temporal"}']
    return Canned(chunks=[*text, *tool_call_chunks([(call_id, "lookup", fragments)])])


async def test_a_streamed_task_across_continue_as_new(
    orchestrator: Orchestrator, unique: Callable[[str], str]
) -> None:
    srv = SequenceServer(
        [
            streamed_tool_turn(INTROS[0], "call_1"),
            streamed_tool_turn(INTROS[1], "call_2"),
            Canned(chunks=text_chunks(PIECES), chunk_delay=0.005),
        ]
    )
    with running(srv):
        agent = Agent(
            name=unique("can_stream"),
            tools=[lookup],
            model=openai_compatible("local-model", base_url=srv.base_url),
            stream=True,
        )
        output, ledger, task_id = await run_task(orchestrator, unique("owner"), agent)

    assert output == ANSWER
    assert await runs_of(orchestrator, task_id) == 3  # a fresh run after each tool turn
    ledger.assert_exactly_once([task_id], expected="completed")
    assert len(ledger.of_type("run_started")) == 1
    assert all(request["stream"] is True for request in srv.requests)
    tool_messages = [m for m in srv.requests[2]["messages"] if m["role"] == "tool"]
    assert [m["tool_call_id"] for m in tool_messages] == ["call_1", "call_2"]  # carried over
    chunks = ledger.of_type(COMPLETION_CHUNK)
    by_turn: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for chunk in chunks:
        by_turn[chunk["turn"]].append(chunk)
    texts = {turn: "".join(c["data"] for c in cs) for turn, cs in by_turn.items()}
    assert texts == {0: "".join(INTROS[0]), 1: "".join(INTROS[1]), 2: ANSWER}
    for turn_chunks in by_turn.values():
        assert [c["index"] for c in turn_chunks] == list(range(len(turn_chunks)))
        assert {(c["attempt"], c["task_id"]) for c in turn_chunks} == {(1, task_id)}
    assert len(by_turn[2]) < len(PIECES)  # group-committed, never one event per delta
    types = [e["event_type"] for e in ledger.events]
    assert max(i for i, t in enumerate(types) if t == COMPLETION_CHUNK) < types.index(
        "agent_output"
    )


@publish_progress
def note(step: int) -> str:
    """Note a step."""
    return f"noted {step}"


async def test_fallback_models_and_custom_progress_across_continue_as_new(
    orchestrator: Orchestrator, unique: Callable[[str], str]
) -> None:
    # The primary fails every turn's first attempt; each retried turn moves to the secondary,
    # whose tool publishes its own progress.
    primary = ScriptedModel(lambda _: Fail(status_code=503), name="primary")

    def secondary_script(request: ModelRequest) -> Reply:
        return call_tool("note", step=request.turn) if request.turn < 2 else reply("noted all")

    secondary = ScriptedModel(secondary_script, name="secondary")
    agent = Agent(
        name=unique("can_fallback"), tools=[note], model=fallback_models(primary, secondary)
    )
    output, ledger, task_id = await run_task(orchestrator, unique("owner"), agent)

    assert output == "noted all"
    assert await runs_of(orchestrator, task_id) == 3
    ledger.assert_exactly_once([task_id], expected="completed")
    started = ledger.of_type("progress_update_completion_started")
    assert [e["data"]["model"] for e in started] == ["primary", "secondary"] * 3
    completed = ledger.of_type("progress_update_completion_completed")
    assert [e["data"]["model"] for e in completed] == ["secondary"] * 3
    assert [e["attempt"] for e in ledger.of_type("task_retried")] == [2, 2, 2]
    custom = [e for e in ledger.events if e["event_type"].startswith("progress_update_note_")]
    assert [(e["event_type"], e.get("data")) for e in custom] == [
        ("progress_update_note_started", None),
        ("progress_update_note_completed", "noted 0"),
        ("progress_update_note_started", None),
        ("progress_update_note_completed", "noted 1"),
    ]
    assert {e["task_id"] for e in custom} == {task_id}


def sub_batch_of(task_id: str) -> str:
    """The sub-agent batch of the task's first forking call."""
    return f"{task_id}-t0-call00-0"


def children_of(task_id: str) -> list[str]:
    """The two sub-agents of the task's first forking call."""
    return [f"{sub_batch_of(task_id)}-{i}" for i in range(2)]


async def test_a_join_policy_in_a_task_that_continues_as_new(
    orchestrator: Orchestrator, unique: Callable[[str], str]
) -> None:
    helper = Agent(name=unique("can_helper"), model=ScriptedModel(helper_script))

    @forking_tool(timeout=120, join="first")
    async def ask_both(execution_ctx: ExecutionContext) -> list[str]:
        """Ask a fast and a slow helper; the first answer will do."""
        batch = await execution_ctx.spawn_child_tasks(
            helper, [{"query": "fast"}, {"query": "slow"}]
        )
        return batch.task_ids

    parent = Agent(
        name=unique("can_joiner"),
        tools=[ask_both],
        model=ScriptedModel(
            lambda r: call_tool("ask_both") if r.turn == 0 else reply(r.messages[-1]["content"])
        ),
    )
    output, ledger, task_id = await run_task(
        orchestrator, unique("owner"), parent, helpers=(helper,), also_ended=children_of
    )

    fast, slow = children_of(task_id)
    lines = output.splitlines()[1:-1]
    assert lines[0] == f'<sub_task_result sub_task_id="{fast}">ok fast</sub_task_result>'
    assert lines[1].startswith(f'<sub_task_error sub_task_id="{slow}">{JOINED}'), lines
    assert await runs_of(orchestrator, task_id) == 2  # continued as new after the join
    ledger.assert_exactly_once(
        [task_id, fast, slow],
        batch_ids=[sub_batch_of(task_id)],
        expected={task_id: "completed", fast: "completed", slow: "cancelled"},
    )
    cancelled = ledger.ending(slow)
    assert cancelled is not None
    assert cancelled["reason"].startswith("the forking tool's join policy was met")
    [parked] = ledger.of_type("task_pending_child_task_results")
    assert parked["child_task_ids"] == [fast, slow]
    [ended] = ledger.of_type("batch_completed")
    assert ended["outcomes"] == {"completed": 1, "failed": 0, "cancelled": 1}
