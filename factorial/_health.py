"""The worker's health check: an HTTP endpoint that says whether its workers run.

``factorial worker --health-port PORT`` (or ``FACTORIAL_HEALTH_PORT``) serves
``GET /healthz``: ``200 ok`` while every worker of the process runs, ``503`` before they
have started, once one has stopped (for example it lost Temporal for good) and during
shutdown. The server is the standard library's, on a daemon thread, so a busy event loop
never delays the answer. ``python -m factorial._health`` probes it (exit 0 on 200, else 1):
the Docker image's ``HEALTHCHECK`` and the compose file's ``healthcheck`` run that.
"""

from __future__ import annotations

import os
import sys
import threading
import urllib.error
import urllib.request
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

#: The environment variable of the port, for the worker and for the probe.
PORT_ENV = "FACTORIAL_HEALTH_PORT"
#: The path that answers.
HEALTH_PATH = "/healthz"


class HealthServer:
    """Serves ``GET /healthz`` from a thread: 200 while ``probe()`` is true, else 503.

    Args:
        probe: Whether the workers run; called on every request, from the server's thread.
        port: TCP port; 0 picks a free one (see ``port`` once started).
        host: Address to bind; loopback by default (``0.0.0.0`` for probes from outside,
            such as Kubernetes').
    """

    def __init__(self, probe: Callable[[], bool], port: int, host: str = "127.0.0.1") -> None:
        self._probe = probe
        self._address = (host, port)
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        """The port it listens on (the chosen one when started with 0)."""
        if self._server is None:
            return self._address[1]
        return int(self._server.server_address[1])

    def start(self) -> HealthServer:
        """Bind the port and serve in a daemon thread.

        Raises:
            OSError: The port cannot be bound.
        """
        probe = self._probe

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - the name http.server calls
                if self.path.split("?")[0] != HEALTH_PATH:
                    self._answer(404, "not found")
                elif probe():
                    self._answer(200, "ok")
                else:
                    self._answer(503, "workers are not running")

            def _answer(self, code: int, text: str) -> None:
                body = f"{text}\n".encode()
                self.send_response(code)
                self.send_header("Content-Type", "text/plain; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                """Stay quiet: a probe every few seconds is not worth a log line."""

        self._server = ThreadingHTTPServer(self._address, Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="factorial-health", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and release the port."""
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()
        if self._thread is not None:
            self._thread.join()
            self._thread = None


def check(url: str, timeout: float = 5.0) -> bool:
    """True if ``url`` answers 200."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 - http only
            return int(response.status) == 200
    except (urllib.error.URLError, OSError, ValueError):
        return False


def main(argv: list[str] | None = None) -> int:
    """Probe the local worker's health endpoint: ``python -m factorial._health [PORT]``.

    The port comes from the argument or ``FACTORIAL_HEALTH_PORT``. Returns 0 if healthy.
    """
    args = sys.argv[1:] if argv is None else argv
    port = args[0] if args else os.environ.get(PORT_ENV)
    if not port or not port.isdigit():
        print(f"usage: python -m factorial._health PORT (or set {PORT_ENV})", file=sys.stderr)
        return 2
    url = f"http://127.0.0.1:{port}{HEALTH_PATH}"
    healthy = check(url)
    print(f"{url}: {'healthy' if healthy else 'unhealthy'}")
    return 0 if healthy else 1


if __name__ == "__main__":
    sys.exit(main())
