"""Join policies of forking tools: the parent resumes once its policy is met, the rest are
cancelled, and each cancelled child announces ``run_cancelled`` exactly once."""

from __future__ import annotations

import asyncio

from factorial import Agent, AgentWorkerConfig, ExecutionContext, Orchestrator, Quorum, forking_tool
from factorial._policies import Join
from factorial.models import ModelRequest
from factorial.testing import Reply, ScriptedModel, call_tool, reply
from factorial.workflows._policy import JOIN_PATCH
from tests.conftest import BOTH_TURN_MODES
from tests.integration.test_replay import patch_ids, replay
from tests.ledger import EventLedger

pytestmark = BOTH_TURN_MODES

QUICK = AgentWorkerConfig(initial_backoff=0.1, max_backoff=0.2, heartbeat_timeout=5)
JOINED = "cancelled: the forking tool's join policy was met"
TIMED_OUT = "cancelled: the forking tool's timeout passed"


def helper_script(request: ModelRequest) -> Reply:
    """``fast`` answers at once; ``slow`` would take two minutes."""
    query = next(m for m in request.messages if m["role"] == "user")["content"]
    if query == "slow":
        return Reply(content="too late", delay=120)
    return reply(f"ok {query}")


async def fork_and_join(
    orchestrator: Orchestrator, unique, queries: list[str], join: Join, timeout: float = 600
) -> tuple[list[str], list[str], EventLedger, str]:
    """Run a parent whose forking tool spawns one child per query; its output lines."""
    helper = Agent(name=unique("helper"), model=ScriptedModel(helper_script))

    @forking_tool(timeout=timeout, join=join)
    async def delegate(execution_ctx: ExecutionContext) -> list[str]:
        """Delegate the queries."""
        batch = await execution_ctx.spawn_child_tasks(helper, [{"query": q} for q in queries])
        return batch.task_ids

    parent = Agent(
        name=unique("parent"),
        tools=[delegate],
        model=ScriptedModel(
            lambda r: call_tool("delegate") if r.turn == 0 else reply(r.messages[-1]["content"])
        ),
    )
    for agent in (parent, helper):
        orchestrator.register_runner(agent=agent, agent_worker_config=QUICK)
    await orchestrator.start_workers()
    owner = unique("owner")
    ledger = EventLedger(orchestrator, owner)
    await ledger.__aenter__()
    task = await orchestrator.enqueue_task(agent=parent, owner_id=owner, payload={})
    output = await asyncio.wait_for(task.result(), 90)
    batch_id = f"{task.id}-t0-call00-0"
    children = [f"{batch_id}-{i}" for i in range(len(queries))]
    await ledger.wait_for_tasks([task.id, *children])
    await ledger.settle(1.0)
    await ledger.stop()
    return output.splitlines()[1:-1], children, ledger, task.id


async def test_join_first_resumes_after_the_first_child(orchestrator: Orchestrator, unique) -> None:
    lines, children, ledger, parent = await fork_and_join(
        orchestrator, unique, ["fast", "slow", "slow"], "first"
    )

    assert lines[0] == f'<sub_task_result sub_task_id="{children[0]}">ok fast</sub_task_result>'
    for line, child in zip(lines[1:], children[1:], strict=True):
        assert line.startswith(f'<sub_task_error sub_task_id="{child}">{JOINED}'), line
    expected = {parent: "completed", children[0]: "completed"}
    expected |= {child: "cancelled" for child in children[1:]}
    ledger.assert_exactly_once(
        [parent, *children], batch_ids=[f"{parent}-t0-call00-0"], expected=expected
    )
    for child in children[1:]:  # announced, with the reason
        assert ledger.ending(child)["reason"].startswith("the forking tool's join policy")
    [ended] = ledger.of_type("batch_completed")
    assert ended["outcomes"] == {"completed": 1, "failed": 0, "cancelled": 2}
    batch = await orchestrator.get_batch(f"{parent}-t0-call00-0")
    assert batch.metadata.status == "completed" and batch.metadata.cancelled == 2
    client = await orchestrator.client()
    for workflow_id in (parent, batch.id):  # the join's histories replay on this code
        await replay(await client.get_workflow_handle(workflow_id).fetch_history())
    history = await client.get_workflow_handle(batch.id).fetch_history()
    assert JOIN_PATCH in patch_ids(history)


async def test_quorum_of_two_out_of_three(orchestrator: Orchestrator, unique) -> None:
    lines, children, ledger, parent = await fork_and_join(
        orchestrator, unique, ["fast", "slow", "fast"], Quorum(2)
    )

    assert lines[0].endswith(">ok fast</sub_task_result>")
    assert lines[1].startswith(f'<sub_task_error sub_task_id="{children[1]}">{JOINED} (2 ')
    assert lines[2].endswith(">ok fast</sub_task_result>")
    expected = {parent: "completed", children[1]: "cancelled"}
    expected |= {children[0]: "completed", children[2]: "completed"}
    ledger.assert_exactly_once([parent, *children], expected=expected)


async def test_timeout_resumes_with_what_it_has(orchestrator: Orchestrator, unique) -> None:
    """The quorum is never met: the timeout resumes the parent with the partial results."""
    lines, children, ledger, parent = await fork_and_join(
        orchestrator, unique, ["fast", "slow", "slow"], Quorum(2), timeout=15
    )

    assert lines[0].endswith(">ok fast</sub_task_result>")
    for line, child in zip(lines[1:], children[1:], strict=True):
        assert line == f'<sub_task_error sub_task_id="{child}">{TIMED_OUT}</sub_task_error>'
    expected = {parent: "completed", children[0]: "completed"}
    expected |= {child: "cancelled" for child in children[1:]}
    ledger.assert_exactly_once([parent, *children], expected=expected)
    for child in children[1:]:
        assert ledger.ending(child)["reason"] == "the forking tool's timeout passed"
