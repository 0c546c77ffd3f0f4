"""Support actions on one account (spec section 4): find, show, block, unblock, passwords.

Every action that changes an account takes the cycle lease first, so it never interleaves
with a cycle or the mailer; writes the portal first, then, in one state-store transaction,
the binding, an audit entry naming the ``actor`` and the mail it causes; and then sends that
mail at once (``syncd.mail.mailer.deliver_due`` for this contractor only, under the same lease).
A block made here is a *support* block: the binding keeps its reason and no sync lifts it.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Any

from connectors.base import UpdateAccount
from syncd import lookup
from syncd._search import ranked
from syncd.config.base import Passwords
from syncd.cycle import LEASE_TTL
from syncd.directory import find_everywhere
from syncd.errors import RecordError, UnknownContractor
from syncd.lease import Lease
from syncd.mail.bounces import bounce_hint, undeliverable
from syncd.mail.mailer import MailerOptions, MailReport, deliver_due
from syncd.mail.render import PASSWORD_TEMPLATES
from syncd.mail.transports import MailTransport
from syncd.model import AccountStatus
from syncd.passwords import check_typed_password
from syncd.recipient import choose_recipient
from syncd.store import AuditEntry, Binding, MailEntry
from syncd.wiring import Services


def binding_json(binding: Binding) -> dict[str, Any]:
    fields = binding.fields
    return {
        "key": binding.key,
        "symbol": fields.get("symbol"),
        "name": fields.get("name"),
        "login": binding.login,
        "tax_id": fields.get("tax_id"),
        "account_id": binding.account_id,
        "status": binding.status,
        "activated": binding.activated,
        "erp_blocked": binding.erp_blocked,
        "support_block_reason": binding.support_block_reason,
        "support_blocked_by": binding.support_blocked_by,
        "owner_name": fields.get("owner_name"),
        "owner_email": fields.get("owner_email"),
    }


@dataclass(slots=True)
class Support:
    """The support actions, for one ``actor`` (recorded in the audit trail)."""

    services: Services
    actor: str
    transport: MailTransport | None = None
    options: MailerOptions | None = None
    lock_wait: timedelta = timedelta(minutes=5)

    # -- reading -------------------------------------------------------------------------

    def resolve(self, ident: str) -> Binding:
        """The binding of a contractor id, symbol or login; ``RecordError`` when none."""
        store = self.services.store
        try:
            key, _ = lookup.resolve(ident, source=None, store=store)
        except UnknownContractor as error:
            if error.shared_by:  # an e-mail several accounts share: say so, not "none"
                raise RecordError(ident, str(error)) from None
            key = None
        found = store.binding(key) if key is not None else None
        if found is None:
            message = (
                f"no portal account for {ident!r}: give a contractor id, symbol or login "
                "(`syncd accounts find` searches; `syncd explain` says why one has no account)"
            )
            raise RecordError(ident, message)
        return found

    def find(self, query: str) -> list[dict[str, Any]]:
        """Accounts whose name, symbol, NIP, e-mail or login match ``query`` (one query),
        an exact symbol or login first, then by name."""
        bindings = sorted(self.services.store.load_bindings().values(), key=lambda b: b.key)
        hits = ranked(query, [(b.fields, b.login) for b in bindings])
        return [binding_json(bindings[index]) for index in hits]

    def find_everywhere(self, query: str) -> dict[str, Any]:
        """``find`` plus the ERP's contractors without an account, each with why (reads
        the ERP once: ``syncd.directory``)."""
        return find_everywhere(self.services, query, binding_json)

    def show(self, ident: str) -> dict[str, Any]:
        binding = self.resolve(ident)
        store = self.services.store
        document = binding_json(binding)
        document["mail"] = [mail_json(m) for m in store.mails(key=binding.key, limit=20)]
        document["undeliverable"] = undeliverable(
            store, [binding.key], chain=self.services.config.mail.recipient
        ).get(binding.key)
        document["history"] = [audit_json(a) for a in store.audit_for(binding.key, limit=20)]
        return document

    def history(self, ident: str, limit: int = 100) -> dict[str, Any]:
        store = self.services.store
        key = ident.strip()
        try:
            key = self.resolve(ident).key
        except RecordError:
            if not store.audit_for(key, limit=1):
                raise
        return {"key": key, "history": [audit_json(a) for a in store.audit_for(key, limit)]}

    def mail_list(self, status: str | None, limit: int) -> list[dict[str, Any]]:
        return [mail_json(m) for m in self.services.store.mails(status=status, limit=limit)]

    # -- changing ------------------------------------------------------------------------

    def block(self, ident: str, reason: str) -> dict[str, Any]:
        """Block with ``reason`` (the portal shows it at login); no sync lifts it."""
        with self._lease() as lease:
            binding = self.resolve(ident)
            changed = replace(binding, support_block_reason=reason, support_blocked_by=self.actor)
            mails: list[MailEntry] = []
            if binding.status != AccountStatus.INACTIVE:  # it is blocked when it comes back
                changed = replace(changed, status=AccountStatus.BLOCKED)
                self._portal(
                    binding, {"status": AccountStatus.BLOCKED.value, "block_reason": reason}
                )
                if binding.status != AccountStatus.BLOCKED:
                    mails.append(self._mail(binding, "blocked", reason=reason))
            detail = {"reason": reason, "previous_status": binding.status}
            return self._commit(changed, "support_block", detail, mails, lease)

    def unblock(self, ident: str) -> dict[str, Any]:
        """Lift a support block; an account the ERP blocks stays blocked, with its reason."""
        with self._lease() as lease:
            binding = self.resolve(ident)
            if binding.support_block_reason is None:
                where = " it is blocked in the ERP: unblock it there" if binding.erp_blocked else ""
                message = (
                    f"contractor {binding.key} ({binding.login}) is not blocked by support;{where}"
                )
                raise RecordError(binding.key, message.rstrip(";"))
            changed = replace(binding, support_block_reason=None, support_blocked_by=None)
            mails: list[MailEntry] = []
            if binding.status == AccountStatus.INACTIVE:
                pass
            elif binding.erp_blocked:
                reason = self.services.config.source.erp_block_reason
                self._portal(binding, {"block_reason": reason})
            else:
                status = AccountStatus.ACTIVE if binding.activated else AccountStatus.PENDING
                changed = replace(changed, status=status)
                self._portal(binding, {"status": status.value, "block_reason": None})
                # Never activated (created, or re-created, while blocked): it has no
                # password yet, so the unblock sends the activation, not "unblocked".
                template = "unblocked" if binding.activated else "activation"
                mails.append(self._mail(binding, template))
            detail = {"lifted": binding.support_block_reason, "erp_blocked": binding.erp_blocked}
            return self._commit(changed, "support_unblock", detail, mails, lease)

    def reset_password(self, ident: str, typed: str | None = None) -> dict[str, Any]:
        """Mail a new password now: generated, or ``typed`` by a salesperson (never stored)."""
        if typed is not None:
            check_typed_password(typed)
        return self._password_mail(ident, "password_reset", typed)

    def resend_activation(self, ident: str) -> dict[str, Any]:
        """A fresh activation mail (with a new password), sent now."""
        return self._password_mail(ident, "activation", None)

    # -- helpers -------------------------------------------------------------------------

    def _password_mail(self, ident: str, template: str, typed: str | None) -> dict[str, Any]:
        if template == "password_reset" and self.services.config.portal.passwords is Passwords.NONE:
            message = (
                "this portal keeps passwords itself (portal.passwords: none): the customer "
                'sets a new one with "Forgot password" on the portal\'s sign-in page'
            )
            raise RecordError(ident, message)
        with self._lease() as lease:
            binding = self.resolve(ident)
            if binding.status == AccountStatus.INACTIVE:
                message = (
                    f"contractor {binding.key} ({binding.login}) is deactivated (out of scope "
                    "in the ERP): give it the feature again first"
                )
                raise RecordError(binding.key, message)
            store = self.services.store
            store.cancel_pending(
                binding.key,
                sorted(PASSWORD_TEMPLATES),
                why=f"replaced by {template} by {self.actor}",
            )
            detail = {"template": template, "typed": typed is not None}
            return self._commit(
                binding, template, detail, [self._mail(binding, template)], lease, typed=typed
            )

    def _commit(
        self,
        binding: Binding,
        action: str,
        detail: dict[str, Any],
        mails: list[MailEntry],
        lease: Lease,
        *,
        typed: str | None = None,
    ) -> dict[str, Any]:
        store = self.services.store
        entry = AuditEntry(binding.key, binding.login, action, "ok", detail, self.actor)
        store.commit_batch(upserts=[binding], audits=[entry], mails=mails)
        document: dict[str, Any] = {"action": action, "account": binding_json(binding)}
        if mails:
            report = self._deliver(binding, mails[0].template, lease, typed)
            document["mail"] = report.as_json()
        return document

    def _deliver(
        self, binding: Binding, template: str, lease: Lease, typed: str | None
    ) -> MailReport:
        pair = None
        if typed is not None:
            due = self.services.store.due_mails(key=binding.key)
            ours = [m.id for m in due if m.template == template]
            pair = (max(ours), typed) if ours else None
        return deliver_due(
            self.services,
            transport=self.transport,
            options=self.options,
            heartbeat=lease.renew,
            key=binding.key,
            typed=pair,
            actor=self.actor,
        )

    def _mail(self, binding: Binding, template: str, **extra: Any) -> MailEntry:
        fields = binding.fields
        config = self.services.config
        context = {
            "login": binding.login,
            "name": fields.get("name"),
            "symbol": fields.get("symbol"),
            "owner_name": fields.get("owner_name"),
            "owner_email": fields.get("owner_email"),
            "portal_url": str(config.mail.portal_url) if config.mail.portal_url else None,
            **extra,
        }
        return MailEntry(
            key=binding.key,
            account_id=binding.account_id,
            recipient=choose_recipient(config.mail.recipient, fields, login=binding.login).address,
            template=template,
            not_before=self.services.clock(),
            context=context,
            language=config.mail.language.value,
        )

    def _portal(self, binding: Binding, fields: dict[str, Any]) -> None:
        """Write ``fields`` to the account; raises the portal's error for this record."""
        [outcome] = self.services.portal.apply(
            [UpdateAccount(binding.key, binding.account_id, fields)]
        )
        if outcome.error is not None:
            raise outcome.error

    def _lease(self) -> Lease:
        lease = Lease(self.services.store, clock=self.services.clock, ttl=LEASE_TTL)
        return lease.acquire(wait=self.lock_wait)


def mail_json(mail: Any) -> dict[str, Any]:
    """One outbox row as ``mail list`` and ``accounts show`` print it."""
    return {
        "id": mail.id,
        "key": mail.key,
        "template": mail.template,
        "to": mail.recipient,
        "status": mail.status,
        "created_at": mail.created_at.isoformat(),
        "not_before": mail.not_before.isoformat(),
        "sent_at": mail.sent_at.isoformat() if mail.sent_at else None,
        "attempts": mail.attempts,
        "last_error": mail.last_error,
        "hint": bounce_hint(mail),
    }


def audit_json(row: Any) -> dict[str, Any]:
    """One audit entry as ``history`` prints it."""
    return {
        "at": row.at.isoformat(),
        "actor": row.actor,
        "action": row.action,
        "result": row.result,
        "login": row.login,
        "run_id": row.run_id,
        "detail": row.detail,
    }
