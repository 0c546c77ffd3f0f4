"""The daemon's job table: which job runs when, on which thread, with which safeguards."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from apscheduler.schedulers.background import BackgroundScheduler  # type: ignore[import-untyped]

from syncd.clock import utcnow
from syncd.config import Config
from syncd.daemon import Daemon
from syncd.daemon.jobs import DaemonContext, Jobs, cycle_lease_ttl, lock_wait
from syncd.daemon.leadership import Leadership, lease_ttl
from syncd.daemon.notify import Notifier
from syncd.store import StateStore
from tests.support import write_config


@pytest.fixture
def jobs(tmp_path: Path) -> Iterator[tuple[Jobs, BackgroundScheduler, Config]]:
    """A daemon's jobs scheduled (not started) from a 5-minute config, with a watchdog."""
    config = write_config(tmp_path, schedule={"interval": "5m", "full_reconcile": "0 3 * * *"})
    store = StateStore.open(config.state.url)
    daemon = Daemon(config.path, notifier=Notifier({"WATCHDOG_USEC": "60000000"}))
    leadership = Leadership(store, lease_ttl(config.schedule.interval))
    context = DaemonContext(
        config, leadership, daemon.notifier, daemon.metrics, daemon.stop, utcnow
    )
    scheduler = daemon.scheduler
    scheduler.start(paused=True)  # jobs get their settings, but none runs
    schedule = Jobs(context, services=None)  # type: ignore[arg-type] - no job runs here
    schedule.schedule(scheduler, config, first=True)
    yield schedule, scheduler, config
    scheduler.shutdown()
    store.close()


def test_every_job_is_single_instance_coalesced_and_bounded(
    jobs: tuple[Jobs, BackgroundScheduler, Config],
) -> None:
    """Cycles, mail and housekeeping share the one work thread; each job runs one instance
    at a time, coalesces missed runs, and gives up on a run that is too late."""
    _, scheduler, _ = jobs
    table = {job.id: job for job in scheduler.get_jobs()}
    assert set(table) == {"cycle", "full", "mail", "housekeeping", "keeper", "watchdog"}
    for job in table.values():
        assert (job.max_instances, job.coalesce) == (1, True)
    work = {name for name, job in table.items() if job.executor == "work"}
    assert work == {"cycle", "full", "mail", "housekeeping"}
    assert table["cycle"].trigger.interval == timedelta(minutes=5)
    assert table["cycle"].misfire_grace_time == 300
    assert str(table["full"].trigger).startswith(
        "cron[month='*', day='*', day_of_week='*', hour='3'"
    )
    assert table["full"].misfire_grace_time == 3600
    assert table["mail"].trigger.interval == timedelta(minutes=1)
    assert table["keeper"].trigger.interval == timedelta(minutes=5) / 3
    assert table["watchdog"].trigger.interval == timedelta(seconds=30)


def test_short_intervals_mail_after_each_cycle_and_reschedule_on_reload(
    jobs: tuple[Jobs, BackgroundScheduler, Config], tmp_path: Path
) -> None:
    """With an interval of a minute or less the cycle job sends the mail itself (no separate
    mail job), and a reload replaces the triggers in place."""
    schedule, scheduler, _ = jobs
    faster = write_config(tmp_path, schedule={"interval": "30s", "full_reconcile": "15 2 * * *"})
    schedule.schedule(scheduler, faster, first=False)
    table = {job.id: job for job in scheduler.get_jobs()}
    assert "mail" not in table
    assert table["cycle"].trigger.interval == timedelta(seconds=30)
    assert "hour='2'" in str(table["full"].trigger)


def test_lease_lifetimes_follow_the_interval() -> None:
    """The cycle lease lives one interval (at least 10 s); a daemon waits for a manual sync
    at most half an interval (at most 5 s), so SIGTERM is never held up long."""
    assert cycle_lease_ttl(timedelta(minutes=5)) == timedelta(minutes=5)
    assert cycle_lease_ttl(timedelta(seconds=2)) == timedelta(seconds=10)
    assert lock_wait(timedelta(seconds=2)) == timedelta(seconds=1)
    assert lock_wait(timedelta(minutes=5)) == timedelta(seconds=5)
