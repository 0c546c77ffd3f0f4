"""``syncd run`` through outages: the ERP database refusing connections, the SQL portal's
login revoked or its write rights taken away, the SMTP server down then answering 451 (and
one mail greylisted, which is no outage), the state store locked by another process.

In each the daemon keeps running, loses nothing and sends nothing twice, says so ONCE in
the log (the repeats are debug lines, not shown) and in /healthz (503 while it lasts), and
recovers by itself when the service returns. Intervals are 2 seconds; every wait is on an
event with a generous deadline.
"""

from __future__ import annotations

import sqlite3
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from email import policy
from email.parser import BytesParser
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from tests.conftest import PG_ADMIN_URL
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
from tests.smtp_server import Recorder, Server, authenticate, free_port, running

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


def _outage_lines(syncd: DaemonProcess) -> list[str]:
    """``_loud`` without ``job.overrun``: a busy machine may make a 2 s cycle overrun."""
    return [event for event in _loud(syncd) if event != "job.overrun"]


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
        assert _outage_lines(syncd) == ["cycle.unavailable"]
        erp_connections(pg_url, allow=True)
        syncd.wait_for("cycle.recovered", timeout=30)
        wait_until(lambda: healthz(port)[0] == 200, 30, syncd.describe)
        wait_until(lambda: len(_mails(tmp_path)) == 3, 30, syncd.describe)
        wait_until(lambda: {s for _, s in _mails(tmp_path)} == {"sent"}, 30, syncd.describe)
        assert syncd.stop() == 0
    assert _logins(tmp_path) == {"k1@firma.pl", "k2@firma.pl", "k3@firma.pl"}
    assert len(syncd.named("cycle.recovered")) == 1
    assert _outage_lines(syncd) == ["cycle.unavailable"]
    assert syncd.proc.returncode == 0


ADDED = 30  # contractors the ERP adds while the portal is out: each would be a create


@contextmanager
def _portal_role(pg_url: str) -> Iterator[tuple[str, str]]:
    """The portal database reached through a login role of its own, as a real portal's
    would be: yields (portal url, role); the role and what it owns go afterwards."""
    role = f"syncd_portal_{uuid.uuid4().hex[:8]}"
    _pg(PG_ADMIN_URL, f'CREATE ROLE "{role}" LOGIN')
    _pg(pg_url, f'GRANT ALL ON SCHEMA public TO "{role}"')
    url = sa.make_url(pg_url).set(username=role).render_as_string(hide_password=False)
    try:
        yield url, role
    finally:
        _pg(PG_ADMIN_URL, f'ALTER ROLE "{role}" LOGIN')
        _terminate(role)
        _pg(pg_url, f'DROP OWNED BY "{role}"')
        _pg(PG_ADMIN_URL, f'DROP ROLE "{role}"')


def _pg(url: str, *statements: str) -> None:
    """Statements run as the PostgreSQL superuser (in ``url``'s database)."""
    superuser = sa.make_url(url).set(username=sa.make_url(PG_ADMIN_URL).username)
    admin = sa.create_engine(superuser, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            for statement in statements:
                conn.exec_driver_sql(statement)
    finally:
        admin.dispose()


def _terminate(role: str) -> None:
    """Cut every connection the role holds (the pool's idle ones included)."""
    admin = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(
                sa.text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                        "WHERE usename = :role"), {"role": role},
            )  # fmt: skip
    finally:
        admin.dispose()


def _portal_login(role: str, *, allow: bool) -> None:
    """Revoke the portal role's login and cut its connections, or give the login back."""
    _pg(PG_ADMIN_URL, f'ALTER ROLE "{role}" {"LOGIN" if allow else "NOLOGIN"}')
    if not allow:
        _terminate(role)


def _portal_writes(pg_url: str, role: str, *, allow: bool) -> None:
    """Take the portal role's right to write its tables away (it still reads), or give it back."""
    rights, tables = "INSERT, UPDATE, DELETE", "b2b_account, b2b_contact"
    if allow:
        _pg(pg_url, f'GRANT {rights} ON {tables} TO "{role}"')
    else:
        _pg(pg_url, f'REVOKE {rights} ON {tables} FROM "{role}"')


def _expected_logins(count: int) -> set[str]:
    return {f"k{i}@firma.pl" for i in range(1, count + 1)}


def _delivered(directory: Path) -> Counter[str]:
    """How many mails each recipient got (the file transport's .eml files)."""
    parser = BytesParser(policy=policy.default)
    return Counter(
        str(parser.parsebytes(path.read_bytes())["To"])
        for path in (directory / "outbox").glob("*.eml")
    )


def _blamed_records(directory: Path) -> list[tuple[str, ...]]:
    """Backoff and quarantine rows: records syncd holds responsible for a failure."""
    return query(_state(directory), "SELECT contractor_key FROM syncd_record_backoff")


