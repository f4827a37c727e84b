"""``benchmarks.replay_cpu`` replays a committed history in both runners (a smoke test)."""

from __future__ import annotations

from benchmarks.replay_cpu import cpu_per_replay
from tests.record_histories import LOCAL_DIR, load_history


async def test_replay_cpu_measures_both_runners() -> None:
    history = load_history(LOCAL_DIR / "agent_task_basic.json")
    for sandboxed in (True, False):
        assert await cpu_per_replay(history, 2, sandboxed=sandboxed) > 0
