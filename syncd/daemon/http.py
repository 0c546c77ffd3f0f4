"""The ``observability.listen`` endpoint: GET /metrics (Prometheus) and GET /healthz.

The standard library's threading HTTP server is plenty for a scrape every few seconds and
adds no dependency. It runs in a daemon thread and only ever calls the two functions it is
given, so it never touches the daemon's state directly.
"""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import structlog
from prometheus_client import CONTENT_TYPE_LATEST

log = structlog.get_logger(__name__)

Health = Callable[[], tuple[bool, str]]


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], metrics: Callable[[], bytes], health: Health):
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        self.metrics = metrics
        self.health = health
        super().__init__(address, _Handler)


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        if path == "/metrics":
            self._reply(200, self.server.metrics(), CONTENT_TYPE_LATEST)
        elif path == "/healthz":
            try:
                healthy, why = self.server.health()
            except Exception as error:  # the store is down: that is unhealthy, not a 500
                healthy, why = False, f"cannot read the state store: {error}"
            body = json.dumps({"healthy": healthy, "health": why}, ensure_ascii=False)
            self._reply(200 if healthy else 503, body.encode(), "application/json")
        else:
            self._reply(404, b"not found: try /metrics or /healthz\n", "text/plain")

    def _reply(self, code: int, body: bytes, content_type: str) -> None:
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        """Scrapes are not news: keep them out of the journal."""


class HttpEndpoint:
    """A running /metrics + /healthz server; ``close()`` stops it and frees the port."""

    def __init__(
        self, host: str, port: int, *, metrics: Callable[[], bytes], health: Health
    ) -> None:
        self._server = _Server((host, port), metrics, health)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="syncd-http", daemon=True
        )
        self._thread.start()
        log.info("http.listening", host=host, port=self.port)

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
