"""What became of each mail of a batch, kept until the batch writes it back at its end.

Private to ``syncd.mail``. ``_batch.Batch`` sends; a ``Ledger`` records: every mail the
batch touches gets exactly one outcome (sent, failed, deferred or cancelled), a mail that
did not go an audit entry, and a password mail accepted for a pending account the portal
status to set. ``write_back`` stores the undelivered mails in one transaction, then has
the portal activate the accounts. A sent mail is not written here: its own commit
recorded it the moment the server accepted it (the duplicate window, ``syncd.mail.mailer``).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

import structlog

from connectors.base import Portal, UpdateAccount
from syncd.errors import PortalUnavailable
from syncd.mail._rules import MailOutcome, retry_time
from syncd.mail.render import PASSWORD_TEMPLATES
from syncd.model import AccountStatus
from syncd.store import AuditEntry, Binding, MailRow, StateStore

log = structlog.get_logger(__name__)


class Ledger:
    """One batch's outcomes, undelivered mails, audit entries and accounts to activate."""

    def __init__(
        self,
        *,
        now: datetime,
        actor: str,
        typed: tuple[int, str] | None,
        on_mail: Callable[[], None],
    ) -> None:
        self.now = now  # the batch's start: retry times count from it
        self.actor = actor
        self.typed = typed
        self.on_mail = on_mail  # once per mail settled, for the progress bar
        self.outcomes: list[MailOutcome] = []
        self.handled: set[int] = set()  # mail ids with an outcome (or a commit under way)
        self.failed: list[tuple[int, str]] = []
        self.deferred: list[tuple[int, str, datetime]] = []
        self.cancelled: list[tuple[int, str]] = []
        self.audits: list[AuditEntry] = []
        self.activate: list[UpdateAccount] = []

    def typed_for(self, row: MailRow) -> str | None:
        """The password a person typed for this mail, if it is that mail."""
        if self.typed is not None and self.typed[0] == row.id:
            return self.typed[1]
        return None

    def settle(self, row: MailRow, result: str, error: str, to: str | None = None) -> None:
        """A mail that did not go: ``failed`` for good, ``deferred`` to a retry time (failed
        instead when its password was typed: retrying would need it), or ``cancelled``."""
        recipient = to or row.recipient
        retry_at = None
        if result == "deferred" and self.typed_for(row):
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
        self.handled.add(row.id)
        self.on_mail()

    def sent(self, row: MailRow, binding: Binding, to: str) -> None:
        """A mail the server accepted and the store recorded as sent; a password mail for a
        pending account makes it active in the portal at the end of the batch."""
        self.outcomes.append(MailOutcome(row.id, row.key, row.template, to, "sent"))
        self.handled.add(row.id)
        self.on_mail()
        log.info("mail.sent", mail_id=row.id, template=row.template, contractor=row.key)
        if row.template in PASSWORD_TEMPLATES and binding.status == AccountStatus.PENDING:
            status = {"status": AccountStatus.ACTIVE.value}
            self.activate.append(UpdateAccount(row.key, binding.account_id, status))

    def write_back(self, store: StateStore, portal: Portal) -> None:
        """The batch's undelivered mails in one transaction, then the portal's statuses."""
        if self.failed or self.deferred or self.cancelled or self.audits:
            store.settle_mails(
                failed=self.failed,
                deferred=self.deferred,
                cancelled=self.cancelled,
                audits=self.audits,
            )
        if not self.activate:
            return
        try:
            outcomes = portal.apply(self.activate)
        except PortalUnavailable as error:
            log.warning("mail.activation_deferred", count=len(self.activate), error=str(error))
            return
        for outcome in outcomes:
            if not outcome.ok:  # the full reconcile sets it from the binding later
                log.warning(
                    "mail.activation_deferred", contractor=outcome.op.key, error=str(outcome.error)
                )
