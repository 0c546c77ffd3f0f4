"""sd_notify over a real AF_UNIX datagram socket, as systemd binds it for NOTIFY_SOCKET."""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from syncd.daemon.notify import Notifier


@pytest.fixture
def listener(tmp_path: Path) -> Iterator[tuple[socket.socket, str]]:
    """A bound datagram socket and the NOTIFY_SOCKET value that reaches it."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    path = tmp_path / "notify.sock"
    sock.bind(str(path))
    sock.settimeout(2)
    yield sock, str(path)
    sock.close()


def received(sock: socket.socket) -> dict[str, str]:
    return dict(line.split("=", 1) for line in sock.recv(4096).decode().splitlines())


def test_each_message_arrives_as_one_datagram(listener: tuple[socket.socket, str]) -> None:
    """READY, STATUS, WATCHDOG, RELOADING and STOPPING reach the socket as KEY=value lines."""
    sock, path = listener
    notifier = Notifier({"NOTIFY_SOCKET": path})
    notifier.ready("started")
    assert received(sock) == {"READY": "1", "STATUS": "started"}
    notifier.status("last sync cycle ok: created=1")
    assert received(sock) == {"STATUS": "last sync cycle ok: created=1"}
    notifier.watchdog()
    assert received(sock) == {"WATCHDOG": "1"}
    notifier.reloading()
    reloading = received(sock)
    assert reloading["RELOADING"] == "1"
    assert int(reloading["MONOTONIC_USEC"]) > 0
    notifier.stopping()
    assert received(sock)["STOPPING"] == "1"


def test_abstract_namespace_socket() -> None:
    """A NOTIFY_SOCKET starting with @ names a socket in the abstract namespace."""
    name = f"syncd-test-{uuid.uuid4().hex}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind("\0" + name)
        sock.settimeout(2)
        Notifier({"NOTIFY_SOCKET": "@" + name}).ready("up")
        assert received(sock)["READY"] == "1"


def test_without_systemd_nothing_is_sent_and_nothing_fails(tmp_path: Path) -> None:
    """No NOTIFY_SOCKET: a no-op; a socket that went away: logged, never raised."""
    Notifier({}).ready("up")
    gone = Notifier({"NOTIFY_SOCKET": str(tmp_path / "missing.sock")})
    gone.status("still running")  # must not raise
    assert Notifier({}).watchdog_interval is None


def test_watchdog_interval_is_half_of_watchdog_usec_for_this_process() -> None:
    """WATCHDOG_USEC=60s means a ping every 30 s, unless WATCHDOG_PID names another process."""
    mine = {"WATCHDOG_USEC": "60000000", "WATCHDOG_PID": str(os.getpid())}
    assert Notifier(mine).watchdog_interval == timedelta(seconds=30)
    assert Notifier({"WATCHDOG_USEC": "60000000"}).watchdog_interval == timedelta(seconds=30)
    other = {"WATCHDOG_USEC": "60000000", "WATCHDOG_PID": str(os.getpid() + 1)}
    assert Notifier(other).watchdog_interval is None
    assert Notifier({"WATCHDOG_USEC": "0"}).watchdog_interval is None
