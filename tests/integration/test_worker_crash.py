"""A worker process killed in the middle of a turn: another one finishes the task, once.

Worker process A (``crash_worker_app``) runs turn 0 (a tool call) and starts turn 1, whose
model call takes a few seconds; the test SIGKILLs A during it. A regular turn's heartbeat
times out and Temporal retries it on worker process B; a local turn's workflow task times
out and B runs the workflow task again, with the turn. Either way the task completes, and
subscribers see every terminal event exactly once (``tests.ledger``): one ``agent_output``,
one ``run_completed``, and no gap in the stream's offsets.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import pytest
from temporalio.api.enums.v1 import EventType, PendingActivityState, TimeoutType

from factorial import Agent, AgentContext, AgentWorkerConfig, Orchestrator, Task
from factorial._wire import RUN_TURN_ACTIVITY
from factorial.devserver import DevServer
from tests.integration.crash_worker_app import FINAL_ANSWER, build_agent, worker_config
from tests.ledger import EventLedger

REPO_ROOT = Path(__file__).resolve().parents[2]
CRASH_APP = "tests.integration.crash_worker_app"
T = TypeVar("T")


def start_worker(
    env: dict[str, str], log_path: Path, app: str = CRASH_APP
) -> subprocess.Popen[bytes]:
    """Start a worker process running module ``app``; its output goes to ``log_path``."""
    with open(log_path, "ab") as log:
        return subprocess.Popen(
            [sys.executable, "-m", app],
            cwd=REPO_ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def stop_process(process: subprocess.Popen[bytes], *, kill: bool = True) -> None:
    """SIGKILL (or SIGTERM) one process we started and reap it."""
    if process.poll() is None:
        if kill:
            process.kill()
        else:
            process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)


def log_tail(path: Path, lines: int = 40) -> str:
    if not path.exists():
        return "(no log)"
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


async def wait_for_turn_started(
    orch: Orchestrator, task_id: str, turn: int, worker: subprocess.Popen[bytes], log: Path
) -> None:
    """Poll until the task runs turn ``turn`` and its activity has started on a worker."""
    handle = (await orch.client()).get_workflow_handle(task_id)
    while True:
        assert worker.poll() is None, f"worker A exited early:\n{log_tail(log)}"
        data = await orch.get_task_data(task_id)
        if data is not None and data["status"] == "processing" and data["turn"] == turn:
            description = await handle.describe()
            if any(
                pending.activity_type.name == RUN_TURN_ACTIVITY
                and pending.state == PendingActivityState.PENDING_ACTIVITY_STATE_STARTED
                for pending in description.raw_description.pending_activities
            ):
                return
        await asyncio.sleep(0.05)


async def wait_for_local_turn_started(ledger: EventLedger, worker: subprocess.Popen[bytes]) -> None:
    """Wait until turn 1's model call has begun (its event is flushed within a second)."""
    while sum(e["event_type"] == "progress_update_completion_started" for e in ledger.events) < 2:
        assert worker.poll() is None, "worker A exited early"
        await asyncio.sleep(0.05)


@dataclass
class CrashRun:
    """One worker-crash test's orchestrator, event ledger and worker processes.

    ``crash_run`` makes it with worker process A started; every worker started through it is
    stopped by PID when the test ends, also on failure.
    """

    orch: Orchestrator
    ledger: EventLedger
    agent: Agent
    turn_execution: str
    env: dict[str, str]
    app: str
    log_a: Path
    log_b: Path
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)
    worker_a: subprocess.Popen[bytes] = field(init=False)

    def start_worker(self, log: Path) -> subprocess.Popen[bytes]:
        """Start a worker process of ``app`` logging to ``log``, recorded for cleanup."""
        process = start_worker(self.env, log, self.app)
        self.processes.append(process)
        return process

    async def enqueue(self, payload: AgentContext | dict[str, Any]) -> Task:
        """Enqueue a task of ``agent`` for the ledger's owner."""
        owner = self.ledger.owner_id
        return await self.orch.enqueue_task(agent=self.agent, owner_id=owner, payload=payload)

    async def wait_for_turn_1(self, task_id: str) -> None:
        """Wait (45 s at most) until turn 1's model call runs on worker A."""
        if self.turn_execution == "local":
            started = wait_for_local_turn_started(self.ledger, self.worker_a)
        else:
            started = wait_for_turn_started(self.orch, task_id, 1, self.worker_a, self.log_a)
        await asyncio.wait_for(started, 45)

    def kill_a_start_b(self) -> None:
        """SIGKILL worker A (it is mid-turn) and start worker B in its place."""
        stop_process(self.worker_a)
        assert self.worker_a.returncode == -9
        self.start_worker(self.log_b)

    async def on_worker_b(self, outcome: Awaitable[T], timeout: float) -> T:
        """Await the task's ``outcome`` now that worker B runs it, with B's log on a timeout."""
        try:
            return await asyncio.wait_for(outcome, timeout)
        except TimeoutError:
            raise AssertionError(f"task did not end on worker B:\n{log_tail(self.log_b)}") from None


