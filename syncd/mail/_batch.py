"""One batch of the outbox mailer: passwords, one transport session, and the bookkeeping.

Private to ``syncd.mail``, whose docstring states the delivery guarantee this code keeps.
The number of state-store and portal round trips per batch is constant, except for the
one short commit per accepted mail that keeps the duplicate window small.
"""

from __future__ import annotations

import smtplib
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.message import EmailMessage
from email.utils import parseaddr
from typing import Any

import structlog

from connectors.base import OpOutcome, PortalOp, SetPassword, UpdateAccount
from syncd.config.base import Passwords
from syncd.errors import (
    MailTemplateError,
    PermanentMailError,
    PortalUnavailable,
    TemporaryMailError,
    UnavailableError,
)
from syncd.mail._dsn import outbox_message_id, return_path
from syncd.mail.render import PASSWORD_TEMPLATES, MailRenderer
from syncd.mail.transports import MailSession, MailTransport, RetryPolicy, send_with_retry
from syncd.model import AccountStatus
from syncd.passwords import generate_password
from syncd.recipient import choose_recipient
from syncd.store import AuditEntry, Binding, MailRow
from syncd.wiring import Services

log = structlog.get_logger(__name__)

RETRY_FIRST = timedelta(minutes=1)  # the next run after a failed one, doubling each time
RETRY_MAX = timedelta(hours=1)
GIVE_UP_AFTER = timedelta(days=3)  # a mail still not delivered this long after enqueueing
RENEW_EVERY_S = 20.0  # seconds between two renewals of the cycle lease during a batch
REMOVED = "the account was removed (or replaced) before the mail went out"


@dataclass(frozen=True, slots=True)
class MailOutcome:
    """What happened to one mail in a run: sent, failed, deferred or cancelled."""

    id: int
    key: str
    template: str
    recipient: str
    result: str
    error: str | None = None
    retry_at: datetime | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "key": self.key,
            "template": self.template,
            "to": self.recipient,
            "result": self.result,
            "error": self.error,
            "retry_at": self.retry_at.isoformat() if self.retry_at else None,
        }


def retry_time(now: datetime, attempts: int) -> datetime:
    """When a mail that failed temporarily ``attempts + 1`` times is tried again."""
    pause: timedelta = min(RETRY_FIRST * 2 ** min(attempts, 20), RETRY_MAX)
    return now + pause


def mail_context(row: MailRow, binding: Binding) -> dict[str, Any]:
    """The template variables: the enqueued ones refreshed from the binding, so that a mail
    that waited out ``send_delay`` shows the account's current login, name and salesperson."""
    fields = binding.fields
    context = dict(row.context)
    context["login"] = binding.login
    for name in ("name", "symbol", "owner_name", "owner_email"):
        if name in fields:
            context[name] = fields[name]
    if context.get("portal_url") is None:
        context.pop("portal_url", None)  # let the renderer use mail.portal_url
    return context


def _message_id(row: MailRow, sender: str) -> str:
    """A stable Message-ID, so that a mail sent twice (a crash in the duplicate window) is
    recognisably one mail; password mails get a fresh one because their content differs.
    Either names the outbox row, so that a bounce finds its mail (``syncd.mail.bounces``)."""
    domain = parseaddr(sender)[1].rpartition("@")[2] or "syncd.localdomain"
    fresh = row.template in PASSWORD_TEMPLATES
    return outbox_message_id(row.id, row.created_at, domain, fresh=fresh)


def _server_trouble(error: TemporaryMailError) -> bool:
    """Whether a temporary failure is the server's (no answer, 421 closing, a refused login
    while connecting) rather than this one mail's (a 4xx answer to it, e.g. greylisting)."""
    return error.code is None or error.code == 421 or error.code >= 500


