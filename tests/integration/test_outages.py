"""A server restart mid-batch (SQLite file, 15 s down): nothing lost, nothing twice."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

import pytest

from factorial import Agent, AgentWorkerConfig, Orchestrator, TemporalUnavailableError
from factorial.devserver import DevServer, free_port
from factorial.testing import ScriptedModel, call_tool, reply
from tests.conftest import has_event
from tests.ledger import EventLedger

QUICK = AgentWorkerConfig(initial_backoff=0.2, max_backoff=1.0, heartbeat_timeout=5)
OUTAGE = 15.0


def noop() -> str:
    """Do nothing."""
    return "ok"


async def expect_unavailable(orchestrator: Orchestrator, owner: str) -> BaseException | None:
    """Subscribe until the subscription gives up; return how it ended."""
    try:
        async for _ in orchestrator.subscribe_to_updates(owner, from_offset=0):
            pass
    except Exception as err:  # noqa: BLE001 - the caller checks the type
        return err
    return None


@pytest.mark.timeout(240)
async def test_server_restart_mid_batch(unique, tmp_path: Path) -> None:
    port = free_port()
    db = tmp_path / "temporal.db"
    server = DevServer(port=port, db_filename=db, log_file=tmp_path / "server.log").start()
    orchestrator = Orchestrator(temporal_address=server.address, batch_chunk_size=10)
    impatient = Orchestrator(temporal_address=server.address, reconnect_timeout=3)
    agent = Agent(
        name=unique("survivor"),
        tools=[noop],
        model=ScriptedModel([call_tool("noop"), reply("done", delay=1.0)]),
    )
    orchestrator.register_runner(agent=agent, agent_worker_config=QUICK)
    owner = unique("owner")
    gives_up = None
    try:
        await orchestrator.start_workers()
        async with EventLedger(orchestrator, owner) as ledger:
            batch = await orchestrator.enqueue_batch(
                agent=agent, owner_id=owner, payloads=[{}] * 30
            )
            await ledger.wait_until(lambda e: len(ledger.ended_tasks()) >= 5, timeout=60)
            gives_up = asyncio.create_task(expect_unavailable(impatient, owner))
            await asyncio.sleep(0.5)
            server.stop()
            await asyncio.sleep(OUTAGE)
            server = DevServer(port=port, db_filename=db, log_file=tmp_path / "server.log").start()
            await ledger.wait_for_tasks(batch.task_ids, timeout=120)
            await ledger.wait_until(has_event("batch_completed"))
            await ledger.settle()
        ledger.assert_exactly_once(batch.task_ids, batch_ids=[batch.id], expected="completed")
        assert isinstance(await asyncio.wait_for(gives_up, 30), TemporalUnavailableError)
    finally:
        if gives_up is not None:
            gives_up.cancel()
            with contextlib.suppress(BaseException):
                await gives_up
        await orchestrator.close()
        await impatient.close()
        server.stop()
