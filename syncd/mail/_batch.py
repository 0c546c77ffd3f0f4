"""One batch of the outbox mailer: passwords, sending over the run's session, bookkeeping.

Private to ``syncd.mail``; ``syncd.mail.mailer``'s docstring states the delivery guarantee
this code keeps.

The number of state-store and portal round trips per batch is constant, except for the
one short commit per accepted mail that keeps the duplicate window small, and one portal
call per chunk of password mails. What became of each mail is kept by a ``Ledger``
(``syncd.mail._ledger``), which writes the undelivered ones back at the batch's end.

Password mails go through a two-stage pipeline: the batch is cut into chunks of a few
password mails per core (``chunk_size``); while the mails of chunk k are sent, one
background thread has the portal set the passwords of chunk k+1
(``syncd.mail._passwords``; the SQL portal hashes them on every core). So the first mail
leaves after one chunk's hashing, the SMTP session is fed as hashes complete, and the
cores never wait for the mail server. The plaintext passwords of at most two chunks are
in memory at a time, only in this process.
"""

from __future__ import annotations

import smtplib
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import timedelta
from email.message import EmailMessage

import structlog

from syncd.errors import (
    MailTemplateError,
    PermanentMailError,
    PortalUnavailable,
    TemporaryMailError,
    UnavailableError,
)
from syncd.mail._dsn import return_path
from syncd.mail._ledger import Ledger
from syncd.mail._passwords import PasswordsSet, set_passwords, setting_passwords
from syncd.mail._rules import (
    Live,
    MailOutcome,
    chunk_size,
    chunks,
    mail_context,
    message_id,
    server_trouble,
)
from syncd.mail.render import PASSWORD_TEMPLATES, MailRenderer
from syncd.mail.transports import MailSession, RetryPolicy, send_with_retry
from syncd.recipient import choose_recipient
from syncd.store import AuditEntry, Binding, MailRow
from syncd.wiring import Services

log = structlog.get_logger(__name__)

GIVE_UP_AFTER = timedelta(days=3)  # a mail still not delivered this long after enqueueing
RENEW_EVERY_S = 20.0  # seconds between two renewals of the cycle lease during a batch
REMOVED = "the account was removed (or replaced) before the mail went out"
OUT_OF_TIME = "the run's time budget is used up; the rest waits for the next run"


