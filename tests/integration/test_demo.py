"""``factorial demo`` interrupted: Ctrl-C cancels its batch cleanly and exits with 130."""

from __future__ import annotations

import asyncio
import re
import signal
import subprocess
import time
import uuid

from factorial._wire import SEARCH_ATTRIBUTES
from factorial.devserver import DevServer, temporal_binary
from factorial.example_app import build_orchestrator
from tests.integration.test_cli import FACTORIAL, cli_env


async def test_ctrl_c_cancels_the_batch(temporal_server: DevServer) -> None:
    address = temporal_server.address
    demo = await asyncio.create_subprocess_exec(
        FACTORIAL,
        "demo",
        "--address",
        address,
        "--tasks",
        "3",
        env=cli_env(),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    orchestrator = None
    try:
        assert demo.stdout is not None and demo.stderr is not None
        seen: list[str] = []
        async with asyncio.timeout(120):
            while not any(line.startswith("batch_progress") for line in seen):
                line = (await demo.stdout.readline()).decode()
                assert line, "the demo ended early:\n" + "".join(seen)
                seen.append(line)
        head = "".join(seen)
        match = re.search(r"Enqueued batch (batch-[0-9a-f]+)", head)
        assert match, head
        batch_id = match.group(1)

        demo.send_signal(signal.SIGINT)
        rest, err = await asyncio.wait_for(demo.communicate(), 180)
        out = head + rest.decode()
        errors = err.decode()
        assert demo.returncode == 130, out + errors
        assert "Traceback" not in out + errors
        assert out.count("Interrupted: cancelling batch") == 1, out
        assert f"Interrupted: cancelling batch {batch_id}" in out
        assert re.search(r"^batch_cancelled ", out, re.MULTILINE), out
        assert f"Batch {batch_id}: cancelled" in out
        assert "batch_completed" not in out
        assert "Interrupted." in errors

        # The demo's workers are gone; run the example agents here to answer the query.
        orchestrator = build_orchestrator(address)
        await orchestrator.start_workers()
        batch = await asyncio.wait_for(orchestrator.get_batch(batch_id), 60)
        assert batch.metadata.status == "cancelled"
        assert batch.remaining_task_ids == []
        for task_id in batch.task_ids:
            data = await asyncio.wait_for(orchestrator.get_task_data(task_id), 60)
            assert data is not None and data["status"] in ("cancelled", "completed"), data
    finally:
        if demo.returncode is None:
            demo.kill()
            await demo.wait()
        if orchestrator is not None:
            await orchestrator.close()


def _temporal(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [temporal_binary(), *args],
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )


def _create_namespace(address: str, namespace: str) -> None:
    """A namespace with Factorial's search attributes (as docker-compose's admin job does)."""
    created = _temporal("operator", "namespace", "create", "--address", address, "-n", namespace)
    assert created.returncode == 0, created.stderr
    for name in SEARCH_ATTRIBUTES:
        for _ in range(60):  # a new namespace takes a moment to reach the frontend
            added = _temporal(
                "operator", "search-attribute", "create", "--address", address,
                "-n", namespace, "--name", name, "--type", "Keyword",
            )  # fmt: skip
            if added.returncode == 0 or "already exists" in added.stderr.lower():
                break
            time.sleep(1)
        else:
            raise AssertionError(added.stderr)


async def test_the_demo_honours_temporal_address_and_namespace(
    temporal_server: DevServer,
) -> None:
    address = temporal_server.address
    namespace = f"demo-{uuid.uuid4().hex[:8]}"
    await asyncio.to_thread(_create_namespace, address, namespace)
    done = await asyncio.to_thread(
        subprocess.run,
        [FACTORIAL, "demo", "--namespace", namespace, "--tasks", "1"],
        env={**cli_env(), "TEMPORAL_ADDRESS": address},  # no --address
        capture_output=True,
        text=True,
        timeout=180,
        stdin=subprocess.DEVNULL,
    )
    out = done.stdout
    assert done.returncode == 0, out + done.stderr
    assert f"against {address} (namespace {namespace})" in out
    match = re.search(r"Enqueued batch (batch-[0-9a-f]+)", out)
    assert match, out
    batch_id = match.group(1)
    assert f"factorial batch status {batch_id} --address {address} --namespace {namespace}" in out
    assert re.search(r"^batch_completed ", out, re.MULTILINE), out
    described = _temporal(
        "workflow", "describe", "--address", address, "-n", namespace, "-w", batch_id
    )
    assert described.returncode == 0, described.stderr
    elsewhere = _temporal("workflow", "describe", "--address", address, "-w", batch_id)
    assert elsewhere.returncode != 0  # not in the default namespace
