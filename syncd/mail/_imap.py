"""The bounce mailbox over IMAP (the standard library's imaplib): peek, fetch and move.

Reading never changes a message: every fetch is a ``BODY.PEEK``, so a message syncd does
not process keeps its flags (``\\Seen`` included). A processed message is moved, never
deleted: ``MOVE`` (RFC 6851) when the server has it, else ``COPY`` + ``\\Deleted`` +
``UID EXPUNGE`` (UIDPLUS, RFC 4315), which expunges only those messages. A server with
neither gets ``COPY`` and ``\\Deleted \\Seen`` but no ``EXPUNGE``: a plain ``EXPUNGE``
would also remove messages that someone else marked deleted.

Errors become ``UnavailableError`` naming ``mail.bounces`` and what to check; the
password is never part of a message.
"""

from __future__ import annotations

import contextlib
import imaplib
import re
import ssl
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from syncd.config.base import secret_value
from syncd.config.sections import BouncesConfig, SmtpSecurity
from syncd.errors import UnavailableError

_UID = re.compile(rb"\bUID (\d+)")
_CHUNK = 100  # UIDs per command


class Mailbox:
    """One selected IMAP folder; open it with ``open_mailbox``."""

    def __init__(self, conn: imaplib.IMAP4, folder: str, capabilities: frozenset[str]) -> None:
        self._conn = conn
        self.folder = folder
        self.capabilities = capabilities

    def unseen(self, limit: int) -> list[int]:
        """The UIDs of up to ``limit`` unseen, undeleted messages, oldest first."""
        data = _ok(self._conn.uid("SEARCH", "UNSEEN UNDELETED"), "searching")
        uids = sorted(int(n) for n in b" ".join(d for d in data if d).split())
        return uids[:limit]

    def headers(self, uids: Sequence[int]) -> dict[int, bytes]:
        """The header block of each message, read without setting ``\\Seen``."""
        return self._fetch(uids, "BODY.PEEK[HEADER]")

    def messages(self, uids: Sequence[int]) -> dict[int, bytes]:
        """Each whole message, read without setting ``\\Seen``."""
        return self._fetch(uids, "BODY.PEEK[]")

    def move(self, uids: Sequence[int], target: str) -> None:
        """Move the messages to folder ``target`` (created if missing)."""
        if not uids:
            return
        self._ensure_folder(target)
        for chunk in _chunks(uids):
            if "MOVE" in self.capabilities:
                _ok(self._conn.uid("MOVE", chunk, _quote(target)), f"moving to {target}")
                continue
            _ok(self._conn.uid("COPY", chunk, _quote(target)), f"copying to {target}")
            if "UIDPLUS" in self.capabilities:
                _ok(self._conn.uid("STORE", chunk, "+FLAGS.SILENT", r"(\Deleted)"), "flagging")
                _ok(self._conn.uid("EXPUNGE", chunk), "expunging")
            else:
                _ok(self._conn.uid("STORE", chunk, "+FLAGS.SILENT", r"(\Deleted \Seen)"), "flag")

    def _fetch(self, uids: Sequence[int], item: str) -> dict[int, bytes]:
        found: dict[int, bytes] = {}
        for chunk in _chunks(uids):
            data = _ok(self._conn.uid("FETCH", chunk, f"(UID {item})"), "fetching")
            found.update(_literals(data))
        return found

    def _ensure_folder(self, name: str) -> None:
        listed = _ok(self._conn.list('""', _quote(name)), "listing folders")
        if any(d for d in listed if d):
            return
        _ok(self._conn.create(_quote(name)), f"creating folder {name}")
        self._conn.subscribe(_quote(name))  # so that mail clients show it; optional


