"""The demo's Temporal server: the one given, the one on 7233, or a dev server it starts."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass

from rich.console import Console

from factorial.devserver import DEFAULT_STATE_DIR, DevServer, free_port, is_listening
from factorial.errors import TemporalUnavailableError
from factorial.orchestrator import Orchestrator

DEFAULT_ADDRESS = "127.0.0.1:7233"
DEFAULT_UI_PORT = 8233


async def is_temporal(address: str) -> bool:
    """True if a Temporal frontend answers at ``address`` within a few seconds."""
    probe = Orchestrator(temporal_address=address)
    try:
        await asyncio.wait_for(probe.client(), 10)
        return True
    except (TimeoutError, TemporalUnavailableError, OSError, RuntimeError):
        return False
    finally:
        await probe.close()


@dataclass
class Server:
    """The server the demo runs on, and the dev server it started, if it did."""

    address: str
    ui_url: str | None = None
    #: True when the UI is only assumed to run at ``ui_url`` (a server we did not start).
    ui_assumed: bool = False
    started: DevServer | None = None


async def start_server(server: DevServer) -> None:
    """Start ``server``; if interrupted meanwhile, let the start finish, stop it, re-raise."""
    start = asyncio.ensure_future(asyncio.to_thread(server.start))
    try:
        await asyncio.shield(start)
    except asyncio.CancelledError:
        with contextlib.suppress(Exception):
            await start
        await asyncio.to_thread(server.stop)
        raise


async def local_server(console: Console) -> Server:
    """Use the Temporal server on 7233 if there is one, else start a dev server."""
    if is_listening(DEFAULT_ADDRESS):
        if await is_temporal(DEFAULT_ADDRESS):
            return Server(DEFAULT_ADDRESS, f"http://127.0.0.1:{DEFAULT_UI_PORT}", ui_assumed=True)
        console.print(f"{DEFAULT_ADDRESS} is busy and is not Temporal: using free ports.")
        port: int | None = None
        ui_port = free_port()
    else:
        port = 7233
        ui_port = (
            DEFAULT_UI_PORT if not is_listening(f"127.0.0.1:{DEFAULT_UI_PORT}") else free_port()
        )
    server = DevServer(
        port=port,
        ui_port=ui_port,
        db_filename=DEFAULT_STATE_DIR / "demo.db",
        log_file=DEFAULT_STATE_DIR / "demo-server.log",
    )
    console.print(f"Starting a Temporal dev server on {server.address} ...")
    await start_server(server)
    return Server(server.address, server.ui_url, started=server)


def given_server(address: str) -> Server:
    if not is_listening(address):
        raise TemporalUnavailableError(f"no Temporal server at {address} (nothing listens)")
    host, _, port = address.rpartition(":")
    if port == "7233":
        return Server(address, f"http://{host}:{DEFAULT_UI_PORT}", ui_assumed=True)
    return Server(address)
