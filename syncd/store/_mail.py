"""How ``StateStore`` serves the mailer: the due mail, and what became of each one.

``MailDelivery`` is a mixin of ``StateStore`` (which gives it ``begin`` and ``clock``); the
prepared statements of the outbox's life cycle sit beside it. A mail goes ``pending`` ->
``sent`` | ``failed`` | ``cancelled``; a temporary failure keeps it ``pending`` with a later
``not_before``. ``SENT`` and the mail's audit entry run alone in their own short
transaction right after the SMTP server accepted the mail (the duplicate window, see
``syncd.mail.mailer``); the others are written together at the end of a batch, each as one
executemany. Private to ``syncd.store``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from datetime import datetime
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from syncd.store._batch import audit_values, p
from syncd.store._rows import AuditEntry, MailRow, mail_from_row
from syncd.store.schema import audit, binding, outbox

M = outbox.c
B = binding.c

# Only a pending mail changes state: a mail cancelled meanwhile stays cancelled. The row
# keeps the address the mailer chose at send time (``syncd.recipient``; NULL: the row's
# own), for bounces to match.
SENT = (
    sa.update(outbox)
    .where(M.id == p("m_id", M.id), M.status == "pending")
    .values(
        status="sent",
        sent_at=p("m_now", M.sent_at),
        attempts=M.attempts + 1,
        last_error=None,
        recipient=sa.func.coalesce(p("m_to", M.recipient), M.recipient),
    )
)
FAILED = (
    sa.update(outbox)
    .where(M.id == p("m_id", M.id), M.status == "pending")
    .values(status="failed", last_error=p("m_error", M.last_error), attempts=M.attempts + 1)
)
DEFERRED = (
    sa.update(outbox)
    .where(M.id == p("m_id", M.id), M.status == "pending")
    .values(
        not_before=p("m_retry_at", M.not_before),
        last_error=p("m_error", M.last_error),
        attempts=M.attempts + 1,
    )
)
CANCELLED = (
    sa.update(outbox)
    .where(M.id == p("m_id", M.id), M.status == "pending")
    .values(status="cancelled", last_error=p("m_error", M.last_error))
)
CANCEL_TEMPLATES = (
    sa.update(outbox)
    .where(
        M.contractor_key == p("m_key", M.contractor_key),
        M.template == p("m_template", M.template),
        M.status == "pending",
    )
    .values(status="cancelled", last_error=p("m_error", M.last_error))
)
# The customer now has a password: a pending account becomes active, a blocked one stays
# blocked (and becomes active when it is unblocked, because ``activated`` is set).
ACTIVATED = (
    sa.update(binding)
    .where(B.contractor_key == p("b_key", B.contractor_key))
    .values(
        activated=True,
        status=sa.case((B.status == "pending", "active"), else_=B.status),
        updated_at=p("b_now", B.updated_at),
    )
)
INSERT_AUDIT = sa.insert(audit)


class MailDelivery:
    """``StateStore``'s side of the mailer (``syncd.mail``): read the due mail, record each
    delivery attempt."""

    if TYPE_CHECKING:
        clock: Callable[[], datetime]

        def begin(self, *, write: bool = True) -> AbstractContextManager[sa.Connection]:
            """``StateStore.begin``: one transaction, driver errors translated."""

    def due_mails(self, *, limit: int = 100, key: str | None = None) -> list[MailRow]:
        """Pending mails whose ``not_before`` has passed, oldest first (only ``key``'s)."""
        query = (
            sa.select(outbox)
            .where(outbox.c.status == "pending", outbox.c.not_before <= self.clock())
            .order_by(outbox.c.not_before, outbox.c.id)
            .limit(limit)
        )
        if key is not None:
            query = query.where(outbox.c.contractor_key == key)
        with self.begin(write=False) as connection:
            return [mail_from_row(row._mapping) for row in connection.execute(query)]

    def mark_mail(
        self,
        mail_id: int,
        *,
        status: str,
        error: str | None = None,
        retry_at: datetime | None = None,
    ) -> None:
        """Record one delivery attempt: ``sent``, ``failed`` (for good), or ``pending`` again
        with ``retry_at`` as its new ``not_before`` after a temporary SMTP error."""
        values: dict[str, Any] = {"status": status, "attempts": outbox.c.attempts + 1}
        values["last_error"] = error
        if status == "sent":
            values["sent_at"] = self.clock()
        if retry_at is not None:
            values["not_before"] = retry_at
        with self.begin() as connection:
            connection.execute(sa.update(outbox).where(outbox.c.id == mail_id).values(values))

    def record_sent(
        self,
        mail_id: int,
        *,
        activate: str | None,
        entry: AuditEntry,
        recipient: str | None = None,
    ) -> None:
        """Record, in one short transaction, that the SMTP server accepted mail ``mail_id``
        (sent to ``recipient``, when the mailer chose another address than the row's).

        ``activate`` names the contractor whose account now has a password (activation,
        reset): its binding gets ``activated`` and, if it was pending, status ``active``.
        """
        now = self.clock()
        sent = {"m_id": mail_id, "m_now": now, "m_to": recipient}
        with self.begin() as connection:
            connection.execute(SENT, sent)
            if activate is not None:
                connection.execute(ACTIVATED, {"b_key": activate, "b_now": now})
            connection.execute(INSERT_AUDIT, [audit_values(entry, now, None)])

    def settle_mails(
        self,
        *,
        failed: Sequence[tuple[int, str]] = (),
        deferred: Sequence[tuple[int, str, datetime]] = (),
        cancelled: Sequence[tuple[int, str]] = (),
        audits: Sequence[AuditEntry] = (),
    ) -> None:
        """Record a batch's undelivered mails in one transaction: ``failed`` (id, answer)
        for good, ``deferred`` (id, error, retry at) to try again, ``cancelled`` (id, why)."""
        now = self.clock()
        with self.begin() as connection:
            if failed:
                params = [{"m_id": i, "m_error": e} for i, e in failed]
                connection.execute(FAILED, params)
            if deferred:
                params = [{"m_id": i, "m_error": e, "m_retry_at": at} for i, e, at in deferred]
                connection.execute(DEFERRED, params)
            if cancelled:
                params = [{"m_id": i, "m_error": e} for i, e in cancelled]
                connection.execute(CANCELLED, params)
            if audits:
                rows = [audit_values(a, now, None) for a in audits]
                connection.execute(sa.insert(audit), rows)

    def cancel_pending(self, key: str, templates: Sequence[str], *, why: str) -> None:
        """Cancel contractor ``key``'s pending mails of these ``templates`` (one statement)."""
        params = [{"m_key": key, "m_template": t, "m_error": why} for t in templates]
        with self.begin() as connection:
            connection.execute(CANCEL_TEMPLATES, params)
