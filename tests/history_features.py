"""The replay scenarios of the agent features (issue 12), for ``tests.record_histories``.

Each scenario runs one feature whose workflow commands are behind a ``workflow.patched``
(``GUARDS`` names the patches its history must record) or that changes what a task's
history holds (a retried turn, a streamed one). Task scenarios run in both turn modes;
batch scenarios (and the join's sub-batch) only with regular turns, as a batch's own
history does not depend on its tasks' mode.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from factorial import (
    Agent,
    AgentContext,
    AgentWorkerConfig,
    Budget,
    BudgetExceeded,
    ExecutionContext,
    FailurePolicy,
    Orchestrator,
    TaskFailedError,
    TokenUsage,
    fallback_models,
    forking_tool,
)
from factorial.models import ModelRequest
from factorial.testing import Fail, Reply, ScriptedModel, call_tool, reply

TASK_BUDGET = "agent_task_budget"
TASK_FAILED = "agent_task_failed"
TASK_FALLBACK = "agent_task_fallback"
TASK_STREAMING = "agent_task_streaming"
TASK_JOIN = "agent_task_join"
JOIN_HELPER = "join_helper"  # an agent only, not a recorded scenario
BATCH_JOIN = "batch_join"
BATCH_BUDGET = "batch_budget"
BATCH_FAILURE_POLICY = "batch_failure_policy"
FEATURE_TASK_SCENARIOS = (TASK_BUDGET, TASK_FAILED, TASK_FALLBACK, TASK_STREAMING, TASK_JOIN)
#: Every history the feature scenarios record (the join's parent records its sub-batch too).
FEATURE_SCENARIOS = (*FEATURE_TASK_SCENARIOS, BATCH_JOIN, BATCH_BUDGET, BATCH_FAILURE_POLICY)
#: The scenarios whose workflow ends failed.
FAILED_SCENARIOS = frozenset({TASK_BUDGET, TASK_FAILED})
#: The ``workflow.patched`` ids each history must record. Fallback models and streaming
#: change no workflow command (both live in the turn activity): their histories guard a
#: retried turn and a streamed one.
GUARDS: dict[str, frozenset[str]] = {
    TASK_BUDGET: frozenset({"task-budget", "failure-carries-context"}),
    TASK_FAILED: frozenset({"failure-carries-context"}),
    TASK_FALLBACK: frozenset(),
    TASK_STREAMING: frozenset(),
    TASK_JOIN: frozenset(
        {"sub-agents-in-agent-batch-workflow", "task-pending-child-task-results-event"}
    ),
    BATCH_JOIN: frozenset({"batch-join-policy"}),
    BATCH_BUDGET: frozenset({"batch-budget"}),
    BATCH_FAILURE_POLICY: frozenset({"batch-failure-policy"}),
}
#: Worker settings besides the turn mode: quick retries, and the join's children always
#: run regular turns (a slow local turn would hold its workflow task past the join).
CONFIGS: dict[str, dict[str, Any]] = {
    TASK_FALLBACK: {"initial_backoff": 0.1, "max_backoff": 0.2},
    JOIN_HELPER: {"turn_execution": "activity", "heartbeat_timeout": 5},
    BATCH_FAILURE_POLICY: {"heartbeat_timeout": 5},
}
#: Feature scenarios the fresh recordings of ``test_replay`` leave out (the slowest: each
#: waits for a cancellation), as their own tests already replay fresh histories of them
#: (``test_join_policies``, ``test_budgets``, ``test_failure_policy``).
NOT_RECORDED_FRESH = frozenset({TASK_JOIN, BATCH_JOIN, BATCH_BUDGET, BATCH_FAILURE_POLICY})
STREAMED = "streamed words arrive one by one"
_WAIT = 60.0


def noop() -> str:
    """Do nothing."""
    return "ok"


def _looping(tokens: int) -> ScriptedModel:
    """A model that calls ``noop`` on every turn, using ``tokens`` tokens each."""
    usage = TokenUsage(prompt_tokens=tokens, completion_tokens=0)
    return ScriptedModel(lambda _: Reply(tool_calls=[{"name": "noop"}], usage=usage))


def _query(request: ModelRequest) -> str:
    return str(next(m for m in request.messages if m["role"] == "user")["content"])


def _fail_or_slow(request: ModelRequest) -> Reply | Fail:
    """``fail`` fails for good (HTTP 400); ``slow`` would take two minutes; others answer."""
    if _query(request) == "fail":
        return Fail(status_code=400, times=99, message="bad request")
    if _query(request) == "slow":
        return Reply(content="too late", delay=120)
    return reply(f"ok {_query(request)}")


def _join_agents(prefix: str) -> tuple[Agent, Agent]:
    """A parent whose forking tool resumes after the first of two children (``join="first"``)."""
    helper = Agent(name=f"{prefix}_join_helper", model=ScriptedModel(_fail_or_slow))

    @forking_tool(timeout=120, join="first")
    async def ask_both(execution_ctx: ExecutionContext) -> list[str]:
        """Ask a fast and a slow helper; the first answer will do."""
        queries = [{"query": "fast"}, {"query": "slow"}]
        batch = await execution_ctx.spawn_child_tasks(helper, queries)
        return batch.task_ids

    parent = Agent(
        name=f"{prefix}_join",
        tools=[ask_both],
        model=ScriptedModel(
            lambda r: call_tool("ask_both") if r.turn == 0 else reply(r.messages[-1]["content"])
        ),
    )
    return parent, helper


def build_feature_agents(prefix: str) -> dict[str, Agent]:
    """The scripted agent of each feature scenario, named ``{prefix}_{...}``."""
    join, helper = _join_agents(prefix)
    primary = ScriptedModel([Fail(status_code=503, times=1)], name="primary")
    secondary = ScriptedModel([reply("from secondary")], name="secondary")
    return {
        TASK_BUDGET: Agent(
            name=f"{prefix}_budget", tools=[noop], model=_looping(10), budget=Budget(turns=2)
        ),
        TASK_FAILED: Agent(name=f"{prefix}_failed", model=ScriptedModel(_fail_or_slow)),
        TASK_FALLBACK: Agent(name=f"{prefix}_fallback", model=fallback_models(primary, secondary)),
        TASK_STREAMING: Agent(
            name=f"{prefix}_streaming",
            model=ScriptedModel([reply(STREAMED, chunk_delay=0.01)]),
            stream=True,
        ),
        TASK_JOIN: join,
        JOIN_HELPER: helper,
        BATCH_BUDGET: Agent(name=f"{prefix}_batch_budget", tools=[noop], model=_looping(100)),
        BATCH_FAILURE_POLICY: Agent(
            name=f"{prefix}_batch_failure_policy", model=ScriptedModel(_fail_or_slow)
        ),
    }


def config_of(scenario: str, turn_execution: str) -> AgentWorkerConfig:
    """The worker config of a scenario's agent (its ``CONFIGS`` over the turn mode)."""
    return AgentWorkerConfig.model_validate(
        {"turn_execution": turn_execution, **CONFIGS.get(scenario, {})}
    )


