"""``factorial demo`` interrupted: Ctrl-C cancels its batch cleanly and exits with 130."""

from __future__ import annotations

import asyncio
import re
import signal
import subprocess

from factorial.devserver import DevServer
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
