"""Mail transports: hand a rendered message to an SMTP server, or to a directory of .eml files.

Both have the same shape: ``with transport.session() as s: s.send(message)``. A session
holds one SMTP connection for a whole batch. ``send`` returns as soon as the server has
accepted the message, doing nothing after it, so that the caller can record "sent" at
once: a duplicate is possible only if the process dies in that short window.
``send_with_retry`` retries the temporary failures with exponential backoff.
"""

from __future__ import annotations

import copy
import email.policy
import os
import secrets
import smtplib
import ssl
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from email.utils import getaddresses, parseaddr
from pathlib import Path
from typing import Protocol

import structlog
import tenacity
from tenacity.nap import sleep_using_event

from syncd.clock import utcnow
from syncd.errors import TemporaryMailError
from syncd.mail._smtp import HeldSMTP, HeldSMTPSSL, Security, open_connection, send_error

__all__ = [
    "FileTransport",
    "MailSession",
    "MailTransport",
    "RetryPolicy",
    "Security",
    "SmtpTransport",
    "send_with_retry",
]

log = structlog.get_logger(__name__)


Hold = Callable[[], None]


class MailSession(Protocol):
    """An open channel to the mail system, good for a batch of messages."""

    def send(self, message: EmailMessage, *, before_accept: Hold | None = None) -> None:
        """Hand one message over; returns once it is accepted.

        ``before_accept`` is called at the last moment before the message can be accepted
        (SMTP: before DATA's final "."; file: before the rename); what it raises is raised
        with nothing accepted. Raises ``TemporaryMailError`` (try again later) or
        ``PermanentMailError`` (the server refused this message for good).
        """


class MailTransport(Protocol):
    """Where mail goes: ``mail.transport`` in the configuration."""

    def session(self) -> AbstractContextManager[MailSession]:
        """A session for a batch; connects lazily, on the first ``send``."""

    def check(self) -> None:
        """Try the transport without sending (``syncd doctor``); raises TemporaryMailError."""


class SmtpTransport:
    """An SMTP server (``mail.smtp``): STARTTLS, implicit TLS or none, AUTH, a rate limit.

    ``rate_limit`` is in messages per minute: sends are spaced at least ``60 / rate_limit``
    seconds apart, measured with ``clock`` and waited out with ``sleep``. A connection
    idle for ``probe_after`` seconds or more is probed with NOOP before the next message
    (servers hang up on idle clients); one busy sending is not, which saves a round trip
    per message. A server that hangs up mid-stream anyway costs one retry of that mail.
    """

    def __init__(
        self,
        host: str,
        port: int = 587,
        *,
        security: Security | str = Security.STARTTLS,
        username: str | None = None,
        password: str | None = None,
        timeout: float = 30.0,
        rate_limit: float | None = None,
        ssl_context: ssl.SSLContext | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        probe_after: float = 5.0,
    ) -> None:
        self.host = host
        self.port = port
        self.security = Security(security)
        self.username = username
        self.__password = password
        self.timeout = timeout
        self.rate_limit = rate_limit
        self._ssl_context = ssl_context
        self._clock = clock
        self._sleep = sleep
        self._interval = 60.0 / rate_limit if rate_limit else 0.0
        self._last_send: float | None = None  # on the transport: a new session cannot burst
        self.probe_after = probe_after

    def __repr__(self) -> str:
        return (
            f"SmtpTransport(host={self.host!r}, port={self.port}, "
            f"security={self.security.value!r}, username={self.username!r})"
        )

    @property
    def server(self) -> str:
        return f"{self.host}:{self.port}"

    def connect(self) -> HeldSMTP | HeldSMTPSSL:
        """A new, secured and logged-in connection; raises ``TemporaryMailError``."""
        return open_connection(
            self.host,
            self.port,
            security=self.security,
            timeout=self.timeout,
            ssl_context=self._ssl_context,
            username=self.username,
            password=self.__password,
        )

    @contextmanager
    def session(self) -> Iterator[_SmtpSession]:
        session = _SmtpSession(self)
        try:
            yield session
        finally:
            session.close()

    def check(self) -> None:
        conn = self.connect()
        _quit(conn)

    def wait_for_turn(self) -> None:
        """Sleep until the rate limit allows the next send, then claim the slot."""
        now = self._clock()
        if self._last_send is not None and self._interval:
            delay = self._last_send + self._interval - now
            if delay > 0:
                self._sleep(delay)
                now = self._clock()
        self._last_send = now


