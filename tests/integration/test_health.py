"""The worker's health check: 200 while its workers run, 503 before and after."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import urllib.error
import urllib.request

from factorial import Orchestrator
from factorial._health import HEALTH_PATH, HealthServer, check
from factorial.devserver import DevServer


def _status(port: int, path: str = HEALTH_PATH) -> int:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as response:
            return int(response.status)
    except urllib.error.HTTPError as err:
        return err.code


def _probe(port: int) -> subprocess.CompletedProcess[str]:
    """``python -m factorial._health PORT``: what the image's HEALTHCHECK runs."""
    return subprocess.run(
        [sys.executable, "-m", "factorial._health", str(port)],
        capture_output=True,
        text=True,
        timeout=30,
    )


async def test_health_follows_the_workers(temporal_server: DevServer) -> None:
    orchestrator = Orchestrator(temporal_address=temporal_server.address)
    health = HealthServer(lambda: orchestrator.workers_running, 0).start()
    try:
        port = health.port
        assert await asyncio.to_thread(_status, port) == 503  # not started yet
        assert (await asyncio.to_thread(_probe, port)).returncode == 1

        await orchestrator.start_workers()
        assert await asyncio.to_thread(_status, port) == 200
        probe = await asyncio.to_thread(_probe, port)
        assert probe.returncode == 0 and "healthy" in probe.stdout
        assert await asyncio.to_thread(_status, port, "/other") == 404

        await orchestrator.stop_workers()
        assert await asyncio.to_thread(_status, port) == 503
        assert (await asyncio.to_thread(_probe, port)).returncode == 1
    finally:
        health.stop()
        await orchestrator.close()
    # Stopped: nothing answers any more.
    assert not await asyncio.to_thread(check, f"http://127.0.0.1:{port}{HEALTH_PATH}", 2.0)


def test_the_probe_needs_a_port() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "factorial._health"],
        capture_output=True,
        text=True,
        timeout=30,
        env={"PATH": ""},
    )
    assert result.returncode == 2
    assert "FACTORIAL_HEALTH_PORT" in result.stderr
