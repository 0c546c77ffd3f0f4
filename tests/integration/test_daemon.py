"""``syncd run`` as a real subprocess on SQLite files: schedule, signals, sd_notify, health.

Intervals are 2 seconds (or an hour where a test must tell a signal's cycle from a
scheduled one); every wait has a hard timeout, and every daemon is killed when its test
ends, so a broken daemon fails the test instead of hanging the suite.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from tests.conftest import PG_ADMIN_URL
from tests.daemon_support import (
    NotifySocket,
    contractor,
    daemon,
    edit_erp,
    make_site,
    query,
    wait_until,
)
from tests.smtp_server import Recorder, free_port, running

FAST = {"interval": "2s"}
NOW = {"send_delay": "0s"}


def url(directory: Path, name: str) -> str:
    return f"sqlite:///{directory}/{name}.db"


def logins(directory: Path) -> set[str]:
    return {row[0] for row in query(url(directory, "portal"), "SELECT login FROM b2b_account")}


@pytest.fixture
def notify(tmp_path: Path) -> Iterator[NotifySocket]:
    """A bound NOTIFY_SOCKET the daemon reports to."""
    sock = NotifySocket(tmp_path / "notify.sock")
    yield sock
    sock.close()


def test_an_erp_change_is_applied_and_mailed_within_one_interval(tmp_path: Path) -> None:
    """With a 2 s interval, a contractor added to the ERP gets its account and activation
    mail within one interval, and SIGTERM then exits 0; the log is JSON lines on stdout."""
    config = make_site(tmp_path, 1, schedule=FAST, mail=NOW)
    with daemon(config, tmp_path / "run.log") as syncd:
        syncd.wait_for("sync.finished")
        assert logins(tmp_path) == {"k1@firma.pl"}
        edit_erp(tmp_path, lambda w: w.add_many([contractor(2)]))
        # Asserted on events with a generous deadline, never on a tight wall-clock bound: a
        # busy machine delays the scheduler, it does not change what the daemon does.
        wait_until(lambda: "k2@firma.pl" in logins(tmp_path), 60, syncd.describe)

        def created() -> list[int]:
            return [e["created"] for e in syncd.named("sync.finished") if e["created"]]

        wait_until(lambda: len(created()) == 2, 60, syncd.describe)  # its summary line
        assert created() == [1, 1]  # k1 at start, k2 by a scheduled cycle
        wait_until(lambda: len(list((tmp_path / "outbox").glob("*.eml"))) == 2, 60, syncd.describe)
        assert syncd.stop() == 0
    mails = sorted((tmp_path / "outbox").glob("*.eml"))
    assert any("k2@firma.pl" in m.read_text(errors="replace") for m in mails)
    assert (tmp_path / "run.stderr").read_text() == "", "every log line is JSON on stdout"


def test_usr1_runs_a_cycle_at_once_and_systemd_hears_everything(
    tmp_path: Path, notify: NotifySocket
) -> None:
    """READY=1 comes first, STATUS= carries the cycle's summary, WATCHDOG=1 pings at half
    of WATCHDOG_USEC, SIGUSR1 runs a cycle right away (the interval is an hour), and
    SIGTERM sends STOPPING=1 and exits 0."""
    config = make_site(tmp_path, 2, schedule={"interval": "1h"})
    env = {"NOTIFY_SOCKET": str(notify.path), "WATCHDOG_USEC": "1000000"}
    with daemon(config, tmp_path / "run.log", env) as syncd:
        ready = notify.wait_for("READY", "1")
        status = notify.wait_for("STATUS")
        assert notify.messages.index(ready) <= notify.messages.index(status)
        summary = wait_until_status(notify, "created=2")
        assert "last sync cycle ok" in summary
        syncd.wait_for("sync.finished")
        pings_before = count(notify, "WATCHDOG")
        wait_until(
            lambda: count(notify, "WATCHDOG") >= pings_before + 2, 30, lambda: "no WATCHDOG=1"
        )
        edit_erp(tmp_path, lambda w: w.add_many([contractor(3)]))
        syncd.signal(signal.SIGUSR1)
        # The interval is an hour: only SIGUSR1 can have started this cycle.
        wait_until(lambda: "k3@firma.pl" in logins(tmp_path), 60, syncd.describe)
        assert syncd.stop() == 0
        assert notify.wait_for("STOPPING", "1")
    finished = syncd.named("sync.finished")
    assert [e["created"] for e in finished] == [2, 1]
    assert all(e["run_id"] for e in finished)


def count(notify: NotifySocket, key: str) -> int:
    return sum(1 for message in notify.drain() if key in message)


def wait_until_status(notify: NotifySocket, text: str) -> str:
    def seen() -> bool:
        return any(text in m.get("STATUS", "") for m in notify.drain())

    wait_until(seen, 10, lambda: repr(notify.messages))
    return next(m["STATUS"] for m in notify.messages if text in m.get("STATUS", ""))


def test_sigterm_mid_cycle_leaves_no_half_applied_record_and_restart_carries_on(
    tmp_path: Path,
) -> None:
    """SIGTERM while 3,000 accounts are being created: the batch in hand commits, the daemon
    exits 0 within 10 s, portal, bindings and outbox agree, and the next start finishes."""
    config = make_site(tmp_path, 3000, schedule={"interval": "1h"})
    state, portal = url(tmp_path, "state"), url(tmp_path, "portal")

    def bindings() -> int:
        try:
            return int(query(state, "SELECT count(*) FROM syncd_binding")[0][0])
        except Exception:  # the table does not exist before the migrations ran
            return 0

    with daemon(config, tmp_path / "run1.log") as syncd:
        wait_until(lambda: bindings() > 0, 20, syncd.describe)
        started = time.monotonic()
        assert syncd.stop() == 0
        assert time.monotonic() - started < 10
    assert 0 < bindings() < 3000, "stopped between batches, not after the whole cycle"
    assert_consistent(state, portal, bindings())
    (status,) = query(state, "SELECT status FROM syncd_run")
    assert status == ("interrupted",)

    with daemon(config, tmp_path / "run2.log") as syncd:
        syncd.wait_for("sync.finished", timeout=30)
        assert syncd.stop() == 0
    assert bindings() == 3000
    assert_consistent(state, portal, 3000)


def assert_consistent(state: str, portal: str, accounts: int) -> None:
    """Every binding has its portal account and exactly one activation mail, and back."""
    bound = {r[0] for r in query(state, "SELECT account_id FROM syncd_binding")}
    in_portal = {str(r[0]) for r in query(portal, "SELECT id FROM b2b_account")}
    assert bound == in_portal
    assert len(bound) == accounts
    mails = query(state, "SELECT contractor_key, count(*) FROM syncd_outbox GROUP BY 1")
    assert len(mails) == accounts
    assert {n for _, n in mails} == {1}


def test_sigterm_interrupts_an_smtp_backoff(tmp_path: Path) -> None:
    """A server answering 451 puts the mailer into a backoff; SIGTERM ends it: exit 0 in
    well under the backoff, and the mail stays pending for the next start."""
    with running(Recorder(defer=1000)) as smtp:
        mail = {
            "transport": "smtp", "send_delay": "0s",
            "smtp": {"host": "127.0.0.1", "port": smtp.port, "security": "none"},
        }  # fmt: skip
        config = make_site(tmp_path, 1, schedule={"interval": "1h"}, mail=mail)
        with daemon(config, tmp_path / "run.log") as syncd:
            syncd.wait_for("sync.finished")
            wait_until(lambda: smtp.handler.defer < 1000, 10, syncd.describe)  # first 451
            started = time.monotonic()
            assert syncd.stop() == 0
            assert time.monotonic() - started < 5
    rows = query(url(tmp_path, "state"), "SELECT status FROM syncd_outbox")
    assert rows == [("pending",)]


def test_sighup_with_a_broken_config_keeps_the_old_one(tmp_path: Path) -> None:
    """SIGHUP with two mistakes in the file logs both and keeps syncing on the old config;
    a valid file on the next SIGHUP is applied."""
    config = make_site(tmp_path, 1, schedule=FAST)
    good = config.read_text()
    with daemon(config, tmp_path / "run.log") as syncd:
        syncd.wait_for("sync.finished")
        broken = good.replace("interval: 2s", "interval: often").replace(
            "max_removals: 100%", "max_removals: lots"
        )
        config.write_text(broken)
        syncd.signal(signal.SIGHUP)
        syncd.wait_for("config.reload_rejected")
        problems = [e["problem"] for e in syncd.named("config.invalid")]
        assert len(problems) == 2
        assert problems[0].startswith("schedule.interval: must be a duration")
        assert problems[1].startswith("safety.max_removals: must be a count")
        edit_erp(tmp_path, lambda w: w.add_many([contractor(2)]))
        wait_until(lambda: "k2@firma.pl" in logins(tmp_path), 6, syncd.describe)
        config.write_text(good.replace("feature: b2b", "feature: vip"))
        syncd.signal(signal.SIGHUP)
        syncd.wait_for("config.reloaded")
        # Nobody has the feature "vip": with max_removals 100% both accounts go.
        wait_until(lambda: logins(tmp_path) == set(), 6, syncd.describe)
        assert syncd.stop() == 0


@pytest.mark.postgres
def test_healthz_follows_the_erp_and_metrics_count_cycles(tmp_path: Path, pg_url: str) -> None:
    """/healthz is 200 while cycles succeed, 503 once the ERP (PostgreSQL) refuses
    connections (``syncd status`` agrees and exits 1), 200 again when it takes them back;
    /metrics counts the cycles by outcome and the records by action."""
    port = free_port()
    config = make_site(
        tmp_path, 2, erp=pg_url, schedule=FAST, observability={"listen": f"127.0.0.1:{port}"}
    )
    with daemon(config, tmp_path / "run.log") as syncd:
        wait_until(lambda: healthz(port)[0] == 200, 10, syncd.describe)
        erp_connections(pg_url, allow=False)
        wait_until(lambda: healthz(port)[0] == 503, 6, syncd.describe)
        assert "ended unavailable" in str(healthz(port)[1]["health"])
        status = subprocess.run(  # noqa: S603 - this interpreter, fixed argv
            [sys.executable, "-m", "syncd", "--config", str(config), "status", "--json"],
            capture_output=True, timeout=30, check=False,
        )  # fmt: skip
        assert status.returncode == 1, "syncd status agrees: unhealthy, exit 1"
        assert "ended unavailable" in json.loads(status.stdout)["health"]
        erp_connections(pg_url, allow=True)
        wait_until(lambda: healthz(port)[0] == 200, 6, syncd.describe)
        metrics = get(port, "/metrics")[1].decode()
        assert syncd.stop() == 0
    assert 'syncd_records_total{action="create",result="ok"} 2.0' in metrics
    assert 'syncd_cycles_total{kind="sync",status="unavailable"}' in metrics
    assert "syncd_last_success_timestamp_seconds" in metrics
    assert "cannot reach the Subiekt GT database" in syncd.named("cycle.unavailable")[0]["error"]


def erp_connections(erp_url: str, *, allow: bool) -> None:
    """Take the ERP database away (refuse and cut every connection), or give it back."""
    name = sa.make_url(erp_url).database
    admin = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.exec_driver_sql(f"ALTER DATABASE {name} ALLOW_CONNECTIONS {str(allow).lower()}")
            if not allow:
                conn.execute(
                    sa.text(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                        "WHERE datname = :name"
                    ),
                    {"name": name},
                )
    finally:
        admin.dispose()


def get(port: int, path: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=2) as reply:
            return reply.status, reply.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()
    except OSError:
        return 0, b"{}"


def healthz(port: int) -> tuple[int, dict[str, object]]:
    code, body = get(port, "/healthz")
    return code, json.loads(body or b"{}")
