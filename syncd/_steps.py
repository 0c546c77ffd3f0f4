"""Turn a plan's items into steps: one merged portal op and its bookkeeping per contractor.

Private to ``syncd.apply``. A step holds everything one contractor's actions need: the
portal op (at most one per key), the binding to write once the portal answers, the audit
entries and the mails the actions cause. Steps are built one batch at a time.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import timedelta
from itertools import chain
from typing import Any

from connectors.base import CreateAccount, DeleteAccount, PortalOp, UpdateAccount
from syncd._plan_items import Adopt, Block, Create, Plan, Remove, Unblock, Update
from syncd.backoff import BackoffPolicy
from syncd.config import MailRecipient
from syncd.model import AccountStatus, DesiredAccount, canonical_json, fingerprint
from syncd.plan import record_fingerprint
from syncd.recipient import choose_recipient
from syncd.store import Binding

ItemRef = tuple[str, str]  # (plan list name, contractor key)


@dataclass(slots=True)
class Step:
    """Everything one contractor's actions need, merged: at most one portal op per key."""

    key: str
    login: str | None
    account_id: str = ""  # known before the portal answers for everything but a create
    refs: list[ItemRef] = field(default_factory=list)
    op: PortalOp | None = None
    binding: Callable[[str], Binding] | None = None  # account id -> the new binding
    delete_binding: bool = False
    cancel_mail: bool = False
    # action, detail, and the detail as ``dump_json`` encodes it when built already
    audits: list[tuple[str, dict[str, Any], str | None]] = field(default_factory=list)
    # template, to (the e-mail: with portal.login: symbol it is not the login)
    mails: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)
    fingerprint: str | None = None  # the ERP row's digest, remembered if the write fails
    # Drift the light cycle repairs at once: an update whose account is gone from the
    # portal (deleted by hand) becomes this create; a deactivation of one is simply done.
    recreate: Create | None = None
    gone_is_done: bool = False


@dataclass(frozen=True, slots=True)
class ApplySettings:
    """What apply needs from the configuration."""

    run_id: str
    actor: str = "syncd"
    send_delay: timedelta = timedelta(minutes=5)
    language: str = "pl"
    portal_url: str | None = None
    erp_block_reason: str = "Konto zablokowane w systemie ERP"
    batch_size: int = 500
    backoff: BackoffPolicy = field(default_factory=BackoffPolicy)
    mail_recipient: tuple[MailRecipient, ...] = (MailRecipient.EMAIL,)


def _binding(
    desired: DesiredAccount,
    account_id: str,
    status: str,
    *,
    previous: Binding | None,
    erp_blocked: bool | None = None,
    fields: dict[str, Any] | None = None,
    encoded: str | None = None,
    activated: bool | None = None,
) -> Binding:
    """The binding after the step; ``fields`` is ``desired.fields()`` and ``encoded`` its
    ``canonical_json`` when the caller has them already (a create's), so that a first sync
    builds and encodes each account's fields once."""
    support = previous.support_block_reason if previous else None
    if activated is None:
        activated = (previous.activated if previous else False) or status == AccountStatus.ACTIVE
    if fields is None:
        fields = desired.fields()
    if encoded is None:
        encoded = canonical_json(fields)
    return Binding(
        key=desired.key,
        account_id=account_id,
        login=desired.login,
        fingerprint=fingerprint(fields, erp_blocked=desired.erp_blocked, encoded=encoded),
        fields_json=_with_mail_fields(desired, fields, encoded),
        status=status,
        erp_blocked=desired.erp_blocked if erp_blocked is None else erp_blocked,
        support_block_reason=support,
        support_blocked_by=previous.support_blocked_by if previous else None,
        activated=activated,
        source_fingerprint=desired.source_fingerprint,
    )


def _with_mail_fields(desired: DesiredAccount, fields: dict[str, Any], encoded: str) -> str:
    """The binding's stored fields: the synced ones plus where else mail may go
    (``DesiredAccount.mail_fields``), encoded again only when there is such an address."""
    extra = {name: value for name, value in desired.mail_fields().items() if value is not None}
    return canonical_json({**fields, **extra}) if extra else encoded


def _to(
    desired: DesiredAccount, settings: ApplySettings, fields: dict[str, Any] | None = None
) -> str:
    """The address the outbox row names; the mailer chooses again at send time.
    ``fields``: ``desired.fields()`` when the caller has built them."""
    fields = {**(desired.fields() if fields is None else fields), **desired.mail_fields()}
    return choose_recipient(settings.mail_recipient, fields, login=desired.login).address


def _mail_context(desired: DesiredAccount, settings: ApplySettings) -> dict[str, Any]:
    """What a template may show. Never a password: that is generated at send time."""
    return {
        "login": desired.login,
        "name": desired.name,
        "symbol": desired.symbol,
        "owner_name": desired.owner_name,
        "owner_email": desired.owner_email,
        "portal_url": settings.portal_url,
    }


