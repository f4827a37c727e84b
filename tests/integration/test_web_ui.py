"""The Temporal Web UI lists a batch's workflows, filtered by Factorial's search attribute.

Runs a small batch on a dev server of its own with the Web UI enabled, then opens the UI's
workflows page (filtered by ``FactorialBatchId``) in headless Chromium: once for a
screenshot, once for the rendered DOM. Skipped only when no Chromium binary is installed.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import time
import urllib.parse
from pathlib import Path

import pytest

from factorial import Agent, AgentWorkerConfig, Orchestrator
from factorial.devserver import DevServer, free_port
from factorial.testing import ScriptedModel, reply
from tests.conftest import collect_events, has_event

QUICK = AgentWorkerConfig(initial_backoff=0.1, max_backoff=0.2, heartbeat_timeout=5)
TASKS = 3
#: Virtual time Chromium gives the single-page app to fetch and render the list.
VIRTUAL_TIME_MS = 15_000
#: Wall-clock limit of one Chromium run.
CHROMIUM_TIMEOUT = 90.0


def chromium_binary() -> str | None:
    """Debian's Chromium, or one on PATH; None if there is none."""
    if os.access("/usr/bin/chromium", os.X_OK):
        return "/usr/bin/chromium"
    return shutil.which("chromium") or shutil.which("chromium-browser")


CHROMIUM = chromium_binary()

pytestmark = pytest.mark.skipif(
    CHROMIUM is None,
    reason="no Chromium binary (/usr/bin/chromium, chromium or chromium-browser): "
    "apt-get install chromium to run the Web UI test",
)


def run_chromium(
    args: list[str], profile: Path, stdout_path: Path, window: str = "1400,900"
) -> str:
    """Run headless Chromium on one page; return its stdout, killing it on timeout."""
    assert CHROMIUM is not None
    cmd = [
        CHROMIUM,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-quic",
        "--no-first-run",
        "--no-default-browser-check",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-extensions",
        f"--user-data-dir={profile}",
        f"--window-size={window}",
        f"--virtual-time-budget={VIRTUAL_TIME_MS}",
        *args,
    ]
    with open(stdout_path, "wb") as out:
        process = subprocess.Popen(
            cmd,
            stdout=out,
            stderr=subprocess.DEVNULL,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # its own process group: renderers die with it
        )
        try:
            process.wait(timeout=CHROMIUM_TIMEOUT)
        except subprocess.TimeoutExpired:
            pytest.fail(f"Chromium did not finish within {CHROMIUM_TIMEOUT}s: {cmd}")
        finally:
            try:
                os.killpg(process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            process.wait()
    return stdout_path.read_text(errors="replace")


async def wait_visible(orch: Orchestrator, query: str, expected: int, timeout: float) -> int:
    """Poll the visibility store until ``query`` counts ``expected`` workflows."""
    client = await orch.client()
    deadline = time.monotonic() + timeout
    count = -1
    while time.monotonic() < deadline:
        count = (await client.count_workflows(query)).count
        if count == expected:
            return count
        await asyncio.sleep(0.2)
    return count


@pytest.mark.timeout(300)
async def test_web_ui_lists_the_batch_workflows(tmp_path: Path, unique) -> None:
    server = DevServer(ui_port=free_port(), log_file=tmp_path / "server.log")
    server.start()
    try:
        agent = Agent(name=unique("ui_agent"), model=ScriptedModel([reply("shown in the UI")]))
        orch = Orchestrator(temporal_address=server.address)
        try:
            orch.register_runner(agent=agent, agent_worker_config=QUICK)
            await orch.start_workers()
            owner = unique("ui_owner")
            batch = await orch.enqueue_batch(
                agent=agent, owner_id=owner, payloads=[{"query": str(i)} for i in range(TASKS)]
            )
            await collect_events(
                orch, owner, has_event("batch_completed"), event_types=["batch_completed"]
            )
            assert (await orch.get_batch(batch.id)).metadata.status == "completed"
            query = f'FactorialBatchId="{batch.id}"'
            count = await wait_visible(orch, query, 1 + TASKS, timeout=30)
            assert count == 1 + TASKS, f"{query} counts {count} workflows"
        finally:
            await orch.close()

        assert server.ui_url is not None
        url = f"{server.ui_url}/namespaces/default/workflows?query={urllib.parse.quote(query)}"
        screenshot = tmp_path / "batch.png"
        await asyncio.to_thread(
            run_chromium,
            [f"--screenshot={screenshot}", url],
            tmp_path / "profile-shot",
            tmp_path / "chromium-shot.out",
        )
        dom = await asyncio.to_thread(
            run_chromium, ["--dump-dom", url], tmp_path / "profile-dom", tmp_path / "dom.html"
        )
    finally:
        server.stop()

    print(f"\nWeb UI screenshot of batch {batch.id}: {screenshot}")
    assert screenshot.exists(), "Chromium wrote no screenshot"
    assert screenshot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert screenshot.stat().st_size > 20_000, "the screenshot is nearly blank"
    # The filter chip repeats the batch id, so look for each row's link to its workflow.
    assert batch.task_ids[0] == f"{batch.id}-0"
    for workflow_id in [batch.id, *batch.task_ids]:
        link = f'href="/namespaces/default/workflows/{workflow_id}/'
        assert link in dom, f"the list has no row for {workflow_id}; see {tmp_path / 'dom.html'}"
