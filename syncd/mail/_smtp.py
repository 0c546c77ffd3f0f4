"""smtplib at the boundary: opening a connection and translating its errors, in one place.

Errors are sorted by what the outbox should do with the mail:

- while opening a session (connect, greeting, STARTTLS, AUTH) nothing was said about the
  mail itself, so every failure, even a 5xx such as a refused login, is a
  ``TemporaryMailError``: the mail stays queued while the operator fixes the server or
  the credentials;
- while sending (MAIL FROM, RCPT TO, DATA), a 4xx answer, a timeout or a dropped
  connection is a ``TemporaryMailError`` and a 5xx answer a ``PermanentMailError`` with
  the server's code and text (for a refused recipient, that recipient's answer).
"""

from __future__ import annotations

import enum
import re
import smtplib
import socket
import ssl
from collections.abc import Callable
from typing import Any

from syncd.errors import PermanentMailError, TemporaryMailError


class Security(enum.StrEnum):
    """How the connection is protected (``mail.smtp.security``)."""

    STARTTLS = "starttls"  # plain connect, then STARTTLS before anything else (port 587)
    TLS = "tls"  # implicit TLS from the first byte (port 465)
    NONE = "none"  # a local relay on a trusted network only


_CHECK_ADDRESS = "check mail.smtp.host and mail.smtp.port, and that the server is up"
_CHECK_TLS = "check mail.smtp.security (starttls, tls or none) and the server's certificate"
_CHECK_LOGIN = "check mail.smtp.username and mail.smtp.password"


class _HoldsFinalDot:
    """``smtplib``'s DATA, but ``hold()`` is called just before the final ".": the moment
    the server accepts the message. The mailer waits there for the previous mail's "sent"
    commit, so that commit overlaps this mail's transfer while the server never holds two
    accepted mails that syncd has not marked sent (``syncd.mail.mailer``'s duplicate window).

    If ``hold`` raises, the connection is closed without the final ".": a server discards
    a message whose data never ended (RFC 5321 4.1.1.4), so nothing is accepted."""

    hold: Callable[[], None] | None = None

    def data(self, msg: Any) -> tuple[int, bytes]:
        conn: Any = self
        conn.putcmd("data")
        code, reply = conn.getreply()
        if code != 354:
            raise smtplib.SMTPDataError(code, reply)
        if isinstance(msg, str):
            msg = re.sub(r"(?:\r\n|\n|\r(?!\n))", "\r\n", msg).encode("ascii")
        body = re.sub(rb"(?m)^\.", b"..", msg)
        if body[-2:] != b"\r\n":
            body += b"\r\n"
        hold, self.hold = self.hold, None
        if hold is None:
            conn.send(body + b".\r\n")
        else:
            conn.send(body)
            try:
                hold()
            except BaseException:
                conn.close()
                raise
            conn.send(b".\r\n")  # a segment of its own: TCP_NODELAY sends it at once
        answer: tuple[int, bytes] = conn.getreply()
        return answer


class HeldSMTP(_HoldsFinalDot, smtplib.SMTP):
    """A plain or STARTTLS connection whose DATA can wait before the final dot."""


class HeldSMTPSSL(_HoldsFinalDot, smtplib.SMTP_SSL):
    """An implicit-TLS connection whose DATA can wait before the final dot."""


def open_connection(
    host: str,
    port: int,
    *,
    security: Security,
    timeout: float,
    ssl_context: ssl.SSLContext | None,
    username: str | None,
    password: str | None,
) -> HeldSMTP | HeldSMTPSSL:
    """Connect, say EHLO, secure the channel and log in; raises ``TemporaryMailError``."""
    server = f"{host}:{port}"
    context = ssl_context or ssl.create_default_context()
    try:
        if security is Security.TLS:
            conn: HeldSMTP | HeldSMTPSSL = HeldSMTPSSL(host, port, timeout=timeout, context=context)
        else:
            conn = HeldSMTP(host, port, timeout=timeout)
    except (smtplib.SMTPException, OSError) as error:
        hint = _CHECK_TLS if isinstance(error, ssl.SSLError) else _CHECK_ADDRESS
        raise session_error(error, server, stage="connecting", hint=hint) from error
    stage, hint = "greeting", ""
    try:
        # Every write is a whole command or the held final dot, each followed by a read:
        # Nagle's algorithm would only hold the dot back for the server's delayed ACK.
        if conn.sock is not None:
            conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        conn.ehlo()
        if security is Security.STARTTLS:
            stage, hint = "starting TLS", _CHECK_TLS
            conn.starttls(context=context)
            conn.ehlo()
        if username:
            stage, hint = f"logging in as {username!r}", _CHECK_LOGIN
            conn.login(username, password or "")
    except (smtplib.SMTPException, OSError) as error:
        conn.close()
        raise session_error(error, server, stage=stage, hint=hint) from error
    return conn


def session_error(
    error: Exception, server: str, *, stage: str, hint: str = ""
) -> TemporaryMailError:
    """Any failure before a mail is handed over: retriable, with a hint what to check."""
    code = error.smtp_code if isinstance(error, smtplib.SMTPResponseException) else None
    message = f"SMTP server {server}: failed while {stage}: {describe(error)}"
    if hint:
        message += f"; {hint}"
    return TemporaryMailError(message, code=code)


def send_error(
    error: Exception, server: str, *, recipient: str | None
) -> TemporaryMailError | PermanentMailError:
    """A failure while handing one mail over, sorted into retriable or final."""
    if isinstance(error, smtplib.SMTPRecipientsRefused) and error.recipients:
        recipient, (code, raw) = next(iter(error.recipients.items()))
        return _by_code(code, _text(raw), server, recipient)
    if isinstance(error, smtplib.SMTPResponseException):
        return _by_code(error.smtp_code, _text(error.smtp_error), server, recipient)
    message = f"SMTP server {server}: sending failed: {describe(error)}"
    return TemporaryMailError(message)


def _by_code(
    code: int, text: str, server: str, recipient: str | None
) -> TemporaryMailError | PermanentMailError:
    if 500 <= code < 600:
        return PermanentMailError(code, text, recipient=recipient)
    target = f" to {recipient}" if recipient else ""
    message = f"SMTP server {server} deferred the mail{target}: {code} {text}"
    return TemporaryMailError(message, code=code)


def describe(error: Exception) -> str:
    """One line about a network or smtplib error, never containing what we sent."""
    if isinstance(error, smtplib.SMTPResponseException):
        return f"{error.smtp_code} {_text(error.smtp_error)}"
    if isinstance(error, TimeoutError) or isinstance(error.__context__, TimeoutError):
        return "timed out"  # smtplib turns a read timeout into SMTPServerDisconnected
    if isinstance(error, ConnectionRefusedError):
        return "connection refused"
    if isinstance(error, ConnectionResetError):
        return "connection reset by the server"
    if isinstance(error, smtplib.SMTPServerDisconnected):
        return "the server closed the connection"
    if isinstance(error, OSError) and error.strerror:
        return f"{type(error).__name__}: {error.strerror}"
    return f"{type(error).__name__}: {error}"


def _text(raw: bytes | str) -> str:
    """The server's reply text on one line (multi-line replies are joined)."""
    text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
    return " ".join(text.split())