async def _start(orch: Orchestrator, agent: Agent, task_id: str, owner: str, query: str) -> None:
    task = agent.create_task(owner_id=owner, payload=AgentContext(query=query))
    await orch.enqueue_task(agent=agent, task=task.model_copy(update={"id": task_id}))


async def _fails(orch: Orchestrator, task_id: str, error: type[Exception], match: str) -> None:
    try:
        await asyncio.wait_for(orch.get_task_result(task_id), _WAIT)
    except error as err:
        assert match in str(err), err
    else:
        raise AssertionError(f"{task_id} did not fail")


async def run_budget(
    orch: Orchestrator, agent: Agent, task_id: str, owner: str, local: bool
) -> dict[str, str]:
    """Two turns of a two-turn budget: the task fails with ``BudgetExceeded``."""
    await _start(orch, agent, task_id, owner, "Loop.")
    await _fails(orch, task_id, BudgetExceeded, "ran 2 turns of a budget of 2")
    return {}


async def run_failed(
    orch: Orchestrator, agent: Agent, task_id: str, owner: str, local: bool
) -> dict[str, str]:
    """The model answers HTTP 400: the task fails, its failure carrying its context."""
    await _start(orch, agent, task_id, owner, "fail")
    await _fails(orch, task_id, TaskFailedError, "bad request")
    return {}


