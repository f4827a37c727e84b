"""Benchmark: enqueue a large batch, let it run, cancel it; how long each step takes.

Run it from the repository root::

    python -m benchmarks.cancel_batch [--tasks 20000] [--run-for 10] [--turn-seconds 3]
                                      [--output PATH]

It starts its own headless dev server (loopback, free port, in memory) and one worker process
serving a scripted agent whose turns take ``--turn-seconds`` (three turns a task). It then

1. enqueues ``--tasks`` payloads with ``enqueue_batch`` (timed: ``enqueue_seconds``),
2. lets the batch run for ``--run-for`` seconds,
3. calls ``cancel_batch`` (timed: ``cancel_seconds``) and checks, right after it returns, that
   no task workflow of the batch is running (``running_after_cancel``), that none started
   afterwards, and that no turn began afterwards (from the events' timestamps),
4. checks every task that had begun has exactly one terminal event (``tests.ledger``'s
   check), and that ``batch_cancelled`` arrived once, and prints how long after the cancel
   began the tasks' workflows closed (``tasks_closed_after_cancel_seconds``) and their
   ``run_cancelled`` events came.

It prints a table and writes JSON (``--output``, default
``benchmarks/results/cancel_batch.json``). Every process it starts is stopped on the way out.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
RESULTS_FILE = Path(__file__).resolve().parent / "results" / "cancel_batch.json"
AGENT_NAME = "cancel_bench"
OWNER = "cancel-bench"


def build_agent(turn_seconds: float) -> Any:
    """Three turns: two tool calls, then a reply; each model call takes ``turn_seconds``."""
    from factorial import Agent
    from factorial.testing import Reply, ScriptedModel, call_tool

    def noop() -> str:
        """Do nothing."""
        return "ok"

    def script(request: Any) -> Reply:
        if request.turn >= 2:
            return Reply(content="done", delay=turn_seconds)
        return call_tool("noop").model_copy(update={"delay": turn_seconds})

    return Agent(name=AGENT_NAME, tools=[noop], max_turns=3, model=ScriptedModel(script))


async def serve(address: str, turn_seconds: float, turn_execution: str) -> None:
    """The worker process: an Orchestrator serving the agent until SIGTERM."""
    from factorial import AgentWorkerConfig, Orchestrator

    orchestrator = Orchestrator(temporal_address=address)
    config = AgentWorkerConfig(turn_execution=turn_execution)  # type: ignore[arg-type]
    orchestrator.register_runner(agent=build_agent(turn_seconds), agent_worker_config=config)
    await orchestrator.start_workers()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await orchestrator.close()


async def count(client: Any, query: str) -> int:
    return (await client.count_workflows(query)).count


async def measure(args: argparse.Namespace, address: str) -> dict[str, Any]:
    from factorial import Orchestrator
    from tests.ledger import EventLedger

    orchestrator = Orchestrator(temporal_address=address, max_running_tasks=args.max_running)
    agent = build_agent(args.turn_seconds)
    orchestrator.register_runner(agent=agent)
    client = await orchestrator.client()
    try:
        async with EventLedger(orchestrator, OWNER) as ledger:
            payloads = [{"query": f"q{i}"} for i in range(args.tasks)]
            started = time.monotonic()
            batch = await orchestrator.enqueue_batch(agent=agent, owner_id=OWNER, payloads=payloads)
            enqueue_seconds = time.monotonic() - started
            print(f"  enqueued {args.tasks} tasks in {enqueue_seconds:.2f}s", flush=True)
            await asyncio.sleep(args.run_for)
            tasks = f"WorkflowType='AgentTaskWorkflow' AND FactorialBatchId='{batch.id}'"
            running_before = await count(client, f"{tasks} AND ExecutionStatus='Running'")
            cancel_started = time.monotonic()
            cancel_started_at = datetime.now(UTC)
            cancelled = await orchestrator.cancel_batch(batch.id)
            cancel_seconds = time.monotonic() - cancel_started
            returned_at = datetime.now(UTC)
            print(f"  cancel_batch returned in {cancel_seconds:.2f}s", flush=True)
            await asyncio.sleep(2.0)  # visibility catches up
            running_after = await count(client, f"{tasks} AND ExecutionStatus='Running'")
            listed = [d async for d in client.list_workflows(tasks)]
            begun = [d.id for d in listed]
            closed_after = sorted(
                (d.close_time - cancel_started_at).total_seconds()
                for d in listed
                if d.close_time is not None and d.close_time > cancel_started_at
            )
            stamp = returned_at.isoformat()
            started_after = await count(client, f'{tasks} AND StartTime > "{stamp}"')
            await ledger.wait_for_tasks(begun, timeout=120)
            await ledger.wait_until(
                lambda events: any(e["event_type"] == "batch_cancelled" for e in events), 60
            )
            await ledger.settle(3.0)
        ledger.assert_exactly_once(begun, batch_ids=[batch.id])
        late_turns = [
            e
            for e in ledger.of_type("progress_update_run_turn_started")
            if datetime.fromisoformat(e["timestamp"]) > returned_at
        ]
        outcomes = ledger.outcomes()
        cancelled_after = sorted(
            (datetime.fromisoformat(e["timestamp"]) - cancel_started_at).total_seconds()
            for e in ledger.of_type("run_cancelled")
        )
        slowest = max(ledger.of_type("run_cancelled"), key=lambda e: e["timestamp"], default=None)
        if slowest is not None and args.show_slowest:
            await show_history(client, slowest["task_id"], cancel_started_at)
            leaf = (await client.get_workflow_handle(slowest["task_id"]).describe()).parent_id
            if leaf:
                await show_history(client, leaf, cancel_started_at)
            await show_history(client, batch.id, cancel_started_at)
        return {
            "tasks": args.tasks,
            "turn_seconds": args.turn_seconds,
            "turn_execution": args.turn_execution,
            "max_running_tasks": args.max_running,
            "run_for_seconds": args.run_for,
            "enqueue_seconds": round(enqueue_seconds, 2),
            "running_before_cancel": running_before,
            "cancel_seconds": round(cancel_seconds, 2),
            "batch_status": cancelled.metadata.status,
            "tasks_begun": len(begun),
            "running_after_cancel": running_after,
            "started_after_cancel": started_after,
            "turns_begun_after_cancel": len(late_turns),
            "outcomes": {k: list(outcomes.values()).count(k) for k in set(outcomes.values())},
            "tasks_closed_after_cancel_seconds": percentiles(closed_after),
            "run_cancelled_after_cancel_seconds": percentiles(cancelled_after),
            "exactly_once": "pass",
        }
    finally:
        await orchestrator.close()


def percentiles(values: list[float]) -> dict[str, float] | None:
    """p50, p95 and max of sorted ``values``."""
    if not values:
        return None
    pick = lambda q: values[min(len(values) - 1, int(q * len(values)))]  # noqa: E731
    return {"p50": round(pick(0.5), 2), "p95": round(pick(0.95), 2), "max": round(values[-1], 2)}


async def show_history(client: Any, workflow_id: str, since: datetime) -> None:
    """Print a workflow's history events, timed from ``since`` (where a slow cancel waits)."""
    print(f"  history of {workflow_id}, seconds after cancel_batch was called:")
    runs: list[list[Any]] = []  # [kind, first at, last at, first id, count]
    async for event in client.get_workflow_handle(workflow_id).fetch_history_events():
        at = (event.event_time.ToDatetime(UTC) - since).total_seconds()
        kind = event.WhichOneof("attributes").removesuffix("_event_attributes")
        if runs and runs[-1][0] == kind:
            runs[-1][2], runs[-1][4] = at, runs[-1][4] + 1
        else:
            runs.append([kind, at, at, event.event_id, 1])
    for kind, first, last, event_id, n in runs:
        span = f"{first:8.2f}" + (f"..{last:.2f}" if n > 1 else "")
        print(f"    {span:18} {event_id:5} {kind}" + (f" x{n}" if n > 1 else ""))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.cancel_batch")
    parser.add_argument("--tasks", type=int, default=20_000)
    parser.add_argument("--run-for", type=float, default=10.0)
    parser.add_argument("--turn-seconds", type=float, default=3.0)
    parser.add_argument("--turn-execution", default="auto", choices=["auto", "activity", "local"])
    parser.add_argument("--max-running", type=int, default=200, help="max_running_tasks")
    parser.add_argument("--output", type=Path, default=RESULTS_FILE)
    parser.add_argument(
        "--show-slowest", action="store_true", help="print the slowest cancelled task's history"
    )
    parser.add_argument("--role", help=argparse.SUPPRESS)
    parser.add_argument("--address", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.role == "worker":
        asyncio.run(serve(args.address, args.turn_seconds, args.turn_execution))
        return 0

    from factorial.devserver import DevServer

    workdir = Path(tempfile.mkdtemp(prefix="factorial-cancel-"))
    server = DevServer(log_file=workdir / "server.log").start()
    worker = subprocess.Popen(
        [sys.executable, "-m", "benchmarks.cancel_batch", "--role", "worker"]
        + ["--address", server.address, "--turn-seconds", str(args.turn_seconds)]
        + ["--turn-execution", args.turn_execution],
        cwd=REPO_ROOT,
        stdout=open(workdir / "worker.log", "ab"),  # noqa: SIM115 - closed with the process
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        time.sleep(5)  # the worker connects and polls
        print(f"cancel_batch benchmark: {args.tasks} tasks; logs in {workdir}", flush=True)
        result = asyncio.run(measure(args, server.address))
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(json.dumps(result, indent=2) + "\n")
        for key, value in result.items():
            print(f"  {key:28} {value}")
        return 0
    finally:
        if worker.poll() is None:
            worker.terminate()
            try:
                worker.wait(timeout=20)
            except subprocess.TimeoutExpired:
                worker.kill()
                worker.wait()
        server.stop()
        os.sync()


if __name__ == "__main__":
    sys.exit(main())