@contextmanager
def open_mailbox(
    settings: BouncesConfig, *, ssl_context: ssl.SSLContext | None = None
) -> Iterator[Mailbox]:
    """Connect, secure, log in and select ``settings.folder``; log out on the way out."""
    assert settings.host is not None  # the caller checks that bounces are configured
    where = f"the bounce mailbox {settings.host}:{settings.imap_port}"
    with _translated(where, "connecting"):
        conn = _connect(settings, ssl_context or ssl.create_default_context())
    try:
        with _translated(where, "logging in"):
            conn.login(settings.username or "", secret_value(settings.password) or "")
        with _translated(where, f"opening folder {settings.folder}"):
            _ok(conn.select(_quote(settings.folder)), f"opening folder {settings.folder}")
            capabilities = _capabilities(conn)
        with _translated(where, "reading it"):
            yield Mailbox(conn, settings.folder, capabilities)
    finally:
        try:
            conn.logout()
        except (imaplib.IMAP4.error, OSError):
            with contextlib.suppress(OSError):
                conn.shutdown()


def _connect(settings: BouncesConfig, context: ssl.SSLContext) -> imaplib.IMAP4:
    assert settings.host is not None
    timeout = settings.timeout.total_seconds()
    if settings.security is SmtpSecurity.TLS:
        return imaplib.IMAP4_SSL(
            settings.host, settings.imap_port, ssl_context=context, timeout=timeout
        )
    conn = imaplib.IMAP4(settings.host, settings.imap_port, timeout=timeout)
    if settings.security is SmtpSecurity.STARTTLS:
        try:
            conn.starttls(ssl_context=context)
        except BaseException:
            with contextlib.suppress(OSError):
                conn.shutdown()
            raise
    return conn


@contextmanager
def _translated(where: str, doing: str) -> Iterator[None]:
    """imaplib's and the network's errors as ``UnavailableError``, with what to check."""
    try:
        yield
    except ssl.SSLError as error:
        hint = "check mail.bounces.security (tls, starttls or none) and the certificate"
        raise UnavailableError(f"{where}: TLS failed while {doing}: {error}; {hint}") from error
    except OSError as error:
        hint = "check mail.bounces.host and mail.bounces.port, and that the server is up"
        detail = error.strerror or str(error) or type(error).__name__
        raise UnavailableError(f"{where}: {detail} while {doing}; {hint}") from error
    except imaplib.IMAP4.error as error:
        hint = {
            "logging in": "check mail.bounces.username and mail.bounces.password",
            "connecting": "check mail.bounces.security (tls, starttls or none)",
        }.get(doing, "check mail.bounces.folder and that the account may use it")
        text = _text(error.args[0]) if error.args else type(error).__name__
        raise UnavailableError(f"{where}: refused {doing}: {text}; {hint}") from error


def _capabilities(conn: imaplib.IMAP4) -> frozenset[str]:
    """The capabilities after login (servers announce MOVE and UIDPLUS only then)."""
    data = _ok(conn.capability(), "asking its capabilities")
    return frozenset(_text(b" ".join(d for d in data if d)).upper().split())


def _ok(response: tuple[str, list[Any]], doing: str) -> list[Any]:
    status, data = response
    if status != "OK":
        detail = " ".join(_text(d) for d in data if isinstance(d, bytes | str))
        raise imaplib.IMAP4.error(f"{doing}: {status} {detail}".strip())
    return data


def _literals(data: list[Any]) -> dict[int, bytes]:
    """``{uid: literal}`` from a FETCH response, wherever the server put the UID."""
    found: dict[int, bytes] = {}
    waiting: bytes | None = None
    for item in data:
        if isinstance(item, tuple):
            head, literal = item
            uid = _UID.search(head)
            if uid:
                found[int(uid.group(1))] = literal
                waiting = None
            else:
                waiting = literal
        elif isinstance(item, bytes) and waiting is not None:
            uid = _UID.search(item)
            if uid:
                found[int(uid.group(1))] = waiting
            waiting = None
    return found


def _chunks(uids: Sequence[int]) -> Iterator[str]:
    for start in range(0, len(uids), _CHUNK):
        yield ",".join(str(uid) for uid in uids[start : start + _CHUNK])


def _quote(name: str) -> str:
    """A folder name as an IMAP quoted string (imaplib sends arguments as they are)."""
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _text(value: Any) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
