"""Helpers for the daemon tests: ``syncd run`` as a real subprocess, and a GT ERP to edit.

``DaemonProcess`` starts ``python -m syncd --config ... run`` with its JSON log lines going
to a file (a pipe could fill up and stall the daemon), reads them back as events, sends
real signals and always ends the process, with a hard timeout, however the test ends.
``NotifySocket`` is a real AF_UNIX datagram socket standing in for systemd's.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from connectors.subiekt_gt.fake import GtContractor, GtWriter, create_gt_schema
from tests.support import write_config

REPO = Path(__file__).resolve().parents[1]
Event = dict[str, Any]


class DaemonProcess:
    """One ``syncd run`` subprocess and its log."""

    def __init__(self, config: Path, log: Path, env: dict[str, str] | None = None) -> None:
        self.log = log
        self._out = log.open("wb")
        self._err = log.with_suffix(".stderr").open("wb")
        environ = {**os.environ, "PYTHONUNBUFFERED": "1"}
        for systemds in ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID"):
            environ.pop(systemds, None)  # only what the test hands in
        environ.update(env or {})
        self.proc = subprocess.Popen(  # noqa: S603 - this interpreter, fixed argv
            [sys.executable, "-m", "syncd", "--config", str(config), "run"],
            stdout=self._out,  # the JSON log lines: stdout, as journald would take them
            stderr=self._err,
            env=environ,
            cwd=REPO,
        )

    def events(self) -> list[Event]:
        """Every JSON log line so far (a line still being written is skipped)."""
        found = []
        for line in self.log.read_text(encoding="utf-8", errors="replace").splitlines():
            if line.startswith("{"):
                try:
                    found.append(json.loads(line))
                except json.JSONDecodeError:
                    continue
        return found

    def named(self, name: str) -> list[Event]:
        return [e for e in self.events() if e.get("event") == name]

    def wait_for(self, name: str, count: int = 1, timeout: float = 15.0) -> list[Event]:
        """Wait until the log holds ``count`` events called ``name``; returns them."""
        wait_until(lambda: len(self.named(name)) >= count, timeout, self.describe, self.proc)
        return self.named(name)

    def signal(self, signum: int) -> None:
        self.proc.send_signal(signum)

    def stop(self, timeout: float = 10.0) -> int:
        """SIGTERM, then the exit code (a daemon not gone within ``timeout`` fails the test)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            message = f"syncd run ignored SIGTERM for {timeout}s\n{self.describe()}"
            raise AssertionError(message) from None

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        self._out.close()
        self._err.close()

    def describe(self) -> str:
        stderr = self.log.with_suffix(".stderr").read_text(errors="replace")[-3000:]
        stdout = self.log.read_text(errors="replace")[-6000:]
        return f"exit code {self.proc.poll()}; stdout:\n{stdout}\nstderr:\n{stderr}"


def wait_until(
    condition: Callable[[], bool],
    timeout: float,
    describe: Callable[[], str] = lambda: "",
    proc: subprocess.Popen[bytes] | None = None,
) -> float:
    """Poll ``condition`` every 20 ms; returns the seconds it took, fails after ``timeout``."""
    start = time.monotonic()
    while not condition():
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"the daemon exited early\n{describe()}")
        if time.monotonic() - start > timeout:
            raise AssertionError(f"timed out after {timeout}s\n{describe()}")
        time.sleep(0.02)
    return time.monotonic() - start


@contextmanager
def daemon(config: Path, log: Path, env: dict[str, str] | None = None) -> Iterator[DaemonProcess]:
    """A running daemon, killed on the way out if the test did not stop it."""
    process = DaemonProcess(config, log, env)
    try:
        yield process
    finally:
        process.kill()


class NotifySocket:
    """A real AF_UNIX datagram socket, as systemd binds for ``NOTIFY_SOCKET``."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))
        self.sock.settimeout(0.05)
        self.messages: list[dict[str, str]] = []

    def drain(self) -> list[dict[str, str]]:
        """Read every datagram waiting; returns all messages received so far."""
        while True:
            try:
                data = self.sock.recv(4096)
            except TimeoutError:
                return self.messages
            fields = dict(line.split("=", 1) for line in data.decode().splitlines())
            self.messages.append(fields)

    def wait_for(self, key: str, value: str | None = None, timeout: float = 15.0) -> dict[str, str]:
        """The first message carrying ``key`` (with ``value``, when given)."""

        def found() -> dict[str, str] | None:
            for message in self.drain():
                if key in message and (value is None or message[key] == value):
                    return message
            return None

        wait_until(lambda: found() is not None, timeout, lambda: repr(self.messages))
        message = found()
        assert message is not None
        return message

    def close(self) -> None:
        self.sock.close()


def contractor(kh_id: int, **kw: Any) -> GtContractor:
    """An in-scope customer with a valid e-mail, K<id>@firma.pl."""
    return GtContractor(kh_id, f"K{kh_id}", f"Firma {kh_id}", email=f"k{kh_id}@firma.pl",
                        features=["b2b"], **kw)  # fmt: skip


def make_site(
    directory: Path, contractors: int = 1, *, erp: str | None = None, **sections: dict[str, Any]
) -> Path:
    """A GT ERP (SQLite in ``directory`` unless ``erp`` is a URL) with ``contractors`` in
    scope, and a config around it; returns the config's path."""
    erp = erp or f"sqlite:///{directory}/erp.db"
    sections["source"] = {"url": erp, **sections.get("source", {})}
    config = write_config(directory, **sections)
    edit_erp(erp, lambda w: w.add_many(contractor(i) for i in range(1, contractors + 1)),
             create=True)  # fmt: skip
    assert config.path is not None
    return config.path


def edit_erp(erp: Path | str, edit: Callable[[GtWriter], object], *, create: bool = False) -> None:
    """Change the ERP (a site's directory, or a URL) as GT's screens would, in one transaction."""
    engine = sa.create_engine(erp if isinstance(erp, str) else f"sqlite:///{erp}/erp.db")
    try:
        if create:
            create_gt_schema(engine)
        with engine.begin() as conn:
            edit(GtWriter(conn))
    finally:
        engine.dispose()


def query(url: str, sql: str) -> list[tuple[Any, ...]]:
    """Rows of one read-only query on a database (the portal or the state store)."""
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return [tuple(row) for row in conn.execute(sa.text(sql))]
    finally:
        engine.dispose()
