"""The outbox mailer: sends the due mail of the state store's outbox (spec sections 2 and 6).

``send_due_mail(services)`` is what ``syncd sync`` calls after its cycle and what the
daemon's mail job calls on its schedule. It takes the cycle lease, so a cycle (or a support
action) never removes or changes an account while its mail is being sent, then works
through the due mail in batches of ``batch_size``, all over ONE transport session (one
SMTP connection for the whole run):

1. a mail whose binding is gone, or now points at another account, is **cancelled**;
2. for ``activation`` and ``password_reset`` a fresh password is generated (in memory
   only), its hash set on the portal (``portal.password_scheme``), one portal call per
   chunk of a few password mails per core, the next chunk's hashes computed (on every
   core) while this chunk's mails are sent (``syncd.mail._batch``);
3. each mail is rendered (to the account's *current* login, with its current name and
   salesperson) and handed to the server, temporary failures retried with exponential
   backoff (``send_with_retry``) within the run's time budget (``mail.run_budget``);
4. the moment the server has accepted it, one short state-store transaction marks the mail
   ``sent`` and, for a password mail, the binding ``activated`` (``pending`` becomes
   ``active``); the portal's status follows in one call at the end of the batch.

Delivery guarantee: at least once, and exactly once unless the process dies in the window
between the SMTP server's "250 queued" and the commit of step 4, one local transaction
of two statements (three for a password mail; typically a few ms on SQLite). At most ONE
mail is ever in that window: the commit runs on a helper thread while the next mail is
rendered and its data transferred, but the next mail's final "." (the moment the server
accepts it) waits for the commit (``syncd.mail._smtp``); a server discards data that
never ended, so a crash then costs only the one mail in the window. No log line or
portal call is in the window.
A mail that died in the window is sent again by the next run; for a password mail that
means a second mail with a *new* password (and a new hash), so only the newer password
works. A crash anywhere else loses nothing and duplicates nothing: before the hand-off
the mail is still pending, and after the commit it is ``sent``. A crash after step 4 but
before the portal's status update leaves the account ``pending`` in the portal while
syncd knows it is ``active``; the next full reconcile puts the portal right.

Failures: a 4xx answer, a timeout or a refused connection leaves the mail ``pending`` with a
later ``not_before`` (1 minute after the first failed run, doubling up to an hour) and the
error in ``last_error``; when the server itself is in trouble (no answer, 421, a refused
login, or two mails in a row deferred) the run ends and every other due mail of the batch
waits for the same retry time. A mail still undelivered 3 days after it was
enqueued fails for good. A 5xx answer marks the mail ``failed`` at once with the server's
answer, shown by ``mail list``, ``status`` and ``explain``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import structlog

from syncd.cycle import LEASE_TTL
from syncd.errors import ExitCode, UnavailableError
from syncd.lease import Lease
from syncd.mail._batch import OUT_OF_TIME, Batch
from syncd.mail._queue import StillDue, queue, still_due
from syncd.mail._rules import MailOutcome
from syncd.mail.render import MailRenderer, make_renderer
from syncd.mail.transports import MailTransport, RetryPolicy
from syncd.progress import NO_PROGRESS, Progress
from syncd.wiring import Services, make_transport

__all__ = [
    "AfterSync",
    "MailOutcome",
    "MailReport",
    "MailerOptions",
    "StillDue",
    "deliver_due",
    "drain_due",
    "mail_after_sync",
    "send_due_mail",
]

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class MailerOptions:
    """How hard one run tries; ``sleep`` and ``monotonic`` are injectable for tests."""

    policy: RetryPolicy = field(default_factory=RetryPolicy)
    budget: timedelta = timedelta(minutes=2)  # a run's retries end by then
    batch_size: int = 50
    chunk: int | None = None  # password mails per portal call (None: 3 per core)
    sleep: Callable[[float], None] | None = None  # None: time.sleep, or the stop event's wait
    monotonic: Callable[[], float] = time.monotonic


@dataclass(slots=True)
class MailReport:
    """What one run did with each mail it touched, and why it stopped early (if it did)."""

    outcomes: list[MailOutcome] = field(default_factory=list)
    stopped: str | None = None
    runs: int = 1  # runs of at most one time budget each (more with --until-done)
    left: StillDue | None = None  # the queue as the command left it (``syncd sync``)

    def count(self, result: str) -> int:
        return sum(1 for outcome in self.outcomes if outcome.result == result)

    @property
    def failed(self) -> int:
        """Mails refused for good in this run (a 5xx answer, or given up)."""
        return self.count("failed")

    def as_json(self) -> dict[str, Any]:
        """The ``mail`` part of ``sync --json``: counts, and every mail not sent."""
        results = ("sent", "failed", "deferred", "cancelled")
        document: dict[str, Any] = {result: self.count(result) for result in results}
        document["not_sent"] = [o.as_json() for o in self.outcomes if o.result != "sent"]
        document["stopped"] = self.stopped
        document["runs"] = self.runs
        if self.left is not None:
            document.update(self.left.as_json())
        return document

    def summary_line(self) -> str:
        counts = ", ".join(f"{r} {self.count(r)}" for r in ("sent", "failed", "deferred"))
        text = f"mail: {counts}, cancelled {self.count('cancelled')}"
        if self.runs > 1:
            text += f" in {self.runs} runs"
        return text + (f" (stopped: {self.stopped})" if self.stopped else "")


@dataclass(frozen=True, slots=True)
class AfterSync:
    """The mail part of ``syncd sync``: its JSON, its text lines and the final exit code."""

    document: dict[str, Any]
    text: str
    exit_code: ExitCode


def mail_after_sync(
    services: Services,
    cycle_exit: ExitCode,
    *,
    until_done: bool = False,
    stop_event: threading.Event | None = None,
    progress: Progress = NO_PROGRESS,
) -> AfterSync:
    """Send the due mail after a ``syncd sync`` cycle; decide the command's exit code.

    The cycle's own exit code wins when it is not 0. Otherwise a mail refused for good
    (5xx) in this run makes it 1, like a record that failed; mail only deferred (the SMTP
    server is down, 4xx) keeps it 0, because the mail is retried by itself and ``status``
    shows the queue. When the cycle was unavailable (exit 4: the ERP, portal, store or
    lock), no mail is sent: the daemon or the next ``sync`` sends it. The mail still due
    when the run stops (its time budget, ``mail.run_budget``, is used up) is counted, with
    who sends it and when; ``until_done`` runs again until no mail is due now
    (``drain_due``).
    """
    if cycle_exit == ExitCode.UNAVAILABLE:
        reason = "the cycle did not run; the mail waits for the next run"
        return AfterSync({"skipped": reason}, f"mail: not sent ({reason})\n", cycle_exit)
    try:
        report = drain_due(
            services, until_done=until_done, stop_event=stop_event, progress=progress
        )
        report.left = _left(services)
    except UnavailableError as error:
        unavailable = cycle_exit if cycle_exit != ExitCode.OK else ExitCode.UNAVAILABLE
        return AfterSync({"error": str(error)}, f"mail: not sent: {error}\n", unavailable)
    lines = [report.summary_line()]
    lines += [
        f"  {o.result:<9} {o.template:<14} to {o.recipient}: {o.error}"
        for o in report.outcomes
        if o.result in ("failed", "deferred")
    ]
    still = report.left.line() if report.left is not None else None
    if still:
        lines.append(still)
    failed = cycle_exit == ExitCode.OK and report.failed > 0
    exit_code = ExitCode.RECORDS_FAILED if failed else cycle_exit
    return AfterSync(report.as_json(), "\n".join(lines) + "\n", exit_code)


def _left(services: Services) -> StillDue:
    from syncd.status import next_cycle

    interval = services.config.schedule.interval
    now = services.clock()
    cycle_at = next_cycle(services.store.last_runs(), interval, now)
    daemon = datetime.fromisoformat(cycle_at) if cycle_at else None
    return still_due(services.store, interval=interval, daemon_cycle=daemon)


def drain_due(
    services: Services,
    *,
    until_done: bool = False,
    stop_event: threading.Event | None = None,
    progress: Progress = NO_PROGRESS,
    options: MailerOptions | None = None,
) -> MailReport:
    """One mail run of ``mail.run_budget``, or with ``until_done`` as many as it takes
    until no mail is due now.

    Each run takes and releases the cycle lease, so the daemon's cycle can run between
    two of them. The runs end early when one is stopped by anything but its budget
    (SIGTERM through ``stop_event``, the mail server or portal in trouble): mail deferred
    for a retry is not due now, so ``until_done`` never waits for its retry time.
    """
    options = options or MailerOptions(budget=services.config.mail.run_budget)
    progress.start("mail", queue(services.store).due)
    report = MailReport(runs=0)
    try:
        while True:
            run = send_due_mail(services, stop_event=stop_event, options=options, progress=progress)
            report.runs += 1
            report.outcomes.extend(run.outcomes)
            report.stopped = run.stopped
            if not until_done or run.stopped != OUT_OF_TIME or not run.outcomes:
                break
            log.info("mail.until_done", runs=report.runs, sent=report.count("sent"))
    finally:
        progress.finish("mail")
    return report


def send_due_mail(
    services: Services,
    *,
    transport: MailTransport | None = None,
    stop_event: threading.Event | None = None,
    limit: int | None = None,
    options: MailerOptions | None = None,
    lock_wait: timedelta = timedelta(minutes=10),
    progress: Progress = NO_PROGRESS,
) -> MailReport:
    """Send every due pending mail (at most ``limit``), holding the cycle lease meanwhile.

    Raises ``LockUnavailable`` when a cycle holds the lease for all of ``lock_wait``,
    ``UnavailableError`` when the state store cannot be reached; an unreachable SMTP server
    or portal is no exception: the mail stays pending and ``report.stopped`` says why.
    """
    lease = Lease(services.store, clock=services.clock, ttl=LEASE_TTL)
    lease.acquire(wait=lock_wait)
    try:
        return deliver_due(
            services,
            transport=transport,
            stop_event=stop_event,
            limit=limit,
            options=options,
            heartbeat=lease.renew,
            progress=progress,
        )
    finally:
        lease.release()


def deliver_due(
    services: Services,
    *,
    transport: MailTransport | None = None,
    stop_event: threading.Event | None = None,
    limit: int | None = None,
    options: MailerOptions | None = None,
    heartbeat: Callable[[], None] = lambda: None,
    key: str | None = None,
    typed: tuple[int, str] | None = None,
    actor: str = "syncd",
    progress: Progress = NO_PROGRESS,
) -> MailReport:
    """``send_due_mail`` for a caller that already holds the cycle lease (support actions).

    ``key`` limits the run to one contractor's mail; ``typed`` is (mail id, password) for a
    password a person chose: that mail carries it instead of a generated one, and is
    marked failed rather than retried if it cannot be delivered now (a retry would need
    the password, which is never stored). ``actor`` is who the audit trail names.
    ``progress`` hears of every mail settled (phase ``mail``).

    The whole run uses one transport session: the SMTP connection opens on the first
    mail and stays open across the batches (it is probed only after a pause).
    """
    options = options or MailerOptions()
    transport = transport or make_transport(services.config)
    deadline = options.monotonic() + options.budget.total_seconds()
    report = MailReport()
    renderers: dict[str, MailRenderer] = {}

    def renderer(language: str) -> MailRenderer:
        if language not in renderers:
            renderers[language] = make_renderer(services.config, language)
        return renderers[language]

    with transport.session() as session:
        while report.stopped is None:
            size = options.batch_size
            if limit is not None:
                size = min(size, limit - len(report.outcomes))
                if size <= 0:
                    break
            due = services.store.due_mails(limit=size, key=key)
            if not due:
                break
            batch = Batch(
                services,
                session,
                renderer,
                options.policy,
                deadline=deadline,
                monotonic=options.monotonic,
                sleep=options.sleep,
                stop_event=stop_event,
                heartbeat=heartbeat,
                typed=typed,
                actor=actor,
                chunk=options.chunk,
                on_mail=lambda: progress.advance("mail"),
                first=not report.outcomes,
            )
            outcomes, report.stopped = batch.run(due)
            report.outcomes.extend(outcomes)
            if len(due) < size:
                break
    log.info(
        "mail.finished",
        sent=report.count("sent"),
        failed=report.count("failed"),
        deferred=report.count("deferred"),
        cancelled=report.count("cancelled"),
        stopped=report.stopped,
    )
    return report
