"""``benchmarks._rss``: the worker's RSS over a run, by tenth, and where it peaked."""

from __future__ import annotations

import asyncio
import os
import sys

from benchmarks._rss import RssSampler, proc_status_kb, summary


def test_summary_keeps_each_tenths_largest_sample_and_the_peaks_phase() -> None:
    samples = [(float(s), 100_000 + 1_000 * s) for s in range(0, 91)]  # grows to the end
    samples[5] = (5.0, 400_000)  # one spike in the first tenth
    result = summary(samples)
    assert result["peak_mb"] == round(400_000 / 1024, 1)
    assert result["peak_at_s"] == 5.0
    assert result["peak_phase"] == "start"
    tenths = result["max_mb_by_tenth"]
    assert len(tenths) == 10
    assert tenths[0] == round(400_000 / 1024, 1)
    assert tenths[9] == round(190_000 / 1024, 1)  # the last sample falls in the last tenth
    assert tenths[1:] == sorted(tenths[1:])


def test_summary_of_a_steady_peak_and_of_nothing() -> None:
    samples = [(float(s), 100_000) for s in range(0, 100)]
    samples[50] = (50.0, 200_000)
    assert summary(samples)["peak_phase"] == "steady"
    assert summary([]) == {}


async def test_sampler_reads_a_live_process_and_stops() -> None:
    sampler = RssSampler(os.getpid())
    sampler.start()
    while not sampler.samples:
        await asyncio.sleep(0.01)
    result = await sampler.stop()
    assert result["samples"] >= 1
    assert result["peak_mb"] > 1


async def test_sampler_of_a_gone_process_has_no_samples() -> None:
    child = await asyncio.create_subprocess_exec(sys.executable, "-c", "pass")
    await child.wait()
    assert proc_status_kb(child.pid, "VmRSS") is None
    sampler = RssSampler(child.pid)
    sampler.start()
    await asyncio.sleep(0)
    assert await sampler.stop() == {}
