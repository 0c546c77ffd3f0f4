"""How ``StateStore`` records mail delivery: prepared statements for the outbox's life cycle.

A mail goes ``pending`` -> ``sent`` | ``failed`` | ``cancelled``; a temporary failure
keeps it ``pending`` with a later ``not_before``. ``SENT`` and the mail's audit entry run
alone in their own short transaction right after the SMTP server accepted the mail (the
duplicate window, see ``syncd.mail``); the others are written together at the end of a
batch, each as one executemany. Private to ``syncd.store``.
"""

from __future__ import annotations

import sqlalchemy as sa

from syncd.store._batch import p
from syncd.store.schema import binding, outbox

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