class _SmtpSession:
    """One connection, opened on the first send and reopened if the server dropped it."""

    def __init__(self, transport: SmtpTransport) -> None:
        self._transport = transport
        self._conn: HeldSMTP | HeldSMTPSSL | None = None
        self._used = 0.0  # the transport clock's time of the last answer on _conn

    def send(self, message: EmailMessage, *, before_accept: Hold | None = None) -> None:
        transport = self._transport
        recipients = _addresses(message, "To")
        recipient = recipients[0] if len(recipients) == 1 else None
        envelope_from, message = _envelope(message)
        to_addrs = None
        if not any(name.lower() in _ENVELOPE_HEADERS for name in message):
            # smtplib would take them from From and To too, parsing both headers again.
            envelope_from = envelope_from or next(iter(_addresses(message, "From")), None)
            to_addrs = recipients
        transport.wait_for_turn()
        conn = self._live_connection()
        conn.hold = before_accept
        try:
            refused = conn.send_message(message, from_addr=envelope_from, to_addrs=to_addrs)
        except (smtplib.SMTPRecipientsRefused, smtplib.SMTPResponseException) as error:
            # An answer: smtplib has reset the transaction and the connection stays usable.
            raise send_error(error, transport.server, recipient=recipient) from error
        except OSError as error:  # timeouts, resets, disconnects (smtplib's errors included)
            self._discard()
            raise send_error(error, transport.server, recipient=recipient) from error
        except BaseException:
            if conn.sock is None:  # before_accept failed and closed the connection mid-DATA
                self._conn = None
            raise
        finally:
            conn.hold = None
        self._used = transport._clock()
        if refused:  # only possible with several recipients; the others have it
            log.warning("mail.recipients_refused", refused=sorted(refused))

    def _live_connection(self) -> HeldSMTP | HeldSMTPSSL:
        idle = self._transport._clock() - self._used
        if self._conn is not None and idle >= self._transport.probe_after:
            try:
                alive = self._conn.noop()[0] == 250
            except (smtplib.SMTPException, OSError):
                alive = False
            if not alive:
                self._discard()
        if self._conn is None:
            self._conn = self._transport.connect()
            self._used = self._transport._clock()
        return self._conn

    def _discard(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def close(self) -> None:
        if self._conn is not None:
            _quit(self._conn)
            self._conn = None


# Headers that change whom smtplib's send_message takes the envelope from.
_ENVELOPE_HEADERS = frozenset({"sender", "cc", "bcc", "resent-date"})


def _addresses(message: EmailMessage, name: str) -> list[str]:
    """The addresses of header ``name``, without the email package's full parse of the
    header when its stored value is plain ASCII (the renderer stores most so)."""
    found: list[str] = []
    for key, value in message.raw_items():
        if key.lower() != name.lower():
            continue
        text = value
        if type(value) is not str or not value.isascii() or "=?" in value:
            text = str(message.policy.header_fetch_parse(key, value))
        found += [address for _, address in getaddresses([text])]
    return found


def _envelope(message: EmailMessage) -> tuple[str | None, EmailMessage]:
    """The envelope sender a ``Return-Path`` header asks for (``mail.return_path``), and
    the message without that header: the receiving server writes its own (RFC 5321 4.4).
    A shallow copy is enough: deleting a header gives the copy a list of its own."""
    if message.get("Return-Path") is None:
        return None, message
    sender = parseaddr(str(message["Return-Path"]))[1] or None
    sent = copy.copy(message)
    del sent["Return-Path"]
    return sender, sent


def _quit(conn: smtplib.SMTP) -> None:
    """Say goodbye politely; a server that already hung up is no error."""
    try:
        conn.quit()
    except (smtplib.SMTPException, OSError):
        conn.close()


class FileTransport:
    """Writes each message as an RFC 5322 ``.eml`` file (``mail.transport: file``).

    Files appear atomically (written to a hidden temporary file in the same directory,
    fsynced, then renamed), are readable by their owner only (they hold passwords), and
    are named ``<UTC timestamp>-<random token>.eml`` so they sort by time.
    """

    def __init__(
        self,
        directory: Path,
        *,
        now: Callable[[], datetime] = utcnow,
        token: Callable[[], str] = lambda: secrets.token_hex(6),
    ) -> None:
        self.directory = Path(directory)
        self._now = now
        self._token = token

    def __repr__(self) -> str:
        return f"FileTransport(directory={str(self.directory)!r})"

    @contextmanager
    def session(self) -> Iterator[FileTransport]:
        yield self

    def check(self) -> None:
        try:
            self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        except OSError as error:
            message = f"cannot create the mail directory {self.directory}: {error.strerror}"
            raise TemporaryMailError(message) from error
        if not os.access(self.directory, os.W_OK):
            message = f"the mail directory {self.directory} is not writable by this user"
            raise TemporaryMailError(message)

    def send(self, message: EmailMessage, *, before_accept: Hold | None = None) -> None:
        self.write(message, before_accept=before_accept)

    def write(self, message: EmailMessage, *, before_accept: Hold | None = None) -> Path:
        """Write one message and return its path; raises ``TemporaryMailError``.

        ``before_accept`` is called before the rename that makes the file appear."""
        data = message.as_bytes(policy=email.policy.SMTP)
        name = f"{self._now():%Y%m%dT%H%M%S.%fZ}-{self._token()}.eml"
        target = self.directory / name
        try:
            self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
            fd, temp = tempfile.mkstemp(dir=self.directory, prefix=".", suffix=".tmp")
            try:
                with os.fdopen(fd, "wb") as file:
                    file.write(data)
                    file.flush()
                    os.fsync(file.fileno())
                if before_accept is not None:
                    before_accept()
                os.replace(temp, target)
            except BaseException:
                Path(temp).unlink(missing_ok=True)
                raise
            _fsync_directory(self.directory)
        except OSError as error:
            problem = f"cannot write the mail to {self.directory}: {error.strerror or error}"
            raise TemporaryMailError(problem) from error
        return target


def _fsync_directory(directory: Path) -> None:
    """Make the rename itself durable, not only the file's content."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Backoff for temporary failures: ``initial`` seconds, doubling up to ``maximum``."""

    attempts: int = 5
    initial: float = 2.0
    maximum: float = 60.0


class _Interrupted(Exception):
    """The stop event was set during a backoff pause."""


def send_with_retry(
    session: MailSession,
    message: EmailMessage,
    *,
    policy: RetryPolicy | None = None,
    deadline: float | None = None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] | None = None,
    stop_event: threading.Event | None = None,
    before_accept: Hold | None = None,
) -> int:
    """Send, retrying ``TemporaryMailError`` with exponential backoff; returns the attempts.

    ``before_accept`` goes to every attempt's ``session.send`` (``MailSession``).

    Gives up (re-raising the last ``TemporaryMailError``) after ``policy.attempts``, when
    the next pause would end past ``deadline`` (a ``clock()`` value), or as soon as
    ``stop_event`` is set (it also cuts a pause short). ``PermanentMailError`` is raised
    at once.
    """
    policy = policy or RetryPolicy()
    pause = sleep or (sleep_using_event(stop_event) if stop_event else time.sleep)
    stop: tenacity.stop.stop_base = tenacity.stop_after_attempt(policy.attempts)
    if deadline is not None:
        stop = stop | _PastDeadline(deadline, clock)
    if stop_event is not None:
        stop = stop | _EventIsSet(stop_event)
    failures: list[BaseException] = []
    attempts = 0

    def attempt() -> None:
        nonlocal attempts
        attempts += 1
        if before_accept is None:
            session.send(message)
        else:
            session.send(message, before_accept=before_accept)

    def nap(seconds: float) -> None:
        pause(seconds)
        if stop_event is not None and stop_event.is_set():
            raise _Interrupted

    def remember(state: tenacity.RetryCallState) -> None:
        if state.outcome is not None and (error := state.outcome.exception()) is not None:
            failures.append(error)

    retrying = tenacity.Retrying(
        stop=stop,
        wait=tenacity.wait_exponential(multiplier=policy.initial, max=policy.maximum),
        retry=tenacity.retry_if_exception_type(TemporaryMailError),
        sleep=nap,
        before_sleep=remember,
        reraise=True,
    )
    try:
        retrying(attempt)
    except _Interrupted:
        pass
    else:
        return attempts
    raise failures[-1]


class _PastDeadline(tenacity.stop.stop_base):
    """Stop when the pause before the next attempt would end past ``deadline``."""

    def __init__(self, deadline: float, clock: Callable[[], float]) -> None:
        self.deadline = deadline
        self.clock = clock

    def __call__(self, retry_state: tenacity.RetryCallState) -> bool:
        return self.clock() + retry_state.upcoming_sleep > self.deadline


class _EventIsSet(tenacity.stop.stop_base):
    """Stop retrying once the process has been asked to shut down."""

    def __init__(self, event: threading.Event) -> None:
        self.event = event

    def __call__(self, retry_state: tenacity.RetryCallState) -> bool:
        return self.event.is_set()
