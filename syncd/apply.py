"""Apply a plan: portal writes first, then syncd's bookkeeping, batch by batch.

For each batch the portal connector applies the operations (one transaction per batch,
one-by-one on error), then the state store records, in ONE transaction, the new bindings,
an audit row per action and the mails the actions cause. The two databases cannot share a
transaction, so the order is chosen to make a crash between them harmless: a portal write
whose bookkeeping was lost is found again on the next cycle (the portal account carries the
contractor key, and ``resolve_creates`` binds it again), never duplicated, and its mail is
enqueued then. No mail is ever enqueued for a portal write that did not happen.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

import structlog

from connectors.base import CreateAccount, DeleteAccount, OpOutcome, Portal, PortalOp, UpdateAccount
from syncd._plan_items import Adopt, Block, Create, Plan, Remove, Unblock, Update
from syncd.errors import PortalUnavailable
from syncd.model import AccountStatus, DesiredAccount
from syncd.store import AuditEntry, Binding, MailEntry, StateStore

log = structlog.get_logger(__name__)

ItemRef = tuple[str, str]  # (plan list name, contractor key)


@dataclass(slots=True)
class _Step:
    """Everything one contractor's actions need, merged: at most one portal op per key."""

    key: str
    login: str | None
    account_id: str = ""  # known before the portal answers for everything but a create
    refs: list[ItemRef] = field(default_factory=list)
    op: PortalOp | None = None
    binding: Callable[[str], Binding] | None = None  # account id -> the new binding
    delete_binding: bool = False
    cancel_mail: bool = False
    audits: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    mails: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)  # template, to


@dataclass(slots=True)
class ApplyReport:
    """The outcome of each plan item: ``"ok"`` or the error that stopped it."""

    results: dict[ItemRef, str] = field(default_factory=dict)
    interrupted: bool = False  # stopped between batches; the rest is left for the next cycle

    @property
    def failed(self) -> int:
        return sum(1 for result in self.results.values() if result != "ok")


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


def _binding(
    desired: DesiredAccount,
    account_id: str,
    status: str,
    *,
    previous: Binding | None,
    erp_blocked: bool | None = None,
) -> Binding:
    support = previous.support_block_reason if previous else None
    activated = (previous.activated if previous else False) or status == AccountStatus.ACTIVE
    return Binding(
        key=desired.key,
        account_id=account_id,
        login=desired.login,
        fingerprint=desired.fingerprint(),
        fields_json=json.dumps(desired.fields(), ensure_ascii=False, sort_keys=True),
        status=status,
        erp_blocked=desired.erp_blocked if erp_blocked is None else erp_blocked,
        support_block_reason=support,
        support_blocked_by=previous.support_blocked_by if previous else None,
        activated=activated,
        source_fingerprint=desired.source_fingerprint,
    )


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


class _StepBuilder:
    """Turns the plan's items into one merged step per contractor."""

    def __init__(self, bindings: dict[str, Binding], settings: ApplySettings) -> None:
        self.bindings = bindings
        self.settings = settings
        self.steps: dict[str, _Step] = {}

    def step(self, key: str, login: str | None, account_id: str = "") -> _Step:
        if key not in self.steps:
            self.steps[key] = _Step(key, login, account_id)
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
        step.refs.append(("create", d.key))
        step.op = CreateAccount(d.key, d.fields(), status, reason)

        def bind(account_id: str) -> Binding:
            fresh = _binding(d, account_id, status, previous=previous if support else None)
            return replace(fresh, activated=False)  # a new account has no password yet

        step.binding = bind
        step.audits.append(("create", {"fields": d.fields(), "status": status}))
        if item.replaces:
            step.audits.append(("recreate", {"lost_account_id": item.replaces, "kept": reason}))
        if not blocked:
            step.mails.append(("activation", d.login, _mail_context(d, self.settings)))

    def adopt(self, item: Adopt) -> None:
        d = item.desired
        step = self.step(d.key, d.login, item.account_id)
        step.refs.append(("adopt", d.key))
        fields = {name: change["new"] for name, change in item.changes.items()}
        step.op = UpdateAccount(d.key, item.account_id, fields)
        status = item.status
        step.binding = lambda account_id: _binding(d, account_id, status, previous=None)
        action = "rebind" if item.own else "adopt"
        step.audits.append((action, {"account_id": item.account_id, "changes": item.changes}))
        if item.own and status == AccountStatus.PENDING:
            # The crash that lost the bookkeeping also lost the activation mail: enqueue it.
            step.mails.append(("activation", d.login, _mail_context(d, self.settings)))

    def update(self, item: Update, *, quiet: bool = False) -> None:
        d = item.desired
        step = self.step(d.key, d.login, item.account_id)
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
        step.audits.append(("update", {"changes": item.changes}))
        if "login" in item.changes:
            context = {**_mail_context(d, self.settings), "old_login": item.changes["login"]["old"]}
            step.mails.append(("login_changed", d.login, context))
        if item.reactivate:
            step.audits.append(("reactivate", {"status": item.status}))
            # A pending account never got its password and leaving cancelled its activation
            # mail, so it comes back with a new activation mail, not a "welcome back".
            template = "activation" if item.status == AccountStatus.PENDING else "reactivated"
            step.mails.append((template, d.login, _mail_context(d, self.settings)))

    def block(self, item: Block | Unblock) -> None:
        d = item.desired
        step = self.step(d.key, d.login, item.account_id)
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
            step.mails.append((template, d.login, context))
        else:
            status = previous.status
        step.binding = lambda account_id: _binding(
            d, account_id, status, previous=previous, erp_blocked=blocking
        )
        detail = {"portal_change": item.portal_change}
        step.audits.append(("block" if blocking else "unblock", detail))

    def remove(self, item: Remove) -> None:
        step = self.step(item.key, item.login, item.account_id)
        step.refs.append(("remove", item.key))
        step.cancel_mail = True
        if item.mode == "deactivate":
            previous = self.bindings[item.key]
            step.op = UpdateAccount(item.key, item.account_id, {"status": AccountStatus.INACTIVE})
            step.binding = lambda account_id: _replace_status(previous, AccountStatus.INACTIVE)
            step.audits.append(("deactivate", {"account_id": item.account_id}))
        else:
            step.op = DeleteAccount(item.key, item.account_id)
            step.delete_binding = True
            step.audits.append(("remove", {"account_id": item.account_id}))


