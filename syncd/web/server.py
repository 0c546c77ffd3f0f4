"""Serving the console with uvicorn: in the foreground (``syncd web``) or on a thread of
``syncd run`` when ``web.listen`` is set.

The console opens its own connections (``open_services``), so it never shares the
daemon's with a running cycle; its actions take the cycle lease like the command line's.
It listens on 127.0.0.1:8080 unless ``web.listen`` or ``--listen`` says otherwise.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from contextlib import ExitStack

import structlog
import uvicorn

from syncd.config import Config, ListenAddress
from syncd.errors import ConfigError, UnavailableError
from syncd.web.app import create_app
from syncd.web.console import Console
from syncd.wiring import open_services

log = structlog.get_logger(__name__)

DEFAULT_LISTEN = ListenAddress("127.0.0.1", 8080)
START_WAIT_S = 15.0


class _ToStructlog(logging.Handler):
    """uvicorn logs through ``logging``: its warnings join syncd's own log lines."""

    def emit(self, record: logging.LogRecord) -> None:
        structlog.get_logger(record.name).log(record.levelno, record.getMessage())


def _route_uvicorn_logs() -> None:
    for name in ("uvicorn", "uvicorn.error"):
        logger = logging.getLogger(name)
        logger.handlers = [_ToStructlog()]
        logger.setLevel(logging.WARNING)
        logger.propagate = False


def _check(config: Config) -> None:
    web = config.web
    if not web.users:
        message = (
            "web.users is empty: nobody could sign in to the console; add a person with "
            "`syncd web hash-password` for their password_hash (see docs/console.md)"
        )
        raise ConfigError([message])


def _bind(listen: ListenAddress) -> socket.socket:
    """The listening socket, bound here so that a busy port is a clear error (exit 4)."""
    family = socket.AF_INET6 if ":" in listen.host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((listen.host, listen.port))
    except OSError as error:
        sock.close()
        message = (
            f"the console cannot listen on {listen}: {error.strerror}; stop what uses that "
            "address or choose another (web.listen, or syncd web --listen HOST:PORT)"
        )
        raise UnavailableError(message) from None
    return sock


def _server(config: Config, console: Console, listen: ListenAddress) -> uvicorn.Server:
    _route_uvicorn_logs()
    settings = uvicorn.Config(
        create_app(console),
        host=listen.host,
        port=listen.port,
        log_config=None,
        access_log=False,  # the actions are logged, with who did them; page views are not news
        server_header=False,
        timeout_graceful_shutdown=10,
    )
    return uvicorn.Server(settings)


def serve(config: Config, listen: ListenAddress | None = None) -> int:
    """``syncd web``: serve until SIGTERM or Ctrl-C; returns the exit code."""
    _check(config)
    address = listen or config.web.listen or DEFAULT_LISTEN
    sock = _bind(address)
    try:
        with open_services(config) as services:
            server = _server(config, Console(config, services), address)
            log.info("web.listening", url=f"http://{address}/")
            server.run(sockets=[sock])
    finally:
        sock.close()
    log.info("web.stopped")
    return 0


class BackgroundConsole:
    """The console on a thread of the daemon; ``close()`` stops it and its connections."""

    def __init__(self, config: Config) -> None:
        assert config.web.listen is not None
        _check(config)
        self.listen = config.web.listen
        self._stack = ExitStack()
        sock = _bind(self.listen)
        self._stack.callback(sock.close)
        try:
            services = self._stack.enter_context(open_services(config))
            self._server = _server(config, Console(config, services), self.listen)
            self._thread = threading.Thread(
                target=self._server.run, kwargs={"sockets": [sock]}, name="syncd-web", daemon=True
            )
            self._thread.start()
            deadline = time.monotonic() + START_WAIT_S
            while not self._server.started and self._thread.is_alive():
                if time.monotonic() > deadline:
                    break
                time.sleep(0.05)
            if not self._server.started:
                raise OSError(f"the console could not listen on {self.listen}")
        except BaseException:
            self.close()
            raise
        log.info("web.listening", url=f"http://{self.listen}/")

    def close(self) -> None:
        server = getattr(self, "_server", None)
        if server is not None:
            server.should_exit = True
            self._thread.join(timeout=15)
        self._stack.close()