async def run_fallback(
    orch: Orchestrator, agent: Agent, task_id: str, owner: str, local: bool
) -> dict[str, str]:
    """The primary model answers 503; the retried turn answers with the secondary."""
    await _start(orch, agent, task_id, owner, "Hello?")
    result = await asyncio.wait_for(orch.get_task_result(task_id), _WAIT)
    assert result == "from secondary", result
    return {}


async def run_streaming(
    orch: Orchestrator, agent: Agent, task_id: str, owner: str, local: bool
) -> dict[str, str]:
    """A streamed answer (``Agent(stream=True)``)."""
    await _start(orch, agent, task_id, owner, "Stream it.")
    result = await asyncio.wait_for(orch.get_task_result(task_id), _WAIT)
    assert result == STREAMED, result
    return {}


async def run_join(
    orch: Orchestrator, agent: Agent, task_id: str, owner: str, local: bool
) -> dict[str, str]:
    """``join="first"``: the parent resumes after the fast child; the slow one is cancelled."""
    await _start(orch, agent, task_id, owner, "Ask both.")
    output = await asyncio.wait_for(orch.get_task_result(task_id), _WAIT)
    assert "ok fast</sub_task_result>" in output and "join policy was met" in output, output
    return {BATCH_JOIN: f"{task_id}-t0-call00-0"}


async def run_batch_budget(orch: Orchestrator, agent: Agent, owner: str) -> dict[str, str]:
    """Two looping tasks under a 500-token batch budget: the batch stops them, ``failed``."""
    batch = await orch.enqueue_batch(
        agent, owner, [{"query": "a"}, {"query": "b"}], budget=Budget(tokens=500)
    )
    await _batch_ends(orch, batch.id, "BudgetExceeded: used ")
    return {BATCH_BUDGET: batch.id}


async def run_batch_failure_policy(orch: Orchestrator, agent: Agent, owner: str) -> dict[str, str]:
    """``max_failed=0``: the first failure cancels the slow task and fails the batch."""
    batch = await orch.enqueue_batch(
        agent, owner, [{"query": "fail"}, {"query": "slow"}], on_failure=FailurePolicy(max_failed=0)
    )
    await _batch_ends(orch, batch.id, "1 task failed, more than max_failed=0")
    return {BATCH_FAILURE_POLICY: batch.id}


async def _batch_ends(orch: Orchestrator, batch_id: str, reason: str) -> None:
    handle = (await orch.client()).get_workflow_handle(batch_id)
    await asyncio.wait_for(handle.result(), _WAIT)
    batch = await orch.get_batch(batch_id)
    assert batch.metadata.status == "failed", batch
    assert (batch.metadata.reason or "").startswith(reason), batch.metadata.reason


TaskRunner = Callable[[Orchestrator, Agent, str, str, bool], Awaitable[dict[str, str]]]
BatchRunner = Callable[[Orchestrator, Agent, str], Awaitable[dict[str, str]]]
FEATURE_TASK_RUNNERS: dict[str, TaskRunner] = {
    TASK_BUDGET: run_budget,
    TASK_FAILED: run_failed,
    TASK_FALLBACK: run_fallback,
    TASK_STREAMING: run_streaming,
    TASK_JOIN: run_join,
}
FEATURE_BATCH_RUNNERS: dict[str, BatchRunner] = {
    BATCH_BUDGET: run_batch_budget,
    BATCH_FAILURE_POLICY: run_batch_failure_policy,
}