class StepBuilder:
    """Turns the plan's items into one merged step per contractor."""

    def __init__(self, bindings: dict[str, Binding], settings: ApplySettings) -> None:
        self.bindings = bindings
        self.settings = settings
        self.steps: dict[str, Step] = {}

    def step(self, key: str, login: str | None, account_id: str = "") -> Step:
        if key not in self.steps:
            self.steps[key] = Step(key, login, account_id)
        return self.steps[key]

    def create(self, item: Create) -> None:
        d = item.desired
        # A bound account the portal lost (deleted by hand) comes back as a new account,
        # but support's decision stays: no sync ever lifts a support block (spec 2). Its
        # activation mail then waits for the unblock, which sends it.
        previous = self.bindings.get(d.key) if item.replaces else None
        support = previous.support_block_reason if previous else None
        blocked = d.erp_blocked or support is not None
        status = AccountStatus.BLOCKED if blocked else AccountStatus.PENDING
        reason = support or (self.settings.erp_block_reason if d.erp_blocked else None)
        step = self.step(d.key, d.login)
        step.fingerprint = record_fingerprint(d)
        step.refs.append(("create", d.key))
        fields = d.fields()
        encoded = canonical_json(fields)
        step.op = CreateAccount(d.key, fields, status, reason)

        def bind(account_id: str) -> Binding:
            return _binding(
                d,
                account_id,
                status,
                previous=previous if support else None,
                fields=fields,
                encoded=encoded,
                activated=False,  # a new account has no password yet
            )

        step.binding = bind
        # dump_json of {"fields": fields, "status": status}, around the encoded fields.
        detail = {"fields": fields, "status": status}
        step.audits.append(("create", detail, f'{{"fields":{encoded},"status":"{status}"}}'))
        if item.replaces:
            step.audits.append(
                ("recreate", {"lost_account_id": item.replaces, "kept": reason}, None)
            )
            # Mail still queued for the lost account (its activation) would go nowhere:
            # cancel it, so the new account gets exactly one activation mail.
            step.cancel_mail = True
        if not blocked:
            context = _mail_context(d, self.settings)
            step.mails.append(("activation", _to(d, self.settings, fields), context))

    def adopt(self, item: Adopt) -> None:
        d = item.desired
        step = self.step(d.key, d.login, item.account_id)
        step.fingerprint = record_fingerprint(d)
        step.refs.append(("adopt", d.key))
        fields = {name: change["new"] for name, change in item.changes.items()}
        step.op = UpdateAccount(d.key, item.account_id, fields)
        status = item.status
        step.binding = lambda account_id: _binding(d, account_id, status, previous=None)
        action = "rebind" if item.own else "adopt"
        detail = {"account_id": item.account_id, "changes": item.changes}
        step.audits.append((action, detail, None))
        if item.own and status == AccountStatus.PENDING:
            # The crash that lost the bookkeeping also lost the activation mail: enqueue it.
            step.mails.append(
                ("activation", _to(d, self.settings), _mail_context(d, self.settings))
            )

    def update(self, item: Update, *, quiet: bool = False) -> None:
        d = item.desired
        step = self.step(d.key, d.login, item.account_id)
        step.fingerprint = record_fingerprint(d)
        step.recreate = Create(d, replaces=item.account_id)
        previous = self.bindings.get(d.key)
        if not quiet:
            step.refs.append(("update", d.key))
        fields = {name: change["new"] for name, change in item.changes.items()}
        if item.reactivate:
            fields["status"] = item.status
            fields["block_reason"] = self.settings.erp_block_reason if d.erp_blocked else None
            if previous and previous.support_block_reason:
                fields["block_reason"] = previous.support_block_reason
        if fields:
            step.op = UpdateAccount(d.key, item.account_id, fields)
        status = item.status
        step.binding = lambda account_id: _binding(d, account_id, status, previous=previous)
        if quiet:
            return
        step.audits.append(("update", {"changes": item.changes}, None))
        if "login" in item.changes:
            context = {**_mail_context(d, self.settings), "old_login": item.changes["login"]["old"]}
            step.mails.append(("login_changed", _to(d, self.settings), context))
        if item.reactivate:
            step.audits.append(("reactivate", {"status": item.status}, None))
            # A pending account never got its password and leaving cancelled its activation
            # mail, so it comes back with a new activation mail, not a "welcome back".
            template = "activation" if item.status == AccountStatus.PENDING else "reactivated"
            step.mails.append((template, _to(d, self.settings), _mail_context(d, self.settings)))

    def block(self, item: Block | Unblock) -> None:
        d = item.desired
        step = self.step(d.key, d.login, item.account_id)
        step.fingerprint = record_fingerprint(d)
        step.recreate = Create(d, replaces=item.account_id)
        previous = self.bindings[d.key]
        blocking = isinstance(item, Block)
        step.refs.append(("block" if blocking else "unblock", d.key))
        if item.portal_change:
            status = AccountStatus.BLOCKED if blocking else item.status  # type: ignore[union-attr]
            fields: dict[str, Any] = {
                "status": status,
                "block_reason": item.reason if isinstance(item, Block) else None,
            }
            if isinstance(step.op, UpdateAccount):
                fields = {**step.op.fields, **fields}
            step.op = UpdateAccount(d.key, item.account_id, fields)
            template = "blocked" if blocking else "unblocked"
            if status == AccountStatus.PENDING:
                # Never activated (created while blocked): it has no password yet, so the
                # unblock mails the activation, replacing any still queued for it.
                template = "activation"
                step.cancel_mail = True
            context = _mail_context(d, self.settings)
            if isinstance(item, Block):
                context["reason"] = item.reason
            step.mails.append((template, _to(d, self.settings), context))
        else:
            status = previous.status
        step.binding = lambda account_id: _binding(
            d, account_id, status, previous=previous, erp_blocked=blocking
        )
        detail = {"portal_change": item.portal_change}
        step.audits.append(("block" if blocking else "unblock", detail, None))

    def remove(self, item: Remove) -> None:
        step = self.step(item.key, item.login, item.account_id)
        step.refs.append(("remove", item.key))
        if item.lost:
            # Never recorded, so no binding and no mail of its own: only the account goes
            # (the contractor's binding, if it has one, is another account's).
            deactivate = item.mode == "deactivate"
            inactive = {"status": AccountStatus.INACTIVE}
            step.op = (
                UpdateAccount(item.key, item.account_id, inactive)
                if deactivate
                else DeleteAccount(item.key, item.account_id)
            )
            step.gone_is_done = True
            detail = {"account_id": item.account_id, "lost": True}
            step.audits.append(("deactivate" if deactivate else "remove", detail, None))
            return
        step.cancel_mail = True
        if item.mode == "deactivate":
            previous = self.bindings[item.key]
            step.op = UpdateAccount(item.key, item.account_id, {"status": AccountStatus.INACTIVE})
            step.binding = lambda account_id: _replace_status(previous, AccountStatus.INACTIVE)
            step.gone_is_done = True  # an account deleted by hand is even less active
            step.audits.append(("deactivate", {"account_id": item.account_id}, None))
        else:
            step.op = DeleteAccount(item.key, item.account_id)
            step.delete_binding = True
            step.audits.append(("remove", {"account_id": item.account_id}, None))


