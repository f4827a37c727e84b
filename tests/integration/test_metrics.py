"""Prometheus metrics: a worker serves Temporal's SDK metrics and Factorial's own, by agent.

A batch runs with a tool that works, a tool that raises, a model call that fails once (a
retried turn) and a deferred tool that holds one task open, so the endpoint is scraped while
the batch runs and again once it has ended.
"""

from __future__ import annotations

import asyncio
import json
import re
import signal
import socket
import subprocess
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from factorial import (
    Agent,
    AgentWorkerConfig,
    Orchestrator,
    TaskStatus,
    TokenUsage,
    UserError,
    deferred_tool,
)
from factorial import _metrics as m
from factorial._ids import agent_task_queue_name
from factorial.devserver import DevServer, free_port
from factorial.models import ModelClients, ModelRequest, ModelResponse
from factorial.testing import Fail, Reply, ScriptedModel, call_tool, reply
from tests.conftest import collect_events, has_event
from tests.integration.test_cli import FACTORIAL, assert_one_error_line, cli_env, read_line, run_cli
from tests.prometheus import Sample, scrape, total

QUICK = AgentWorkerConfig(initial_backoff=0.1, max_backoff=0.2, heartbeat_timeout=5)
DASHBOARD = Path(__file__).resolve().parents[2] / "deploy/grafana/dashboards/factorial.json"
USAGE = {"prompt_tokens": 10, "completion_tokens": 4}


class CountingModel(ScriptedModel):
    """A scripted model that reports token usage on every answer."""

    async def complete(self, request: ModelRequest, clients: ModelClients) -> ModelResponse:
        response = await super().complete(request, clients)
        return response.model_copy(update={"usage": TokenUsage(**USAGE)})


def lookup(topic: str) -> str:
    """Look a topic up."""
    return f"notes on {topic}"


def broken() -> str:
    """Always fails."""
    raise RuntimeError("the index is down")


@deferred_tool(timeout=120)
def approve() -> str:
    """Ask a human to approve."""
    return "asked"


def script(request: ModelRequest) -> Reply | Fail:
    """'work' tasks: two tools (one raises), then a 503 once, then done; 'wait' tasks: approve."""
    query = request.messages[0]["content"]
    if query == "wait":
        return call_tool("approve") if request.turn == 0 else reply("approved")
    if request.turn == 0:
        calls = call_tool("lookup", topic="temporal").tool_calls + call_tool("broken").tool_calls
        return Reply(tool_calls=calls)
    return Fail(status_code=503, times=1, then=reply("done"))


@pytest.fixture
async def metered(temporal_server: DevServer) -> AsyncIterator[Orchestrator]:
    orch = Orchestrator(
        temporal_address=temporal_server.address, metrics_address=f"127.0.0.1:{free_port()}"
    )
    try:
        yield orch
    finally:
        await orch.close()


async def wait_for(check: Callable[[], Awaitable[bool]], timeout: float = 60.0) -> None:
    async def poll() -> None:
        while not await check():
            await asyncio.sleep(0.2)

    await asyncio.wait_for(poll(), timeout)


