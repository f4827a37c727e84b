"""The dashboard, rendered from a worker's real metrics in headless Chromium.

A worker with a metrics port runs two agents' batches while Debian's Prometheus scrapes it
every second. The Grafana dashboard's panels (``deploy/grafana/dashboards/factorial.json``)
are then drawn by Prometheus's console graphs (Grafana itself cannot be installed here: see
``tests/dashboard_console.py``) and Chromium takes the screenshot the README shows. Skipped
only when Chromium or Prometheus is not installed (``.ci/run`` installs both).

``FACTORIAL_SCREENSHOTS=DIR`` copies the screenshot to ``DIR/dashboard.png``.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from factorial import Agent, AgentWorkerConfig, Orchestrator
from factorial.devserver import DevServer, free_port
from factorial.models import ModelRequest
from factorial.testing import Fail, Reply, ScriptedModel, call_tool, reply
from tests.conftest import collect_events, has_event
from tests.dashboard_console import console_page, expressions
from tests.integration.test_web_ui import CHROMIUM, run_chromium

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = ROOT / "deploy/grafana/dashboards/factorial.json"
PROMETHEUS = shutil.which("prometheus")
QUICK = AgentWorkerConfig(initial_backoff=0.1, max_backoff=0.2, heartbeat_timeout=5)
#: The graphs' time range, in seconds: the run takes well under it.
DURATION_S = 150

pytestmark = pytest.mark.skipif(
    CHROMIUM is None or PROMETHEUS is None,
    reason="needs Chromium and Prometheus: apt-get install chromium prometheus",
)


def lookup(topic: str) -> str:
    """Look a topic up."""
    return f"notes on {topic}"


def flaky_index(topic: str) -> str:
    """Fails for some topics."""
    if topic.endswith("3"):
        raise RuntimeError("the index is down")
    return f"indexed {topic}"


def research(request: ModelRequest) -> Reply | Fail:
    """Two tools (one fails now and then), a retried 503 for some tasks, then an answer."""
    query = request.messages[0]["content"]
    if request.turn == 0:
        calls = call_tool("lookup", topic=query).tool_calls
        calls += call_tool("flaky_index", topic=query).tool_calls
        return Reply(tool_calls=calls, delay=0.3)
    if query.endswith("7"):
        return Fail(status_code=503, times=1, then=reply("found it", delay=0.2))
    return reply("found it", delay=0.5)


def write(request: ModelRequest) -> Reply | Fail:
    """One quick answer; a 400 for some tasks, which fails them."""
    if request.messages[0]["content"].endswith("5"):
        return Fail(status_code=400)
    return reply("a short report", delay=0.2)


@pytest.fixture
def prometheus(tmp_path: Path) -> Iterator[tuple[str, Path, int]]:
    """Debian's Prometheus on loopback, scraping every second; yields (address, consoles, port)."""
    assert PROMETHEUS is not None
    metrics_port = free_port()
    address = f"127.0.0.1:{free_port()}"
    consoles = tmp_path / "consoles"
    consoles.mkdir()
    config = tmp_path / "prometheus.yml"
    config.write_text(
        "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
        "scrape_configs:\n"
        "  - job_name: factorial-worker\n"
        f"    static_configs: [{{targets: ['127.0.0.1:{metrics_port}']}}]\n"
    )
    with open(tmp_path / "prometheus.log", "wb") as log:
        process = subprocess.Popen(
            [
                PROMETHEUS,
                f"--config.file={config}",
                f"--web.listen-address={address}",
                f"--storage.tsdb.path={tmp_path / 'data'}",
                f"--web.console.templates={consoles}",
                f"--web.console.libraries={consoles}",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    try:
        yield address, consoles, metrics_port
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


async def query(address: str, expr: str) -> list[dict[str, object]]:
    """The result of an instant PromQL query."""
    async with httpx.AsyncClient() as client:
        response = await client.get(
            f"http://{address}/api/v1/query", params={"query": expr}, timeout=10
        )
    response.raise_for_status()
    result: list[dict[str, object]] = response.json()["data"]["result"]
    return result


async def tasks_ended(address: str, agent: str) -> float:
    """How many of ``agent``'s tasks Prometheus has seen end."""
    result = await query(address, f'sum(factorial_tasks{{agent="{agent}"}})')
    if not result:
        return 0.0
    value = result[0]["value"]
    assert isinstance(value, list)
    return float(value[1])


@pytest.mark.timeout(300)
async def test_the_dashboard_renders_a_workers_metrics(
    temporal_server: DevServer, prometheus: tuple[str, Path, int], tmp_path: Path, unique
) -> None:
    prom_address, consoles, metrics_port = prometheus
    researcher = Agent(
        name=unique("researcher"), model=ScriptedModel(research), tools=[lookup, flaky_index]
    )
    writer = Agent(name=unique("writer"), model=ScriptedModel(write))
    orch = Orchestrator(
        temporal_address=temporal_server.address, metrics_address=f"127.0.0.1:{metrics_port}"
    )
    started = time.monotonic()
    try:
        for agent in (researcher, writer):
            orch.register_runner(agent=agent, agent_worker_config=QUICK)
        await orch.start_workers()
        owner = unique("owner")
        # Three waves, a few seconds apart, so the rates have a shape.
        for wave in range(3):
            for agent in (researcher, writer):
                await orch.enqueue_batch(
                    agent=agent,
                    owner_id=owner,
                    payloads=[{"query": f"topic {wave}{i}"} for i in range(12)],
                )
            await asyncio.sleep(4)
        await collect_events(
            orch, owner, has_event("batch_completed", 6), event_types=["batch_completed"]
        )
        # Prometheus has scraped the last counts (rates need two scrapes after them).
        for _ in range(100):
            if await tasks_ended(prom_address, writer.name) == 36:
                break
            await asyncio.sleep(0.5)
        await asyncio.sleep(3)
    finally:
        await orch.close()

    # Every panel's expression is valid PromQL and has data for these agents.
    for expr in expressions(json.loads(DASHBOARD.read_text())):
        assert await query(prom_address, expr), f"no data for {expr}"

    duration = max(20, min(DURATION_S, int(time.monotonic() - started) + 5))
    (consoles / "factorial.html").write_text(console_page(DASHBOARD, duration))
    url = f"http://{prom_address}/consoles/factorial.html"
    screenshot = tmp_path / "dashboard.png"
    await asyncio.to_thread(
        run_chromium,
        [f"--screenshot={screenshot}", url],
        tmp_path / "profile-shot",
        tmp_path / "chromium-shot.out",
        "1400,1180",
    )
    dom = await asyncio.to_thread(
        run_chromium, ["--dump-dom", url], tmp_path / "profile-dom", tmp_path / "dom.html"
    )
    print(f"\nDashboard screenshot: {screenshot}")
    assert screenshot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert screenshot.stat().st_size > 40_000, "the screenshot is nearly blank"
    # The graphs were drawn from data: each agent is in the legends, and no graph failed.
    assert "Error loading data" not in dom
    for agent in (researcher, writer):
        assert agent.name in dom, f"no graph names {agent.name}; see {tmp_path / 'dom.html'}"
    publish(screenshot)


def publish(screenshot: Path) -> None:
    """Copy the screenshot to ``$FACTORIAL_SCREENSHOTS/dashboard.png`` when that is set."""
    if target := os.environ.get("FACTORIAL_SCREENSHOTS"):
        Path(target).mkdir(parents=True, exist_ok=True)
        shutil.copyfile(screenshot, Path(target) / "dashboard.png")
