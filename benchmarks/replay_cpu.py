"""Benchmark: the worker CPU one task workflow costs, sandboxed and not, by replaying it.

Run it from the repository root::

    python -m benchmarks.replay_cpu [--replays 300] [--history PATH]

It replays one committed task history (by default two local turns: a tool call, then the
answer) ``--replays`` times with Temporal's ``Replayer``, once with the workers' sandboxed
runner and once unsandboxed, and prints the process CPU per replay. A replay does what a
worker does for a new task workflow (create its instance, import its modules into a fresh
sandbox, encode and decode every payload) except the turns themselves and the server round
trips, so it isolates the workflow side. No server is needed.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

from temporalio.client import WorkflowHistory
from temporalio.worker import Replayer

from factorial._converter import DATA_CONVERTER
from factorial._workers import workflow_runner
from factorial.workflows import AgentTaskWorkflow
from tests.record_histories import LOCAL_DIR, load_history


async def cpu_per_replay(history: WorkflowHistory, replays: int, sandboxed: bool) -> float:
    """Process CPU seconds per replay of ``history`` (after one warm-up replay)."""
    replayer = Replayer(
        workflows=[AgentTaskWorkflow],
        data_converter=DATA_CONVERTER,
        workflow_runner=workflow_runner(sandboxed=sandboxed),
    )
    await replayer.replay_workflow(history)

    async def histories() -> AsyncIterator[WorkflowHistory]:
        for _ in range(replays):
            yield history

    started = time.process_time()
    async with replayer.workflow_replay_iterator(histories()) as results:
        async for result in results:
            if result.replay_failure is not None:
                raise result.replay_failure
    return (time.process_time() - started) / replays


async def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.replay_cpu")
    parser.add_argument("--replays", type=int, default=300)
    parser.add_argument("--history", type=Path, default=LOCAL_DIR / "agent_task_basic.json")
    args = parser.parse_args()
    history = load_history(args.history)
    sandboxed = await cpu_per_replay(history, args.replays, sandboxed=True)
    unsandboxed = await cpu_per_replay(history, args.replays, sandboxed=False)
    print(f"{args.history.name}, {args.replays} replays, CPU per replay:")
    print(f"  sandboxed    {sandboxed * 1000:6.2f} ms")
    print(f"  unsandboxed  {unsandboxed * 1000:6.2f} ms")


if __name__ == "__main__":
    asyncio.run(main())