@pytest.mark.parametrize("turn_execution", ["activity", "local"])
async def test_a_batch_moves_the_counters(
    metered: Orchestrator, unique, turn_execution: str
) -> None:
    agent = Agent(
        name=unique("metered"),
        model=CountingModel(script),
        tools=[lookup, broken, approve],
    )
    config = QUICK.model_copy(update={"turn_execution": turn_execution})
    metered.register_runner(agent=agent, agent_worker_config=config)
    await metered.start_workers()
    address = str(metered.metrics_address)
    name = agent.name
    before = await scrape(address)
    assert total(before, m.TASKS, agent=name) == 0

    payloads = [{"query": "work"}, {"query": "work"}, {"query": "wait"}]
    batch = await metered.enqueue_batch(agent=agent, owner_id=unique("owner"), payloads=payloads)
    waiting = batch.task_ids[2]
    samples: list[Sample] = []

    queue = agent_task_queue_name(name)

    async def tasks_completed(count: int) -> bool:
        samples[:] = await scrape(address)
        # The workflow records its outcome just before the SDK counts it completed.
        return (
            total(samples, m.TASKS, agent=name, outcome="completed") >= count
            and total(samples, "temporal_workflow_completed", task_queue=queue) >= count
        )

    # During the batch: the 'work' tasks have ended, the 'wait' task waits for its approval.
    await wait_for(lambda: tasks_completed(2))
    assert await metered.get_task_status(waiting) == TaskStatus.PENDING_TOOL_RESULTS
    assert (await metered.get_batch(batch.id)).metadata.status != "completed"
    assert total(samples, "temporal_workflow_completed", task_queue=queue) == 2
    assert total(samples, m.TASKS, agent=name, outcome="completed") == 2
    assert total(samples, m.TOOL_CALLS, agent=name, tool="broken") == 2
    assert total(samples, m.TOOL_ERRORS, agent=name, tool="broken") == 2
    assert total(samples, m.TOOL_ERRORS, agent=name, tool="lookup") == 0
    assert total(samples, m.TURN_RETRIES, agent=name) == 2
    assert total(samples, m.TURNS, agent=name, outcome="failed") == 2

    assert await metered.complete_deferred_tool(waiting, "call_0_0", "yes") is True

    async def batch_completed() -> bool:
        return (await metered.get_batch(batch.id)).metadata.status == "completed"

    await wait_for(batch_completed)

    await wait_for(lambda: tasks_completed(3))
    after = samples
    assert total(after, "temporal_workflow_completed", task_queue=queue) == 3
    assert total(after, m.TASKS, agent=name, outcome="completed") == 3
    assert total(after, m.TASKS, agent=name, outcome="failed") == 0
    # 2 'work' tasks: 2 turns and one failed attempt each; the 'wait' task: 2 turns.
    assert total(after, m.TURNS, agent=name, outcome="succeeded") == 6
    assert total(after, m.TURNS, agent=name, outcome="failed") == 2
    assert total(after, m.TURN_RETRIES, agent=name) == 2
    assert total(after, f"{m.TURN_DURATION}_count", agent=name) == 8
    assert total(after, f"{m.MODEL_LATENCY}_count", agent=name, outcome="succeeded") == 6
    assert total(after, f"{m.MODEL_LATENCY}_count", agent=name, outcome="failed") == 2
    assert total(after, m.INPUT_TOKENS, agent=name) == 6 * USAGE["prompt_tokens"]
    assert total(after, m.OUTPUT_TOKENS, agent=name) == 6 * USAGE["completion_tokens"]
    assert total(after, m.TOOL_CALLS, agent=name, tool="lookup") == 2
    assert total(after, m.TOOL_CALLS, agent=name, tool="approve") == 1
    assert total(after, m.TOOL_ERRORS, agent=name) == 2

    # Every series the Grafana dashboard queries is one this worker serves.
    served = {s.name for s in after}
    assert dashboard_metric_names() <= served, dashboard_metric_names() - served


async def test_failed_and_cancelled_tasks_and_turns(metered: Orchestrator, unique) -> None:
    """A 400 fails its task for good; cancelling a task stops its running model call."""
    failing = Agent(name=unique("refused"), model=ScriptedModel([Fail(status_code=400)]))
    slow = Agent(name=unique("slow"), model=ScriptedModel([reply("late", delay=120)]))
    config = QUICK.model_copy(update={"turn_execution": "activity"})
    for agent in (failing, slow):
        metered.register_runner(agent=agent, agent_worker_config=config)
    await metered.start_workers()
    address = str(metered.metrics_address)
    owner = unique("owner")
    await metered.enqueue_task(agent=failing, owner_id=owner, payload={})
    task = await metered.enqueue_task(agent=slow, owner_id=owner, payload={})
    await collect_events(
        metered, owner, has_event("progress_update_completion_started"), task_ids=[task.id]
    )
    await metered.cancel_task(task.id)
    samples: list[Sample] = []

    async def both_ended() -> bool:
        samples[:] = await scrape(address)
        return (
            total(samples, m.TASKS, agent=failing.name, outcome="failed") == 1
            and total(samples, m.TASKS, agent=slow.name, outcome="cancelled") == 1
            and total(samples, m.TURNS, agent=slow.name, outcome="cancelled") == 1
        )

    await wait_for(both_ended)
    assert total(samples, m.TURNS, agent=failing.name, outcome="failed") == 1
    assert total(samples, m.TURN_RETRIES, agent=failing.name) == 0
    assert total(samples, f"{m.MODEL_LATENCY}_count", agent=failing.name, outcome="failed") == 1
    assert total(samples, f"{m.MODEL_LATENCY}_count", agent=slow.name, outcome="cancelled") == 1
    assert total(samples, m.TASKS, agent=slow.name, outcome="completed") == 0