class Batch:
    """Delivers one batch of due mail; ``run`` returns the outcomes and why it stopped."""

    def __init__(
        self,
        services: Services,
        session: MailSession,
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
        chunk: int | None = None,
        on_mail: Callable[[], None] = lambda: None,
        first: bool = True,
    ) -> None:
        self.services = services
        self.store = services.store
        self.session = session
        self.renderer = renderer
        self.policy = policy
        self.deadline = deadline
        self.monotonic = monotonic
        self.sleep = sleep
        self.stop_event = stop_event
        self.heartbeat = heartbeat
        self.actor = actor
        self.chunk = chunk or chunk_size()
        self.first = first  # the run's first batch: its first mail goes whatever the budget
        self.now = services.clock()
        self.ledger = Ledger(now=self.now, actor=actor, typed=typed, on_mail=on_mail)
        self.stopped: str | None = None
        self._committer: ThreadPoolExecutor | None = None
        # The last accepted mail whose "sent" commit may still be running.
        self._recording: tuple[Future[None], MailRow, Binding, str] | None = None
        self._defer_rest = False  # the server is in trouble: the unsent rest waits
        self._renewed = monotonic()
        self._last_deferred = False  # two deferrals in a row: the server, not the mail

    def run(self, due: list[MailRow]) -> tuple[list[MailOutcome], str | None]:
        bindings = self.store.bindings_for({row.key for row in due})
        live: list[Live] = []
        for row in due:
            binding = bindings.get(row.key)
            if binding is None or binding.account_id != row.account_id:
                self.ledger.settle(row, "cancelled", REMOVED)
            elif row.attempts and self.now - row.created_at > GIVE_UP_AFTER:
                error = f"not delivered for {GIVE_UP_AFTER}: {row.last_error}"
                self.ledger.settle(row, "failed", error)
            else:
                live.append((row, binding))
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="sent") as committer:
            self._committer = committer
            try:
                self._deliver(live)
                self._sent_previous()
                if self._defer_rest:
                    for row, binding in live:
                        if row.id not in self.ledger.handled:
                            error = self.stopped or ""
                            self.ledger.settle(row, "deferred", error, self._to(binding))
            finally:
                if self._recording is not None:  # on the way out with an error: still wait
                    self._recording[0].exception()
                self.ledger.write_back(self.store, self.services.portal)
        return self.ledger.outcomes, self.stopped

    # -- steps ---------------------------------------------------------------------------

    def _deliver(self, live: list[Live]) -> None:
        """Send chunk by chunk, the next chunk's passwords being set meanwhile.

        The budget and SIGTERM are checked before the next chunk's passwords are set, so a
        password set on the portal is always mailed in this run unless the mail server
        fails: stopping costs at most one chunk's sending, and no customer finds their
        password changed without a mail that says so."""
        if not setting_passwords(self.services.config, live):
            self._send_chunk(live, {})
            return
        parts = list(chunks(live, self.chunk))
        following: Future[PasswordsSet] | None = None
        try:
            with ThreadPoolExecutor(max_workers=1, thread_name_prefix="passwords") as ahead:
                following = ahead.submit(self._passwords_for, parts[0])
                for index, part in enumerate(parts):
                    passwords = self._take(part, following.result())
                    following = None
                    try:
                        if index + 1 < len(parts) and not self._must_stop():
                            following = ahead.submit(self._passwords_for, parts[index + 1])
                        self._send_chunk(part, passwords)
                    finally:
                        passwords.clear()
                    if self._defer_rest or following is None:
                        return
        finally:
            if following is not None and following.exception() is None:
                following.result().passwords.clear()  # set, never mailed (the server failed)

    def _send_chunk(self, part: list[Live], passwords: dict[int, str]) -> None:
        """Send ``part``; a mail without a password is left pending once the run must stop,
        one whose password the portal already took is sent anyway.

        The next mail is rendered on a helper thread while this one is handed to the
        server and marked sent: rendering is CPU, sending and committing mostly wait, so
        the two overlap. The duplicate window does not grow: it is still this one mail's
        "250 queued" to its commit, with nothing else of this thread in between."""
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="render") as helper:
            upcoming: Future[EmailMessage] | None = None
            for index, (row, binding) in enumerate(part):
                password = passwords.pop(row.id, None)
                rendering = upcoming or helper.submit(self._render, row, binding, password)
                upcoming = None
                if index + 1 < len(part):
                    after, after_binding = part[index + 1]
                    upcoming = helper.submit(
                        self._render, after, after_binding, passwords.get(after.id)
                    )
                if password is None and self._must_stop():
                    continue
                if not self._send_one(self.session, row, binding, rendering, password):
                    self._defer_rest = True
                    return
                self._renew()

    def _passwords_for(self, part: list[Live]) -> PasswordsSet:
        """The background stage (``syncd.mail._passwords``): it changes nothing of
        ``self``, so the sending thread alone settles mails."""
        return set_passwords(self.services.portal, part, self.ledger.typed_for)

    def _take(self, part: list[Live], done: PasswordsSet) -> dict[int, str]:
        """The passwords the portal took; a mail whose password could not be set is dropped
        from ``part`` (failed, or left pending when the portal is unreachable)."""
        passwords = done.passwords
        for (row, _), outcome in zip(done.wanted, done.outcomes, strict=True):
            if outcome.ok:
                continue
            passwords.pop(row.id, None)
            part[:] = [item for item in part if item[0] is not row]
            if not isinstance(outcome.error, PortalUnavailable):
                self.ledger.settle(row, "failed", f"cannot set the password: {outcome.error}")
                continue
            self._stop(f"the portal is unavailable: {outcome.error}")
            if self.ledger.typed_for(row):
                self.ledger.settle(row, "failed", f"the portal is unavailable: {outcome.error}")
        return passwords

    def _must_stop(self) -> bool:
        """Whether the run must end now (SIGTERM, or its time is up); says why once.

        A run's time budget never stops its first mail, so every run makes progress and
        ``--until-done`` ends however small ``mail.run_budget`` is."""
        if self.stop_event is not None and self.stop_event.is_set():
            self._stop("asked to stop")
        elif self.monotonic() >= self.deadline and (self.ledger.handled or not self.first):
            self._stop(OUT_OF_TIME)
        return self.stopped is not None

    def _to(self, binding: Binding) -> str:
        """Where this account's mail goes (``mail.recipient``), chosen at send time, not at
        enqueueing: a mail that waited goes where the ERP says today."""
        chain = self.services.config.mail.recipient
        return choose_recipient(chain, binding.fields, login=binding.login).address

    def _render(self, row: MailRow, binding: Binding, password: str | None) -> EmailMessage:
        """The message of one mail; raises ``MailTemplateError`` or ``ValueError``."""
        context = mail_context(row, binding)
        if password is not None:
            context["password"] = password
        renderer = self.renderer(row.language)
        message = renderer.render(
            row.template, self._to(binding), context, message_id=message_id(row, renderer.sender)
        )
        del context
        verp = self.services.config.mail.return_path
        if verp:  # the transport makes it the envelope sender (MAIL FROM)
            message["Return-Path"] = f"<{return_path(verp, row.id)}>"
        return message

    def _send_one(
        self,
        session: MailSession,
        row: MailRow,
        binding: Binding,
        rendering: Future[EmailMessage],
        password: str | None,
    ) -> bool:
        """Send one rendered mail; False when the rest of the batch must wait."""
        to = self._to(binding)
        try:
            self._send(session, rendering.result())
        except PermanentMailError as error:
            self.ledger.settle(row, "failed", f"{error.code} {error.text}", to)
            return True
        except TemporaryMailError as error:
            self.ledger.settle(row, "deferred", str(error), to)
            if server_trouble(error) or self._last_deferred:
                self._stop(f"the mail server is unavailable: {error}")
                return False
            self._last_deferred = True
            return True
        except MailTemplateError as error:
            self.ledger.settle(row, "deferred", str(error), to)
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
            self.ledger.settle(row, "failed", text[:500], to)
            return True
        self._last_deferred = False
        self._sent_previous()  # in case the transport never called before_accept
        assert self._committer is not None
        future = self._committer.submit(self._commit_sent, row, binding, to)
        self._recording = (future, row, binding, to)
        self.ledger.handled.add(row.id)
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
            before_accept=self._sent_previous,
        )

    def _commit_sent(self, row: MailRow, binding: Binding, to: str) -> None:
        """The duplicate window closes here: one commit, right after the server's answer.

        It runs on the ``sent`` thread while the next mail is rendered and transferred;
        the next mail's final "." waits for it (``_sent_previous``), so at any moment at
        most one mail is accepted by the server and not yet marked sent. The row keeps
        the address it went to, which a bounce must name."""
        password_mail = row.template in PASSWORD_TEMPLATES
        detail = {"mail_id": row.id, "template": row.template, "to": to}
        entry = AuditEntry(row.key, binding.login, "mail_sent", "ok", detail, self.actor)
        activate = row.key if password_mail else None
        self.store.record_sent(row.id, activate=activate, entry=entry, recipient=to)

    def _sent_previous(self) -> None:
        """Wait for the previous mail's "sent" commit, then note it (outcome, log, portal
        status to update); raises its ``UnavailableError``. Called before the next mail
        can be accepted, and at the end of the batch."""
        if self._recording is None:
            return
        future, row, binding, to = self._recording
        self._recording = None
        try:
            future.result()
        except UnavailableError:
            log.error("mail.sent_not_recorded", mail_id=row.id, contractor=row.key)
            raise
        self.ledger.sent(row, binding, to)

    # -- bookkeeping ---------------------------------------------------------------------

    def _stop(self, why: str) -> None:
        if self.stopped is None:
            self.stopped = why

    def _renew(self) -> None:
        if self.monotonic() - self._renewed >= RENEW_EVERY_S:
            self.heartbeat()
            self._renewed = self.monotonic()
