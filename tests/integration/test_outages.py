"""``syncd run`` through outages: the ERP database refusing connections, the SMTP server
down then answering 451, the state store locked by another process.

In each the daemon keeps running, loses nothing and sends nothing twice, says so ONCE in
the log (the repeats are debug lines, not shown) and in /healthz (503 while it lasts), and
recovers by itself when the service returns. Intervals are 2 seconds; every wait is on an
event with a generous deadline.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import sqlalchemy as sa
from aiosmtpd.controller import Controller

from tests.daemon_support import (
    DaemonProcess,
    contractor,
    daemon,
    edit_erp,
    make_site,
    query,
    wait_until,
)
from tests.integration.test_daemon import erp_connections, healthz
from tests.smtp_server import Recorder, Server, authenticate, free_port

FAST = {"interval": "2s"}
LOUD = ("warning", "error", "critical")


def _state(directory: Path) -> str:
    return f"sqlite:///{directory}/state.db"


def _logins(directory: Path) -> set[str]:
    rows = query(f"sqlite:///{directory}/portal.db", "SELECT login FROM b2b_account")
    return {row[0] for row in rows}


def _loud(syncd: DaemonProcess) -> list[str]:
    """The names of the warning and error lines logged so far."""
    return [e["event"] for e in syncd.events() if e.get("level") in LOUD]


def _cycles(syncd: DaemonProcess, status: str | None = None) -> int:
    return sum(1 for e in syncd.named("sync.finished") if status in (None, e["status"]))


def _mails(directory: Path) -> list[tuple[str, str]]:
    return [(r[0], r[1]) for r in query(_state(directory), "SELECT contractor_key, status "
                                        "FROM syncd_outbox ORDER BY contractor_key")]  # fmt: skip


@pytest.mark.postgres
def test_the_erp_refusing_connections_is_said_once_and_recovered_from(
    tmp_path: Path, pg_url: str
) -> None:
    """The ERP (PostgreSQL) refuses connections for several cycles: one cycle.unavailable
    line, /healthz 503; when it is back: one cycle.recovered, 200, and the contractor added
    just before the outage gets its account and one activation mail."""
    port = free_port()
    config = make_site(tmp_path, 2, erp=pg_url, schedule=FAST, mail={"send_delay": "0s"},
                       observability={"listen": f"127.0.0.1:{port}"})  # fmt: skip
    with daemon(config, tmp_path / "run.log") as syncd:
        wait_until(lambda: healthz(port)[0] == 200, 30, syncd.describe)
        edit_erp(pg_url, lambda w: w.add_many([contractor(3)]))
        erp_connections(pg_url, allow=False)
        wait_until(lambda: healthz(port)[0] == 503, 30, syncd.describe)
        down = _cycles(syncd, "unavailable")
        wait_until(lambda: _cycles(syncd, "unavailable") >= down + 3, 30, syncd.describe)
        (said,) = syncd.named("cycle.unavailable")  # once, not every cycle
        assert "cannot reach the Subiekt GT database" in said["error"]
        assert _loud(syncd) == ["cycle.unavailable"]
        erp_connections(pg_url, allow=True)
        syncd.wait_for("cycle.recovered", timeout=30)
        wait_until(lambda: healthz(port)[0] == 200, 30, syncd.describe)
        wait_until(lambda: len(_mails(tmp_path)) == 3, 30, syncd.describe)
        wait_until(lambda: {s for _, s in _mails(tmp_path)} == {"sent"}, 30, syncd.describe)
        assert syncd.stop() == 0
    assert _logins(tmp_path) == {"k1@firma.pl", "k2@firma.pl", "k3@firma.pl"}
    assert len(syncd.named("cycle.recovered")) == 1
    assert _loud(syncd) == ["cycle.unavailable"]
    assert syncd.proc.returncode == 0


@contextmanager
def _smtp_on(port: int, handler: Recorder) -> Iterator[Server]:
    """The test SMTP server on a given port: the same address, back after an outage."""
    controller = Controller(handler, hostname="127.0.0.1", port=port,
                            authenticator=authenticate, auth_require_tls=False)  # fmt: skip
    controller.start()
    try:
        yield Server(handler, port)
    finally:
        controller.stop()


def test_the_smtp_server_down_then_answering_451_loses_no_mail_and_sends_it_once(
    tmp_path: Path,
) -> None:
    """No SMTP server: the activation mail stays pending, one mail.unavailable line over
    several cycles, /healthz 503; the server back but answering 451 (still pending); then: the mail
    goes out exactly once, one mail.recovered line, /healthz 200."""
    smtp_port, http_port = free_port(), free_port()
    mail = {"transport": "smtp", "send_delay": "0s",
            "smtp": {"host": "127.0.0.1", "port": smtp_port, "security": "none"}}  # fmt: skip
    config = make_site(tmp_path, 1, schedule=FAST, mail=mail,
                       observability={"listen": f"127.0.0.1:{http_port}"})  # fmt: skip
    with daemon(config, tmp_path / "run.log") as syncd:
        syncd.wait_for("mail.unavailable", timeout=30)
        wait_until(lambda: healthz(http_port)[0] == 503, 30, syncd.describe)
        assert "mail unavailable" in str(healthz(http_port)[1]["health"])
        seen = _cycles(syncd)
        wait_until(lambda: _cycles(syncd) >= seen + 3, 30, syncd.describe)
        assert len(syncd.named("mail.unavailable")) == 1, "said once, not every cycle"
        assert _mails(tmp_path) == [("1", "pending")]
        with _smtp_on(smtp_port, Recorder(defer=1)) as smtp:
            # The mail's retry time (a minute on) passes: the clock moves on, not the test.
            _retry_now(tmp_path)
            wait_until(lambda: smtp.handler.defer == 0, 30, syncd.describe)  # the 451
            wait_until(lambda: _deferrals(syncd) == 2, 30, syncd.describe)
            assert _mails(tmp_path) == [("1", "pending")], "a 451 keeps it pending"
            assert len(syncd.named("mail.unavailable")) == 1, "still the same outage"
            _retry_now(tmp_path)
            wait_until(lambda: len(smtp.handler.accepted) == 1, 30, syncd.describe)
            syncd.wait_for("mail.recovered", timeout=30)
            wait_until(lambda: healthz(http_port)[0] == 200, 30, syncd.describe)
            seen = _cycles(syncd)
            wait_until(lambda: _cycles(syncd) >= seen + 2, 30, syncd.describe)
            assert len(smtp.handler.accepted) == 1, "sent once, not again"
        assert syncd.stop() == 0
    assert _mails(tmp_path) == [("1", "sent")]
    assert len(syncd.named("mail.recovered")) == 1
    assert len(syncd.named("mail.unavailable")) == 1


def _deferrals(syncd: DaemonProcess) -> int:
    return len(syncd.named("mail.deferred"))


def _retry_now(directory: Path) -> None:
    engine = sa.create_engine(_state(directory))
    try:
        with engine.begin() as conn:
            conn.exec_driver_sql("UPDATE syncd_outbox SET not_before = '2000-01-01 00:00:00.000000'"
                                 " WHERE status = 'pending'")  # fmt: skip
    finally:
        engine.dispose()


def test_a_state_store_locked_by_another_process_delays_a_cycle_and_nothing_else(
    tmp_path: Path,
) -> None:
    """Another process holds the SQLite state store's write lock for 5 s: the daemon's
    cycle waits for it (no error, no crash), then applies the ERP change made meanwhile;
    /healthz stays readable and is 200 after."""
    port = free_port()
    config = make_site(tmp_path, 1, schedule=FAST, mail={"send_delay": "0s"},
                       observability={"listen": f"127.0.0.1:{port}"})  # fmt: skip
    with daemon(config, tmp_path / "run.log") as syncd:
        wait_until(lambda: healthz(port)[0] == 200, 30, syncd.describe)
        holder = sqlite3.connect(tmp_path / "state.db", timeout=30, isolation_level=None)
        try:
            holder.execute("BEGIN IMMEDIATE")
            edit_erp(tmp_path, lambda w: w.add_many([contractor(2)]))
            before = _cycles(syncd)
            time.sleep(5)  # the lock is the fault under test: held for over two intervals
            assert healthz(port)[0] in (200, 503), "/healthz answers while the store is locked"
            assert _cycles(syncd) <= before + 1, "no cycle got through the lock"
        finally:
            holder.execute("ROLLBACK")
            holder.close()
        wait_until(lambda: "k2@firma.pl" in _logins(tmp_path), 60, syncd.describe)
        wait_until(lambda: _mails(tmp_path) == [("1", "sent"), ("2", "sent")], 30, syncd.describe)
        wait_until(lambda: healthz(port)[0] == 200, 30, syncd.describe)
        assert syncd.stop() == 0
    loud = _loud(syncd)
    assert set(loud) <= {"job.overrun"}, "waiting on a lock is no error"
    overran = [e["job"] for e in syncd.named("job.overrun")]
    assert len(overran) == len(set(overran)), "each job's overrun said once, not every tick"