def _portal_outage_then_recovery(
    tmp_path: Path, pg_url: str, outage: Callable[[str, bool], None]
) -> tuple[DaemonProcess, str]:
    """Two contractors synced, then ``outage(role, False)`` while the ERP adds ``ADDED``
    more, three more cycles in it, then ``outage(role, True)``; returns the stopped
    daemon and the error it logged. Asserts what every portal outage must hold.

    bcrypt at 4 rounds: with a 2 s interval a mail run has 1 s, and 30 hashes at the
    default 12 rounds take longer than that on a busy 2-core machine."""
    port, total = free_port(), 2 + ADDED
    with _portal_role(pg_url) as (portal, role):
        config = make_site(tmp_path, 2, schedule=FAST, mail={"send_delay": "0s"},
                           portal={"url": portal, "password_cost": 4},
                           observability={"listen": f"127.0.0.1:{port}"})  # fmt: skip
        with daemon(config, tmp_path / "run.log") as syncd:
            wait_until(lambda: healthz(port)[0] == 200, 30, syncd.describe)
            wait_until(lambda: len(_delivered(tmp_path)) == 2, 30, syncd.describe)
            outage(role, False)
            edit_erp(tmp_path, lambda w: w.add_many(contractor(i) for i in range(3, total + 1)))
            wait_until(lambda: healthz(port)[0] == 503, 30, syncd.describe)
            assert "portal" in str(healthz(port)[1]["health"])
            down = _cycles(syncd, "unavailable")
            wait_until(lambda: _cycles(syncd, "unavailable") >= down + 3, 30, syncd.describe)
            (said,) = syncd.named("cycle.unavailable")  # once, not every cycle
            assert _outage_lines(syncd) == ["cycle.unavailable"], "no record.failed, quarantine"
            assert _blamed_records(tmp_path) == [], "no record blamed for the portal's outage"
            assert syncd.proc.poll() is None
            outage(role, True)
            syncd.wait_for("cycle.recovered", timeout=30)
            wait_until(lambda: healthz(port)[0] == 200, 30, syncd.describe)
            wait_until(lambda: len(_delivered(tmp_path)) == total, 30, syncd.describe)
            seen = _cycles(syncd)
            wait_until(lambda: _cycles(syncd) >= seen + 2, 30, syncd.describe)
            assert syncd.stop() == 0
        rows = query(portal, "SELECT login, status FROM b2b_account")
    assert {login for login, _ in rows} == _expected_logins(total)
    assert {status for _, status in rows} == {"active"}
    assert _delivered(tmp_path) == Counter(_expected_logins(total)), "one activation mail each"
    assert [s for _, s in _mails(tmp_path)] == ["sent"] * total
    assert _blamed_records(tmp_path) == []
    assert _outage_lines(syncd) == ["cycle.unavailable"]
    assert len(syncd.named("cycle.recovered")) == 1
    return syncd, str(said["error"])


@pytest.mark.postgres
def test_the_portal_login_revoked_is_one_outage_said_once_and_recovered_from(
    tmp_path: Path, pg_url: str
) -> None:
    """The SQL portal's login role is made NOLOGIN and its connections cut while the ERP
    adds 30 contractors: one cycle.unavailable line, /healthz 503, nobody in backoff or
    quarantine; the login back: one cycle.recovered, every account created and activated,
    one activation mail each, without a restart."""
    _, error = _portal_outage_then_recovery(
        tmp_path, pg_url, lambda role, allow: _portal_login(role, allow=allow)
    )
    assert "cannot reach the portal" in error
    assert "not permitted to log in" in error


@pytest.mark.postgres
def test_the_portal_refusing_every_write_is_one_portal_failure_not_30_record_failures(
    tmp_path: Path, pg_url: str
) -> None:
    """The portal's role may still read but no longer write (privileges revoked, as a bad
    credential would do): the 30 creates of the cycle are one portal failure, said once,
    no record marked failed or put into backoff; the rights back, all 30 created and
    mailed once."""
    syncd, error = _portal_outage_then_recovery(
        tmp_path, pg_url, lambda role, allow: _portal_writes(pg_url, role, allow=allow)
    )
    assert "permission denied" in error
    failed = [e for e in syncd.named("sync.finished") if e["status"] == "unavailable"]
    assert len(failed) >= 3
    assert all(e["created"] == ADDED and e["failed"] == 0 for e in failed), "applied, not failed"


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


class _Greylisting(Recorder):
    """An SMTP server that greylists some recipients: 450 to their RCPT, the rest served."""

    def __init__(self, greylisted: set[str]) -> None:
        super().__init__()
        self.greylisted = greylisted

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: Any
    ) -> str:
        if address in self.greylisted:
            return f"450 4.2.0 <{address}>: Recipient address rejected: Greylisted, try later"
        return await super().handle_RCPT(server, session, envelope, address, options)


def test_one_greylisted_mail_is_no_outage_and_goes_out_once_later(tmp_path: Path) -> None:
    """The SMTP server answers 450 to the only due mail's recipient (greylisting) while the
    session itself works: the mail waits for its retry time, but the server is not down, so
    no mail.unavailable line and /healthz stays 200; later it goes out exactly once."""
    http_port = free_port()
    handler = _Greylisting({"k1@firma.pl"})
    with running(handler) as smtp:
        mail = {"transport": "smtp", "send_delay": "0s",
                "smtp": {"host": "127.0.0.1", "port": smtp.port, "security": "none"}}  # fmt: skip
        config = make_site(tmp_path, 1, schedule=FAST, mail=mail,
                           observability={"listen": f"127.0.0.1:{http_port}"})  # fmt: skip
        with daemon(config, tmp_path / "run.log") as syncd:
            syncd.wait_for("mail.deferred", timeout=30)
            seen = _cycles(syncd)
            wait_until(lambda: _cycles(syncd) >= seen + 2, 30, syncd.describe)
            assert healthz(http_port)[0] == 200, healthz(http_port)[1]
            assert syncd.named("mail.unavailable") == []
            assert _mails(tmp_path) == [("1", "pending")]
            handler.greylisted.clear()
            _retry_now(tmp_path)
            wait_until(lambda: _mails(tmp_path) == [("1", "sent")], 30, syncd.describe)
            seen = _cycles(syncd)
            wait_until(lambda: _cycles(syncd) >= seen + 2, 30, syncd.describe)
            assert syncd.stop() == 0
    assert len(handler.accepted) == 1, "sent once"
    assert set(_outage_lines(syncd)) == {"mail.deferred"}
    assert syncd.named("mail.unavailable") == syncd.named("mail.recovered") == []