@asynccontextmanager
async def crash_run(
    temporal_server: DevServer,
    tmp_path: Path,
    agent: Agent,
    turn_execution: str,
    *,
    config: Callable[[str], AgentWorkerConfig] = worker_config,
    app: str = CRASH_APP,
    env_prefix: str = "CRASH",
) -> AsyncIterator[CrashRun]:
    """An Orchestrator with ``agent`` registered, a ledger of its owner, and worker A of ``app``.

    The app reads ``TEMPORAL_ADDRESS``, ``<env_prefix>_AGENT_NAME`` and
    ``<env_prefix>_TURN_EXECUTION``; ``config(turn_execution)`` is its agent's worker config.
    """
    env = {
        **os.environ,
        "TEMPORAL_ADDRESS": temporal_server.address,
        f"{env_prefix}_AGENT_NAME": agent.name,
        f"{env_prefix}_TURN_EXECUTION": turn_execution,
    }
    orch = Orchestrator(temporal_address=temporal_server.address)
    orch.register_runner(agent=agent, agent_worker_config=config(turn_execution))
    ledger = EventLedger(orch, f"{agent.name}_owner")  # the agent's name is unique to the test
    logs = tmp_path / "worker_a.log", tmp_path / "worker_b.log"
    run = CrashRun(orch, ledger, agent, turn_execution, env, app, *logs)
    try:
        async with ledger:
            run.worker_a = run.start_worker(run.log_a)
            yield run
    finally:
        for process in run.processes:
            stop_process(process, kill=False)
        await orch.close()


@pytest.mark.parametrize("turn_execution", ["activity", "local"])
async def test_worker_killed_mid_turn_finishes_once(
    temporal_server: DevServer, unique: Callable[[str], str], tmp_path: Path, turn_execution: str
) -> None:
    agent = build_agent(unique("crash_adder"))
    async with crash_run(temporal_server, tmp_path, agent, turn_execution) as run:
        task = await run.enqueue(AgentContext(query="What is 2 + 3?"))
        await run.wait_for_turn_1(task.id)
        run.kill_a_start_b()  # SIGKILL in the middle of turn 1's model call
        result = await run.on_worker_b(task.result(), 45)
        assert result == FINAL_ANSWER
        await run.ledger.wait_for_tasks([task.id])
        await run.ledger.settle()
        history = await (await run.orch.client()).get_workflow_handle(task.id).fetch_history()
    ledger = run.ledger

    if turn_execution == "local":
        assert_local_turn_ran_again(history.events)
    else:
        assert_regular_turn_retried(history.events)
    ledger.assert_exactly_once([task.id], expected="completed")
    events = ledger.events
    assert all(e["task_id"] == task.id for e in events)
    types = [e["event_type"] for e in events]
    assert types.count("agent_output") == 1, types
    assert types.count("run_completed") == 1, types
    assert "run_failed" not in types and "run_cancelled" not in types, types
    assert types[0] == "run_started", types
    assert types[-2:] == ["agent_output", "run_completed"], types
    output = next(e for e in events if e["event_type"] == "agent_output")
    assert output["data"] == FINAL_ANSWER
    assert output["turn"] == 2
    if turn_execution == "local":
        # A and B both ran turns 0 and 1: local turns of one workflow task are recorded
        # together, when it completes, and A's never completed.
        assert types.count("run_started") == 2, types
        assert types.count("progress_update_run_turn_completed") in (2, 3), types
    else:
        assert types.count("run_started") == 1, types
        # Turn 1 ran twice (the lost attempt may not have flushed its events before the kill).
        assert types.count("progress_update_completion_started") in (2, 3), types
        assert types.count("progress_update_run_turn_completed") == 2, types


def assert_regular_turn_retried(events: Any) -> None:
    """The killed attempt really was lost and retried after its heartbeat timed out."""
    started = [
        e.activity_task_started_event_attributes
        for e in events
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED
    ]
    retried = [s for s in started if s.attempt > 1]
    assert len(retried) == 1, [s.attempt for s in started]
    timeout_info = retried[0].last_failure.timeout_failure_info
    assert timeout_info.timeout_type == TimeoutType.TIMEOUT_TYPE_HEARTBEAT


def assert_local_turn_ran_again(events: Any) -> None:
    """A's workflow task timed out; B's recorded both turns as local-activity markers."""
    kinds = [e.event_type for e in events]
    assert EventType.EVENT_TYPE_WORKFLOW_TASK_TIMED_OUT in kinds, kinds
    assert kinds.count(EventType.EVENT_TYPE_MARKER_RECORDED) == 2, kinds
    assert EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED not in kinds, kinds