def _replace_status(binding: Binding, status: str) -> Binding:
    return replace(binding, status=status)


def step_batches(
    plan: Plan, bindings: dict[str, Binding], settings: ApplySettings
) -> Iterator[list[_Step]]:
    """The plan's items merged per contractor, ``batch_size`` contractors at a time.

    Removals come first so that logins they free can be reused in the same cycle. Steps
    are built one batch at a time: a first sync of 200,000 contractors never holds
    200,000 steps (each with copies of the fields and a mail context) at once.
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
        ("create", plan.create),
    ):
        for item in items:
            by_key.setdefault(item.desired.key, []).append((kind, item))
    keys = list(by_key)
    for start in range(0, len(keys), settings.batch_size):
        builder = _StepBuilder(bindings, settings)
        for key in keys[start : start + settings.batch_size]:
            for kind, item in by_key.pop(key):
                _BUILD[kind](builder, item)
        yield list(builder.steps.values())


_BUILD: dict[str, Callable[[_StepBuilder, Any], None]] = {
    "remove": _StepBuilder.remove,
    "update": _StepBuilder.update,
    "refresh": lambda builder, item: builder.update(item, quiet=True),
    "block": _StepBuilder.block,
    "adopt": _StepBuilder.adopt,
    "create": _StepBuilder.create,
}


def apply_plan(
    plan: Plan,
    *,
    portal: Portal,
    store: StateStore,
    bindings: dict[str, Binding],
    settings: ApplySettings,
    now: Callable[[], datetime],
    heartbeat: Callable[[], None] = lambda: None,
    stop: Callable[[], bool] = lambda: False,
) -> ApplyReport:
    """Apply ``plan``; returns the result of every item. Raises ``PortalUnavailable`` after
    recording what was applied when the portal fails part-way.

    ``stop`` is asked before each batch: once it says yes (SIGTERM), the batches already
    committed stand and the rest is left unapplied, to be planned again by the next cycle.
    Nothing is ever half-applied, because a batch is the unit of bookkeeping."""
    report = ApplyReport()
    for chunk in step_batches(plan, bindings, settings):
        if stop():
            report.interrupted = True
            log.warning("apply.interrupted", applied=len(report.results))
            break
        ops = [step.op for step in chunk if step.op is not None]
        outcomes: dict[int, OpOutcome] = {}
        if ops:
            for outcome in portal.apply(ops):
                outcomes[id(outcome.op)] = outcome
        unavailable = _record(
            chunk, outcomes, store=store, settings=settings, report=report, now=now()
        )
        if unavailable is not None:
            raise unavailable
        heartbeat()
    return report


def _record(
    chunk: Sequence[_Step],
    outcomes: dict[int, OpOutcome],
    *,
    store: StateStore,
    settings: ApplySettings,
    report: ApplyReport,
    now: datetime,
) -> PortalUnavailable | None:
    """Write one batch's bookkeeping in one transaction; return the portal outage, if any."""
    upserts: list[Binding] = []
    deletes: list[str] = []
    audits: list[AuditEntry] = []
    mails: list[MailEntry] = []
    cancels: list[str] = []
    unavailable: PortalUnavailable | None = None
    for step in chunk:
        outcome = outcomes.get(id(step.op)) if step.op is not None else None
        if outcome is not None and not outcome.ok:
            error = outcome.error
            if isinstance(error, PortalUnavailable):
                unavailable = unavailable or error
            message = str(error)
            for ref in step.refs:
                report.results[ref] = message
            for action, detail in step.audits:
                audits.append(
                    AuditEntry(step.key, step.login, action, "error", {**detail, "error": message})
                )
            log.warning("record.failed", contractor=step.key, login=step.login, error=message)
            continue
        account_id = outcome.account_id if outcome and outcome.account_id else step.account_id
        if step.delete_binding:
            deletes.append(step.key)
        elif step.binding is not None:
            upserts.append(step.binding(account_id))
        if step.cancel_mail:
            cancels.append(step.key)
        for action, detail in step.audits:
            audits.append(AuditEntry(step.key, step.login, action, "ok", detail, settings.actor))
        for template, recipient, context in step.mails:
            mails.append(
                MailEntry(
                    key=step.key,
                    account_id=account_id,
                    recipient=recipient,
                    template=template,
                    not_before=now + settings.send_delay,
                    context=context,
                    language=settings.language,
                )
            )
        for ref in step.refs:
            report.results[ref] = "ok"
    if upserts or deletes or audits or mails or cancels:
        store.commit_batch(
            upserts=upserts,
            deletes=deletes,
            audits=audits,
            mails=mails,
            cancel_mail_for=cancels,
            run_id=settings.run_id,
        )
    return unavailable