def _replace_status(binding: Binding, status: str) -> Binding:
    return replace(binding, status=status)


def step_batches(
    plan: Plan, bindings: dict[str, Binding], settings: ApplySettings
) -> Iterator[list[Step]]:
    """The plan's items merged per contractor, ``batch_size`` contractors at a time.

    Removals come first so that logins they free can be reused in the same cycle. Steps
    are built one batch at a time: a first sync of 200,000 contractors never holds
    200,000 steps (each with copies of the fields and a mail context) at once, nor an
    index entry per create: only the other items are grouped by key (a create of a key
    that has one joins its step), the creates follow in the plan's order.
    """
    blocks: list[Block | Unblock] = [*plan.block, *plan.unblock]
    by_key: dict[str, list[tuple[str, Any]]] = {}
    for remove in plan.remove:
        by_key.setdefault(remove.key, []).append(("remove", remove))
    for kind, items in (
        ("update", plan.update),
        ("refresh", plan.refresh),
        ("block", blocks),
        ("adopt", plan.adopt),
    ):
        for item in items:
            by_key.setdefault(item.desired.key, []).append((kind, item))
    joined: set[str] = set()
    for create in plan.create.held:  # a spooled create's key has no other item (Creates)
        if create.desired.key in by_key:
            by_key[create.desired.key].append(("create", create))
            joined.add(create.desired.key)
    alone = ([("create", c)] for c in plan.create if c.desired.key not in joined)
    batch: list[list[tuple[str, Any]]] = []
    for group in chain(list(by_key.values()), alone):
        batch.append(group)
        if len(batch) == settings.batch_size:
            yield _built(batch, bindings, settings)
            batch = []
    if batch:
        yield _built(batch, bindings, settings)


def _built(
    groups: list[list[tuple[str, Any]]], bindings: dict[str, Binding], settings: ApplySettings
) -> list[Step]:
    builder = StepBuilder(bindings, settings)
    for group in groups:
        for kind, item in group:
            _BUILD[kind](builder, item)
    return list(builder.steps.values())


_BUILD: dict[str, Callable[[StepBuilder, Any], None]] = {
    "remove": StepBuilder.remove,
    "update": StepBuilder.update,
    "refresh": lambda builder, item: builder.update(item, quiet=True),
    "block": StepBuilder.block,
    "adopt": StepBuilder.adopt,
    "create": StepBuilder.create,
}