def dashboard_metric_names() -> set[str]:
    """The metric names the dashboard's PromQL expressions read."""
    panels: list[dict[str, Any]] = json.loads(DASHBOARD.read_text())["panels"]
    exprs = [t["expr"] for p in panels for t in p.get("targets", [])]
    assert exprs, "the dashboard has no queries"
    return {n for e in exprs for n in re.findall(r"\b((?:temporal|factorial)_\w+)", e)}


def test_a_malformed_metrics_address_is_refused() -> None:
    with pytest.raises(UserError, match="host:port"):
        Orchestrator(metrics_address="9464")


async def test_a_metrics_address_in_use_is_a_user_error(temporal_server: DevServer) -> None:
    address = f"127.0.0.1:{free_port()}"
    first = Orchestrator(temporal_address=temporal_server.address, metrics_address=address)
    second = Orchestrator(temporal_address=temporal_server.address, metrics_address=address)
    try:
        await first.client()
        with pytest.raises(UserError, match=f"cannot serve metrics at {address}"):
            await second.client()
    finally:
        await first.close()
        await second.close()


async def test_metrics_need_the_orchestrators_own_connection(metered: Orchestrator) -> None:
    client = await metered.client()
    with pytest.raises(UserError, match="own connection"):
        Orchestrator(client=client, metrics_address="127.0.0.1:9464")


async def test_the_worker_command_serves_metrics(
    temporal_server: DevServer, unique, tmp_path: Path
) -> None:
    """``factorial worker --metrics-port`` (host from ``FACTORIAL_METRICS_HOST``, as compose sets
    it): Temporal's worker metrics at once, a task's metrics once it ran there."""
    name = unique("cli_metered")
    (tmp_path / "metered_app.py").write_text(WORKER_MODULE.format(name=name))
    address = f"127.0.0.1:{free_port()}"
    env = dict(cli_env(), FACTORIAL_METRICS_HOST="127.0.0.1")
    worker = await asyncio.create_subprocess_exec(
        FACTORIAL,
        "worker",
        "metered_app:orchestrator",
        "--address",
        temporal_server.address,
        "--metrics-port",
        address.rpartition(":")[2],
        cwd=tmp_path,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    orchestrator = Orchestrator(temporal_address=temporal_server.address)
    try:
        assert worker.stdout is not None
        assert "Worker running" in await read_line(worker.stdout)
        queue = agent_task_queue_name(name)

        async def worker_started() -> bool:
            return total(await scrape(address), "temporal_worker_start", task_queue=queue) == 1

        await wait_for(worker_started)

        # The same agent here only enqueues; its turn runs in the worker process.
        agent = Agent(name=name, model=ScriptedModel([reply("not from the test process")]))
        orchestrator.register_runner(agent=agent)
        task = await orchestrator.enqueue_task(agent=agent, owner_id=unique("owner"), payload={})
        assert await asyncio.wait_for(task.result(), 60) == "hello from the worker"

        async def counted() -> bool:
            return total(await scrape(address), m.TASKS, agent=name, outcome="completed") == 1

        await wait_for(counted)
        worker.send_signal(signal.SIGINT)
        assert await asyncio.wait_for(worker.wait(), 30) == 0
    finally:
        await orchestrator.close()
        if worker.returncode is None:
            worker.kill()
            await worker.wait()


def test_the_worker_command_reports_a_metrics_port_in_use(
    temporal_server: DevServer, tmp_path: Path
) -> None:
    (tmp_path / "metered_app.py").write_text(WORKER_MODULE.format(name="busy_port"))
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        result = run_cli(
            "worker",
            "metered_app:orchestrator",
            "--address",
            temporal_server.address,
            "--metrics-port",
            port,
            cwd=tmp_path,
        )
    assert f"cannot serve metrics at 127.0.0.1:{port}" in assert_one_error_line(result)


WORKER_MODULE = """
from factorial import Agent, Orchestrator
from factorial.testing import ScriptedModel, reply

agent = Agent(name={name!r}, model=ScriptedModel([reply("hello from the worker")]))
orchestrator = Orchestrator()
orchestrator.register_runner(agent=agent)
"""
