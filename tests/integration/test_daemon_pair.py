"""One cycle at a time, everywhere: a manual ``syncd sync`` against a cycling daemon, and
two daemons on one PostgreSQL state store (active and hot standby), as real processes."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from syncd.daemon import cycle_lease_ttl
from syncd.store import StateStore
from tests.daemon_support import REPO, contractor, daemon, edit_erp, make_site, query, wait_until


def test_manual_sync_waits_for_the_daemon_cycle(tmp_path: Path) -> None:
    """``syncd sync`` started while the daemon creates 3,000 accounts waits for it: the two
    run rows, and the audit trail, show one cycle after the other, never overlapping."""
    config = make_site(tmp_path, 3000, schedule={"interval": "1h"})
    state = f"sqlite:///{tmp_path}/state.db"

    def bindings() -> int:
        try:
            return int(query(state, "SELECT count(*) FROM syncd_binding")[0][0])
        except Exception:  # not migrated yet
            return 0

    with daemon(config, tmp_path / "run.log") as syncd:
        wait_until(lambda: bindings() > 0, 20, syncd.describe)
        assert bindings() < 3000, "the daemon's cycle is still running"
        edit_erp(tmp_path, lambda w: w.add_many([contractor(9001)]))
        launched = datetime.now(UTC)
        manual = subprocess.run(  # noqa: S603 - this interpreter, fixed argv
            [sys.executable, "-m", "syncd", "--config", str(config), "sync", "--json"],
            capture_output=True, cwd=REPO, timeout=60, check=False,
        )  # fmt: skip
        assert manual.returncode == 0, manual.stderr.decode()
        assert syncd.stop() == 0
    store = StateStore.open(state)
    try:
        cli_run, daemon_run = store.last_runs(2)
    finally:
        store.close()
    assert (daemon_run.trigger, cli_run.trigger) == ("schedule", "cli")
    assert daemon_run.finished_at is not None
    assert launched < daemon_run.finished_at, "the manual sync came in mid-cycle ..."
    assert daemon_run.finished_at <= cli_run.started_at, "... and waited for it to finish"
    audit = query(
        state, "SELECT r.trigger, a.at FROM syncd_audit a JOIN syncd_run r USING (run_id)"
    )
    last_daemon = max(at for trigger, at in audit if trigger == "schedule")
    first_cli = min(at for trigger, at in audit if trigger == "cli")
    assert last_daemon <= first_cli
    assert {trigger for trigger, _ in audit} == {"schedule", "cli"}  # the new one came by cli


@pytest.mark.postgres
def test_standby_takes_over_within_two_intervals_when_the_active_one_dies(
    tmp_path: Path, pg_url: str
) -> None:
    """Two daemons on one PostgreSQL state store: only the first one cycles, the second waits
    as a standby; after kill -9 of the first, the second takes the lead within two intervals
    and applies an ERP change (at once, or once a cycle lease the first died holding lapses)."""
    config = make_site(tmp_path, 1, schedule={"interval": "2s"}, state={"url": pg_url})
    portal = f"sqlite:///{tmp_path}/portal.db"
    with ExitStack() as stack:  # both daemons are killed on the way out, whatever happens
        first = stack.enter_context(daemon(config, tmp_path / "a.log"))
        first.wait_for("sync.finished")
        second = stack.enter_context(daemon(config, tmp_path / "b.log"))
        second.wait_for("daemon.standby")
        count = len(first.named("mail.finished"))
        first.wait_for("mail.finished", count=count + 1)  # cycle and mail done: between ticks
        assert not second.named("sync.finished"), "the standby never runs a cycle"
        first.proc.send_signal(signal.SIGKILL)
        died = time.time()
        first.proc.wait(5)
        edit_erp(tmp_path, lambda w: w.add_many([contractor(2)]))
        (active,) = second.wait_for("daemon.active")
        wait_until(
            lambda: ("k2@firma.pl",) in query(portal, "SELECT login FROM b2b_account"),
            cycle_lease_ttl(timedelta(seconds=2)).total_seconds() + 60,
            second.describe,
        )
        assert second.stop() == 0
    took = datetime.fromisoformat(active["timestamp"]).timestamp() - died
    # The lease lapses two intervals (4 s) after the last renewal; the bound is generous so
    # that a busy machine cannot fail it, and the events above prove the order.
    assert 0 < took < 60
