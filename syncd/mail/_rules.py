"""What a mail run decides about each mail, without I/O: how password mails are cut into
chunks, when a deferred mail is tried again, what its template sees, its Message-ID,
whether a failure is the server's, and what is reported of it.

Private to ``syncd.mail``; ``syncd.mail._batch`` does the sending and the bookkeeping.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.utils import parseaddr
from typing import Any

from syncd.errors import TemporaryMailError
from syncd.mail._dsn import outbox_message_id
from syncd.mail.render import PASSWORD_TEMPLATES
from syncd.passwords import cores
from syncd.store import Binding, MailRow

RETRY_FIRST = timedelta(minutes=1)  # the next run after a failed one, doubling each time
RETRY_MAX = timedelta(hours=1)

Live = tuple[MailRow, Binding]


def chunk_size() -> int:
    """Password mails per chunk: three per core keeps every core hashing (the portal hashes
    a chunk on all cores) while the chunk before is sent, and the first mail leaves after
    about three hashes' time."""
    return 3 * cores()


def chunks(live: list[Live], size: int) -> Iterator[list[Live]]:
    """``live`` in order, cut after every ``size`` password mails; the other mails ride
    along in the chunk they fall into (a batch without password mails is one chunk)."""
    chunk: list[Live] = []
    passwords = 0
    for item in live:
        chunk.append(item)
        if item[0].template in PASSWORD_TEMPLATES:
            passwords += 1
            if passwords == size:
                yield chunk
                chunk, passwords = [], 0
    if chunk:
        yield chunk


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


def message_id(row: MailRow, sender: str) -> str:
    """A stable Message-ID, so that a mail sent twice (a crash in the duplicate window) is
    recognisably one mail; password mails get a fresh one because their content differs.
    Either names the outbox row, so that a bounce finds its mail (``syncd.mail.bounces``)."""
    domain = parseaddr(sender)[1].rpartition("@")[2] or "syncd.localdomain"
    fresh = row.template in PASSWORD_TEMPLATES
    return outbox_message_id(row.id, row.created_at, domain, fresh=fresh)


def server_trouble(error: TemporaryMailError) -> bool:
    """Whether a temporary failure is the server's (no answer, 421 closing, a refused login
    while connecting) rather than this one mail's (a 4xx answer to it, e.g. greylisting)."""
    return error.code is None or error.code == 421 or error.code >= 500