class Batch:
    """Delivers one batch of due mail; ``run`` returns the outcomes and why it stopped."""

    def __init__(
        self,
        services: Services,
        transport: MailTransport,
        renderer: Callable[[str], MailRenderer],
        policy: RetryPolicy,
        *,
        deadline: float,
        monotonic: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] | None = None,
        stop_event: threading.Event | None = None,
        heartbeat: Callable[[], None] = lambda: None,
        typed: tuple[int, str] | None = None,
        actor: str = "syncd",
    ) -> None:
        self.actor = actor
        self.services = services
        self.store = services.store
        self.transport = transport
        self.renderer = renderer
        self.policy = policy
        self.deadline = deadline
        self.monotonic = monotonic
        self.sleep = sleep
        self.stop_event = stop_event
        self.heartbeat = heartbeat
        self.typed = typed
        self.now = services.clock()
        self.outcomes: list[MailOutcome] = []
        self.stopped: str | None = None
        self.failed: list[tuple[int, str]] = []
        self.deferred: list[tuple[int, str, datetime]] = []
        self.cancelled: list[tuple[int, str]] = []
        self.audits: list[AuditEntry] = []
        self.activate: list[UpdateAccount] = []
        self._renewed = monotonic()
        self._last_deferred = False  # two deferrals in a row: the server, not the mail

    def run(self, due: list[MailRow]) -> tuple[list[MailOutcome], str | None]:
        bindings = self.store.bindings_for({row.key for row in due})
        live: list[tuple[MailRow, Binding]] = []
        for row in due:
            binding = bindings.get(row.key)
            if binding is None or binding.account_id != row.account_id:
                self._settle(row, "cancelled", REMOVED)
            elif row.attempts and self.now - row.created_at > GIVE_UP_AFTER:
                self._settle(row, "failed", f"not delivered for {GIVE_UP_AFTER}: {row.last_error}")
            else:
                live.append((row, binding))
        passwords = self._set_passwords(live)
        try:
            self._send_all(live, passwords)
        finally:
            passwords.clear()
            self._write_back()
        return self.outcomes, self.stopped

    # -- steps ---------------------------------------------------------------------------

    def _set_passwords(self, live: list[tuple[MailRow, Binding]]) -> dict[int, str]:
        """Generate a password per password mail and hand them all to the portal in one
        call; the portal connector hashes or sends each as its portal needs.

        A mail whose password could not be set is dropped from ``live`` (failed, or left
        pending when the portal is unreachable). With ``portal.passwords: none`` the portal
        keeps passwords itself: nothing is set, and the mail says how to set one there."""
        wanted = [(row, b) for row, b in live if row.template in PASSWORD_TEMPLATES]
        if not wanted or self.services.config.portal.passwords is Passwords.NONE:
            return {}
        passwords: dict[int, str] = {}
        ops: list[PortalOp] = []
        for row, binding in wanted:
            password = self._typed_for(row) or generate_password()
            passwords[row.id] = password
            ops.append(SetPassword(row.key, binding.account_id, password))
        try:
            outcomes = self.services.portal.apply(ops)
        except PortalUnavailable as error:
            outcomes = [OpOutcome(op, error=error) for op in ops]
        for (row, _), outcome in zip(wanted, outcomes, strict=True):
            if outcome.ok:
                continue
            passwords.pop(row.id, None)
            live[:] = [item for item in live if item[0] is not row]
            if not isinstance(outcome.error, PortalUnavailable):
                self._settle(row, "failed", f"cannot set the password: {outcome.error}")
                continue
            self._stop(f"the portal is unavailable: {outcome.error}")
            if self._typed_for(row):
                self._settle(row, "failed", f"the portal is unavailable: {outcome.error}")
        return passwords

    def _send_all(self, live: list[tuple[MailRow, Binding]], passwords: dict[int, str]) -> None:
        if not live or self.stopped:
            return
        with self.transport.session() as session:
            for index, (row, binding) in enumerate(live):
                if self.stop_event is not None and self.stop_event.is_set():
                    self._stop("asked to stop")
                elif self.monotonic() >= self.deadline:
                    self._stop("the run's time budget is used up; the rest waits for the next run")
                if self.stopped:
                    return
                if not self._send_one(session, row, binding, passwords.pop(row.id, None)):
                    for later, _ in live[index + 1 :]:
                        self._settle(later, "deferred", self.stopped or "")
                    return
                self._renew()

    def _send_one(
        self, session: MailSession, row: MailRow, binding: Binding, password: str | None
    ) -> bool:
        """Render and send one mail; False when the rest of the batch must wait."""
        context = mail_context(row, binding)
        # Chosen now, not at enqueueing: a mail that waited goes where the ERP says today.
        chain = self.services.config.mail.recipient
        to = choose_recipient(chain, binding.fields, login=binding.login).address
        if password is not None:
            context["password"] = password
        try:
            renderer = self.renderer(row.language)
            message = renderer.render(
                row.template,
                to,
                context,
                message_id=_message_id(row, renderer.sender),
            )
            del context
            verp = self.services.config.mail.return_path
            if verp:  # the transport makes it the envelope sender (MAIL FROM)
                message["Return-Path"] = f"<{return_path(verp, row.id)}>"
            self._send(session, message)
        except PermanentMailError as error:
            self._settle(row, "failed", f"{error.code} {error.text}", to)
            return True
        except TemporaryMailError as error:
            self._settle(row, "deferred", str(error), to)
            if _server_trouble(error) or self._last_deferred:
                self._stop(f"the mail server is unavailable: {error}")
                return False
            self._last_deferred = True
            return True
        except MailTemplateError as error:
            self._settle(row, "deferred", str(error), to)
            self._stop(f"a mail template fails: {error}; run `syncd check-config`")
            return False
        except (ValueError, smtplib.SMTPException) as error:
            # Not an answer from the server but a mail smtplib cannot even send (say, a
            # non-ASCII address the server does not accept): failed, so it cannot block the
            # queue. The text comes from smtplib or the email package, never the body, but
            # the password is masked anyway.
            text = f"cannot be sent: {type(error).__name__}: {error}"
            if password:
                text = text.replace(password, "***")
            self._settle(row, "failed", text[:500], to)
            return True
        self._last_deferred = False
        self._record_sent(row, binding, to)
        return True

    def _send(self, session: MailSession, message: EmailMessage) -> None:
        send_with_retry(
            session,
            message,
            policy=self.policy,
            deadline=self.deadline,
            clock=self.monotonic,
            sleep=self.sleep,
            stop_event=self.stop_event,
        )

    def _record_sent(self, row: MailRow, binding: Binding, to: str) -> None:
        """The duplicate window closes here: one commit, right after the server's answer.
        The row keeps the address it went to, which a bounce must name."""
        password_mail = row.template in PASSWORD_TEMPLATES
        detail = {"mail_id": row.id, "template": row.template, "to": to}
        entry = AuditEntry(row.key, binding.login, "mail_sent", "ok", detail, self.actor)
        activate = row.key if password_mail else None
        try:
            self.store.record_sent(row.id, activate=activate, entry=entry, recipient=to)
        except UnavailableError:
            log.error("mail.sent_not_recorded", mail_id=row.id, contractor=row.key)
            raise
        self.outcomes.append(MailOutcome(row.id, row.key, row.template, to, "sent"))
        log.info("mail.sent", mail_id=row.id, template=row.template, contractor=row.key)
        if password_mail and binding.status == AccountStatus.PENDING:
            status = {"status": AccountStatus.ACTIVE.value}
            self.activate.append(UpdateAccount(row.key, binding.account_id, status))

    def _write_back(self) -> None:
        """The batch's undelivered mails in one transaction, then the portal's statuses."""
        if self.failed or self.deferred or self.cancelled or self.audits:
            self.store.settle_mails(
                failed=self.failed,
                deferred=self.deferred,
                cancelled=self.cancelled,
                audits=self.audits,
            )
        if self.activate:
            self._activate_in_portal()

    def _activate_in_portal(self) -> None:
        try:
            outcomes = self.services.portal.apply(self.activate)
        except PortalUnavailable as error:
            log.warning("mail.activation_deferred", count=len(self.activate), error=str(error))
            return
        for outcome in outcomes:
            if not outcome.ok:  # the full reconcile sets it from the binding later
                log.warning(
                    "mail.activation_deferred", contractor=outcome.op.key, error=str(outcome.error)
                )

    # -- bookkeeping ---------------------------------------------------------------------

    def _settle(self, row: MailRow, result: str, error: str, to: str | None = None) -> None:
        recipient = to or row.recipient
        retry_at = None
        if result == "deferred" and self._typed_for(row):
            result = "failed"  # the typed password is gone: retrying would need it
        if result == "deferred":
            retry_at = retry_time(self.now, row.attempts)
            self.deferred.append((row.id, error, retry_at))
            log.warning("mail.deferred", mail_id=row.id, contractor=row.key, error=error)
        elif result == "failed":
            self.failed.append((row.id, error))
            log.error("mail.failed", mail_id=row.id, contractor=row.key, error=error)
        else:
            self.cancelled.append((row.id, error))
            log.info("mail.cancelled", mail_id=row.id, contractor=row.key, reason=error)
        if result != "deferred":
            detail = {"mail_id": row.id, "template": row.template, "error": error}
            action = "mail_failed" if result == "failed" else "mail_cancelled"
            self.audits.append(AuditEntry(row.key, recipient, action, result, detail, self.actor))
        outcome = MailOutcome(row.id, row.key, row.template, recipient, result, error, retry_at)
        self.outcomes.append(outcome)

    def _typed_for(self, row: MailRow) -> str | None:
        """The password a person typed for this mail, if it is that mail."""
        if self.typed is not None and self.typed[0] == row.id:
            return self.typed[1]
        return None

    def _stop(self, why: str) -> None:
        if self.stopped is None:
            self.stopped = why

    def _renew(self) -> None:
        if self.monotonic() - self._renewed >= RENEW_EVERY_S:
            self.heartbeat()
            self._renewed = self.monotonic()
