"""The worker's resident memory over a run: ``VmRSS`` from ``/proc`` once a second.

``peak_worker_rss_mb`` (``VmHWM``) says how high the worker went, not when. ``RssSampler``
samples ``VmRSS`` in the background of the benchmark's event loop while a system runs, and
``summary`` reduces the samples to the largest in each tenth of the run and where the largest
of all fell (the start's ramp-up, the steady state, or the end).
``proc_status_kb`` reads one field of a process's ``/proc`` status (``batch_10k`` reads
``VmHWM`` with it too).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from pathlib import Path
from typing import Any

#: Seconds between two samples.
INTERVAL = 1.0


def proc_status_kb(pid: int, field: str) -> int | None:
    """A ``kB`` field (``VmHWM``, ``VmRSS``) of ``/proc/<pid>/status``; None once it is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


class RssSampler:
    """Samples one process's ``VmRSS`` every ``INTERVAL`` seconds between start and stop."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.samples: list[tuple[float, int]] = []
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Start sampling in the background of the running event loop."""
        self._task = asyncio.create_task(self._sample())

    async def stop(self) -> dict[str, Any]:
        """Stop sampling and return the ``summary`` of the samples."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        return summary(self.samples)

    async def _sample(self) -> None:
        begin = time.monotonic()
        while (kb := proc_status_kb(self.pid, "VmRSS")) is not None:
            self.samples.append((time.monotonic() - begin, kb))
            await asyncio.sleep(INTERVAL)


def summary(samples: list[tuple[float, int]]) -> dict[str, Any]:
    """The largest sample (MB) of each tenth of the run, and the largest one's time and phase.

    The phase is ``start`` in the first tenth, ``end`` in the last, ``steady`` between.
    """
    if not samples:
        return {}
    length = samples[-1][0] or 1.0
    tenths: list[float | None] = [None] * 10
    for seconds, kb in samples:
        tenth = min(9, int(10 * seconds / length))
        megabytes = round(kb / 1024, 1)
        tenths[tenth] = max(tenths[tenth] or 0.0, megabytes)
    at, kb = max(samples, key=lambda sample: sample[1])
    tenth = min(9, int(10 * at / length))
    return {
        "max_mb_by_tenth": tenths,
        "peak_mb": round(kb / 1024, 1),
        "peak_at_s": round(at, 1),
        "peak_phase": "start" if tenth == 0 else "end" if tenth == 9 else "steady",
        "samples": len(samples),
    }
