"""The daemon's jobs: what runs on each schedule, and how each one is scheduled.

Every job on the ``work`` thread checks the stop flag first (jobs queued behind the one in
hand when SIGTERM came return at once) and the lead (a standby does nothing but try to take
it), and never lets an exception escape: a failed job is logged and the next run comes.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import structlog
from apscheduler.schedulers.base import BaseScheduler  # type: ignore[import-untyped]
from apscheduler.triggers.cron import CronTrigger  # type: ignore[import-untyped]
from apscheduler.triggers.interval import IntervalTrigger  # type: ignore[import-untyped]

from syncd.config import Config
from syncd.cycle import CycleRequest, CycleResult, run_cycle
from syncd.daemon.housekeeping import housekeep
from syncd.daemon.leadership import Leadership, lease_ttl
from syncd.daemon.metrics import Metrics
from syncd.daemon.notify import Notifier
from syncd.daemon.outages import Outages
from syncd.errors import ExitCode, LockUnavailable, UnavailableError
from syncd.lease import Lease
from syncd.wiring import Services

log = structlog.get_logger(__name__)

MIN_CYCLE_LEASE_TTL = timedelta(seconds=10)
MAX_MAIL_PERIOD = timedelta(minutes=1)
HOUSEKEEPING_AT = {"hour": 4, "minute": 17}  # local time, away from the 03:00 full reconcile

_STATUS_OF_EXIT = {
    ExitCode.OK: "ok",
    ExitCode.REMOVALS_HELD: "held",
    ExitCode.RECORDS_FAILED: "failed",
    ExitCode.UNAVAILABLE: "unavailable",
}


def cycle_lease_ttl(interval: timedelta) -> timedelta:
    """The ``cycle`` lease's ttl in the daemon: one interval, at least 10 s.

    It is renewed at every batch of 500 records and every 5,000 rows read; a daemon killed
    in mid-cycle holds others up for at most this, so a standby still takes over within
    two intervals. (The floor only matters for intervals under 10 s, i.e. tests; ``syncd
    sync`` from the command line keeps the 2-minute ttl of ``syncd.cycle.LEASE_TTL``.)
    """
    return max(interval, MIN_CYCLE_LEASE_TTL)


def lock_wait(interval: timedelta) -> timedelta:
    """How long a daemon cycle waits for a manual ``syncd sync`` to finish: short, so that
    SIGTERM is never held up long; the cycle after it simply runs at the next tick."""
    return min(interval / 2, timedelta(seconds=5))


def _seconds(duration: timedelta) -> float:
    return max(duration.total_seconds(), 0.1)


@dataclass(slots=True)
class DaemonContext:
    """What the jobs need of their daemon, and nothing else: the daemon swaps ``config``
    on a reload; the jobs never reach back into the daemon itself."""

    config: Config
    leadership: Leadership
    notifier: Notifier
    metrics: Metrics
    stop: threading.Event
    clock: Callable[[], datetime]


class Jobs:
    """The job functions of one daemon, and the schedule that runs them."""

    def __init__(self, context: DaemonContext, services: Services) -> None:
        self.daemon = context
        self.services = services
        self.status_line = "starting"
        self.outages = Outages()  # said once in the log; /healthz reads it

    # -- scheduling ---------------------------------------------------------------------

    def schedule(self, scheduler: BaseScheduler, config: Config, *, first: bool) -> None:
        """(Re)schedule every job from ``config``; on start, the first cycle runs at once."""
        interval = config.schedule.interval
        mail_every = min(interval, MAX_MAIL_PERIOD)
        keep_every = lease_ttl(interval) / 3
        work: dict[str, Any] = {"executor": "work", "replace_existing": True}
        start: dict[str, Any] = {"next_run_time": self.daemon.clock()} if first else {}
        scheduler.add_job(
            self._guarded("cycle", self.light), IntervalTrigger(seconds=_seconds(interval)),
            id="cycle", misfire_grace_time=max(1, int(interval.total_seconds())), **work, **start,
        )  # fmt: skip
        full = CronTrigger.from_crontab(config.schedule.full_reconcile)
        scheduler.add_job(
            self._guarded("full", self.full), full, id="full", misfire_grace_time=3600, **work
        )
        if interval > MAX_MAIL_PERIOD:
            # Every light cycle sends what is due; with long intervals mail due in between
            # (mail.send_delay after a create) goes out within a minute anyway.
            scheduler.add_job(
                self._guarded("mail", self.mail), IntervalTrigger(seconds=_seconds(mail_every)),
                id="mail", misfire_grace_time=max(1, int(mail_every.total_seconds())), **work,
            )  # fmt: skip
        elif scheduler.get_job("mail") is not None:
            scheduler.remove_job("mail")
        bounces = config.mail.bounces
        if bounces.host is not None:
            scheduler.add_job(
                self._guarded("bounces", self.bounces),
                IntervalTrigger(seconds=_seconds(bounces.interval)), id="bounces",
                misfire_grace_time=max(1, int(bounces.interval.total_seconds())), **work,
            )  # fmt: skip
        elif scheduler.get_job("bounces") is not None:
            scheduler.remove_job("bounces")
        scheduler.add_job(
            self._guarded("housekeeping", self.housekeeping), CronTrigger(**HOUSEKEEPING_AT),
            id="housekeeping", misfire_grace_time=6 * 3600, **work,
        )  # fmt: skip
        scheduler.add_job(
            self._guarded("keeper", self.daemon.leadership.renew),
            IntervalTrigger(seconds=_seconds(keep_every)), id="keeper", replace_existing=True,
            misfire_grace_time=None,
        )  # fmt: skip
        watchdog = self.daemon.notifier.watchdog_interval
        if watchdog is not None and first:
            self.daemon.notifier.watchdog()
            scheduler.add_job(
                self.daemon.notifier.watchdog, IntervalTrigger(seconds=_seconds(watchdog)),
                id="watchdog", misfire_grace_time=None,
            )  # fmt: skip

    def cycle_now(self, scheduler: BaseScheduler) -> None:
        """SIGUSR1: queue a cycle on the work thread (after the job in hand, if any)."""
        log.info("daemon.cycle_requested", signal="SIGUSR1")
        scheduler.add_job(
            self._guarded("now", self.light), id="now", executor="work", replace_existing=True,
            misfire_grace_time=None,
        )  # fmt: skip

    def _guarded(self, name: str, job: Callable[[], None]) -> Callable[[], None]:
        def guarded() -> None:
            if self.daemon.stop.is_set():
                return
            try:
                job()
            except Exception:
                log.exception("job.failed", job=name)

        guarded.__name__ = guarded.__qualname__ = f"syncd.{name}"
        return guarded

    # -- the jobs -----------------------------------------------------------------------

    def light(self) -> None:
        """The light cycle (ERP against the state store), then the mail it made due."""
        if self._lead() and self._cycle(full=False):
            self.mail()

    def full(self) -> None:
        """The full reconcile: also reads the portal's listing and repairs drift."""
        if self._lead() and self._cycle(full=True):
            self.mail()

    def mail(self) -> None:
        """Send the mail that is due (the mailer retries and backs off by itself)."""
        if not self.daemon.leadership.leading or self.daemon.stop.is_set():
            return
        from syncd.mail.mailer import MailerOptions, deliver_due

        # send_due_mail's own lease lives 2 minutes; the daemon's lives one interval, so a
        # daemon killed while mailing does not hold its successor up for longer than that.
        interval = self.daemon.config.schedule.interval
        lease = Lease(self.services.store, clock=self.services.clock, ttl=cycle_lease_ttl(interval))
        try:
            lease.acquire(wait=lock_wait(interval))
        except LockUnavailable as error:
            log.info("mail.lease_busy", error=str(error))  # the next run sends it
            return
        try:
            # At most half an interval: an SMTP server down must not hold the cycles up
            # while the run retries it; the outbox's retry time carries the mail on.
            budget = min(interval / 2, self.daemon.config.mail.run_budget)
            options = MailerOptions(budget=budget)
            report = deliver_due(
                self.services, stop_event=self.daemon.stop, heartbeat=lease.renew, options=options
            )
        finally:
            lease.release()
        deferred = any(o.result == "deferred" for o in report.outcomes)
        if report.count("sent"):
            self.outages.recovered("mail")
        elif deferred and report.stopped is not None and not self.daemon.stop.is_set():
            # The server itself is in trouble (no answer, 421, a refused login, two mails
            # in a row deferred): an outage. One mail deferred by a server that answered
            # (greylisting, a full mailbox) is that mail's business, as a refused record
            # is: it waits for its retry time (spec section 6) and the outage state stays.
            self.outages.failed("mail", report.stopped)
        self.daemon.metrics.observe_mail(sent=report.count("sent"), failed=report.failed)

    def bounces(self) -> None:
        """One pass over the bounce mailbox (``mail.bounces``); only the active daemon."""
        if not self.daemon.leadership.leading or self.daemon.stop.is_set():
            return
        from syncd.mail.bounces import run_pass

        try:
            run_pass(self.daemon.config, self.services.store)
        except UnavailableError as error:  # the mailbox is down: the next pass tries again
            log.warning("bounces.unavailable", error=str(error))

    def housekeeping(self) -> None:
        """Delete rows older than ``retention`` allows (only the active daemon does it)."""
        if self.daemon.leadership.leading:
            housekeep(self.services.store, self.daemon.config.retention, self.daemon.clock())

    def _lead(self) -> bool:
        try:
            leading = self.daemon.leadership.try_lead()
        except UnavailableError as error:
            # The state store is down: no cycle can run (nor be recorded); /healthz says so.
            self.outages.failed("cycle", f"state store unreachable: {error}")
            self._status(f"state store unreachable: {error}")
            return False
        if leading:
            self.daemon.metrics.leader.set(1)
            return True
        self.daemon.metrics.leader.set(0)
        active = self.daemon.leadership.active() or "another syncd"
        self._status(f"standby: {active} is active; taking over if it stops")
        return False

    def _cycle(self, *, full: bool) -> bool:
        """Run one cycle; False when it could not start (another process has the lease)."""
        config = self.daemon.config
        interval = config.schedule.interval
        request = CycleRequest(
            full=full,
            trigger="schedule",
            lock_wait=lock_wait(interval),
            lease_ttl=cycle_lease_ttl(interval),
            stop=self.daemon.stop,
        )
        kind = "full" if full else "sync"
        result = run_cycle(self.services, request)
        if result.lease_busy:
            self._status("waiting: another process (a manual sync?) is running a cycle")
            return False
        if result.exit_code == ExitCode.UNAVAILABLE:  # run_cycle leaves the saying to us
            self.outages.failed("cycle", result.error or "unavailable")
        else:
            self.outages.recovered("cycle")
        status = _STATUS_OF_EXIT.get(result.exit_code, "failed")
        if result.interrupted:
            status = "interrupted"
        self.daemon.metrics.observe_cycle(result, kind=kind, status=status, now=time.time())
        try:
            self.daemon.metrics.refresh_store_gauges(self.services.store)
        except UnavailableError as error:
            log.warning("metrics.refresh_failed", error=str(error))
        self._status(_summary_line(result, kind, status, self.daemon.clock()))
        return True

    def _status(self, line: str) -> None:
        self.status_line = line
        self.daemon.notifier.status(line)


def _summary_line(result: CycleResult, kind: str, status: str, now: datetime) -> str:
    """STATUS= for ``systemctl status``: what the last cycle did, in one line."""
    at = now.strftime("%H:%M:%S UTC")
    if result.plan is None:
        return f"last {kind} cycle {status} at {at}: {result.error or 'no plan'}"
    counts = result.plan.counts()
    failed = result.report.failed if result.report else 0
    return (
        f"last {kind} cycle {status} at {at}: created={counts['create'] + counts['adopt']} "
        f"updated={counts['update']} removed={counts['remove']} failed={failed} "
        f"conflicts={counts['conflict']} held={counts['held']} ({result.duration_s:.1f}s)"
    )
