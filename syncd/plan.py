"""The plan: a pure diff from what the ERP wants to what syncd last applied (spec section 4).

``make_plan`` takes the mapped contractors, the state store's bindings and, for a full
reconcile, the portal's own listing, and says what a cycle would do. It touches no network,
no clock and no database but a sync's private spool of new accounts (``syncd._spool``), so
``plan`` and ``sync`` compute exactly the same thing and the property tests can run it
thousands of times.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from syncd import safety
from syncd._plan_duplicates import TaxIds
from syncd._plan_items import (
    Adopt,
    Block,
    Create,
    Creates,
    Deferral,
    Deferred,
    Plan,
    Remove,
    Unblock,
    Update,
    changes_between,
)
from syncd._plan_logins import Claims, enforce_unique_logins
from syncd._plan_resolve import resolve_creates
from syncd._spool import Spool, Spooled
from syncd.mapping import fold_login
from syncd.model import AccountStatus, Conflict, DesiredAccount, Unchanged

__all__ = [
    "Adopt",
    "Block",
    "BoundAccount",
    "Create",
    "Deferral",
    "ExistingAccount",
    "Plan",
    "PlanOptions",
    "Remove",
    "Unblock",
    "Update",
    "make_plan",
    "resolve_creates",
]


class BoundAccount(Protocol):
    """What the plan needs to know of a binding (``syncd.store.Binding`` satisfies it)."""

    @property
    def key(self) -> str: ...
    @property
    def account_id(self) -> str: ...
    @property
    def login(self) -> str: ...
    @property
    def fingerprint(self) -> str: ...
    @property
    def fields(self) -> dict[str, Any]: ...
    @property
    def status(self) -> str: ...
    @property
    def erp_blocked(self) -> bool: ...
    @property
    def support_block_reason(self) -> str | None: ...
    @property
    def activated(self) -> bool: ...
    @property
    def source_fingerprint(self) -> str | None: ...


class ExistingAccount(Protocol):
    """What the plan needs to know of a portal account (``connectors.base.PortalAccount``)."""

    @property
    def id(self) -> str: ...
    @property
    def login(self) -> str: ...
    @property
    def contractor_key(self) -> str | None: ...
    @property
    def status(self) -> str: ...
    @property
    def block_reason(self) -> str | None: ...
    @property
    def fields(self) -> dict[str, Any]: ...


@dataclass(frozen=True, slots=True)
class PlanOptions:
    """Everything besides the data that decides the plan."""

    on_removed: str = "delete"  # delete | deactivate
    erp_block_reason: str = "Konto zablokowane w systemie ERP"
    max_removals: int | None = None  # None: no guard; else the most removals let through
    allow_removals: bool = False
    # `--contractor K`: plan only these keys. The others are still read, because a login
    # must stay unique across every contractor in scope, not only the ones asked about.
    only_keys: frozenset[str] | None = None
    # The synced fields the portal keeps (``Portal.stored_fields``); None: all of them. A
    # full reconcile compares only these with the portal's listing, so a portal without
    # contacts or discounts is not "repaired" every night.
    portal_fields: frozenset[str] | None = None
    # Records the portal refused that are not due yet, or quarantined (``syncd.backoff``):
    # left alone unless their ERP row differs from the one that failed.
    deferred: Mapping[str, Deferral] = field(default_factory=dict)
    # Source safety (``syncd.safety``): a read of fewer contractors holds every removal.
    # None: no scope check. ``scope_reference`` and ``feature`` only word the reason.
    min_scope: int | None = None
    scope_reference: int | None = None
    feature: str | None = None
    # The portal compares logins case- and accent-insensitively (``PortalLimits``): two
    # logins that fold alike are one login for the uniqueness rules.
    fold_logins: bool = False


def record_fingerprint(desired: DesiredAccount) -> str:
    """The digest a failed record is remembered by: its raw ERP row's, else its fields'."""
    return desired.source_fingerprint or desired.fingerprint()


def _status_after_unblock(binding: BoundAccount) -> str:
    return AccountStatus.ACTIVE if binding.activated else AccountStatus.PENDING


def _plan_bound(
    plan: Plan,
    desired: DesiredAccount,
    binding: BoundAccount,
    options: PlanOptions,
    portal: Mapping[str, ExistingAccount] | None,
) -> None:
    """Add what one contractor that already has an account needs."""
    if portal is None:
        current_fields, current_status = binding.fields, binding.status
        if binding.fingerprint == desired.fingerprint() and (
            binding.status != AccountStatus.INACTIVE
        ):
            if binding.source_fingerprint != desired.source_fingerprint:
                # Same account, but the raw row moved (spaces, case, a NIP's dashes):
                # note the new row quietly so the next cycle can skip mapping it.
                plan.refresh.append(Update(desired, binding.account_id, {}, False, binding.status))
            else:
                plan.unchanged += 1
            return
    else:
        account = portal.get(binding.account_id)
        if account is None:
            plan.create.append(Create(desired, replaces=binding.account_id))
            return
        current_fields, current_status = account.fields, account.status

    changes = changes_between(current_fields, desired.fields())
    if portal is not None and options.portal_fields is not None:
        changes = {name: c for name, c in changes.items() if name in options.portal_fields}
    reactivate = binding.status == AccountStatus.INACTIVE
    expected_status = binding.status
    if reactivate:
        expected_status = (
            AccountStatus.BLOCKED
            if desired.erp_blocked or binding.support_block_reason
            else _status_after_unblock(binding)
        )
    if (
        portal is not None
        and current_status != expected_status
        and not reactivate
        and desired.erp_blocked == binding.erp_blocked  # a block/unblock sets it anyway
    ):
        # Drift: someone changed the status by hand in the portal; put it back, in the same
        # update as any fields edited by hand (one portal op per contractor).
        changes = {**changes, "status": {"old": current_status, "new": expected_status}}
    touched = False
    if changes or reactivate:
        plan.update.append(
            Update(desired, binding.account_id, changes, reactivate, status=expected_status)
        )
        touched = True
    support = binding.support_block_reason is not None
    if desired.erp_blocked and not binding.erp_blocked:
        plan.block.append(
            Block(desired, binding.account_id, options.erp_block_reason, portal_change=not support)
        )
        touched = True
    elif binding.erp_blocked and not desired.erp_blocked:
        plan.unblock.append(
            Unblock(
                desired,
                binding.account_id,
                status=_status_after_unblock(binding),
                portal_change=not support,
            )
        )
        touched = True
    if not touched:
        if binding.fingerprint != desired.fingerprint():
            # Only bookkeeping differs (e.g. the fingerprint recipe): refresh it quietly.
            plan.refresh.append(Update(desired, binding.account_id, {}, False, binding.status))
        else:
            plan.unchanged += 1


def _spooled_creates(plan: Plan, item: Spooled, options: PlanOptions) -> bool:
    """Whether a spooled new account stays a create (else it is deferred, or only read so
    that its login counts for the uniqueness rules)."""
    if options.only_keys is not None and item.key not in options.only_keys:
        return False
    deferral = options.deferred.get(item.key)
    if deferral is not None and deferral.fingerprint == item.source_fingerprint:
        plan.deferred.append(Deferred(item.key, item.symbol, item.login, deferral))
        return False
    return True


Owners = Callable[[Collection[str]], Mapping[str, BoundAccount]]


def make_plan(
    desired: Iterable[DesiredAccount | Conflict | Unchanged | Spooled],
    bindings: Mapping[str, BoundAccount],
    options: PlanOptions,
    portal: Mapping[str, ExistingAccount] | None = None,
    *,
    owners: Owners | None = None,
    spool: Spool | None = None,
) -> Plan:
    """Diff the ERP's contractors against the bindings (and, in full mode, the portal).

    ``desired`` is consumed once, as a stream. ``portal`` maps account id to account for a
    full reconcile: fields are then compared with what the portal really holds, so edits made
    by hand in the portal are repaired.

    ``bindings`` holds every binding, or, when ``owners`` is given, at least those of the
    contractors in ``desired`` that are not ``Unchanged`` and of the ones it no longer has
    (it may be filled while ``desired`` streams). ``owners(logins)`` then returns, by key,
    the bindings holding any of ``logins``: the plan asks it about the logins that mapped
    contractors want, so an unchanged contractor's login is never given away.

    ``Spooled`` items are new accounts a sync wrote to ``spool`` (``syncd._spool``): they
    become the plan's spooled creates, and their logins are checked in the spool.
    """
    plan = Plan(create=Creates(spool=spool))
    unspooled: list[str] = []  # spooled, but no create after all (deferred, not asked for)
    seen: set[str] = set()  # keys with a binding (the others only count towards scope)
    scope = 0
    claims = Claims(fold=fold_login if options.fold_logins else None)
    tax_ids = TaxIds()  # duplicate NIPs only warn (syncd._plan_duplicates)
    only = options.only_keys
    for item in desired:
        scope += 1
        if isinstance(item, Spooled):
            tax_ids.add(item.key, item.symbol, item.tax_id)
            if not _spooled_creates(plan, item, options):
                claims.add(item)  # its claim stays; it leaves the spool below
                unspooled.append(item.key)
            continue
        if isinstance(item, Unchanged):
            tax_ids.add(item.key, item.symbol, item.tax_id)
            if only is None or item.key in only:
                plan.unchanged += 1
            if owners is None:
                seen.add(item.key)
            continue
        if item.key in bindings:
            seen.add(item.key)
        if isinstance(item, Conflict):
            if only is None or item.key in only:
                plan.conflict.append(item)
            continue
        claims.add(item)
        tax_ids.add(item.key, item.symbol, item.tax_id)
        if only is not None and item.key not in only:
            continue  # read only so that its login counts for the uniqueness rules
        deferral = options.deferred.get(item.key)
        if deferral is not None and deferral.fingerprint == record_fingerprint(item):
            plan.deferred.append(Deferred(item.key, item.symbol, item.login, deferral))
            continue
        binding = bindings.get(item.key)
        if binding is None:
            plan.create.append(Create(item))
        else:
            _plan_bound(plan, item, binding, options, portal)

    plan.create.drop(unspooled)
    plan.scope = scope
    plan.duplicate_tax_ids = tax_ids.duplicates(only)
    lost = _lost_accounts(plan, bindings, seen, options, portal) if portal is not None else []
    _plan_removals(plan, bindings, seen, options, lost)
    enforce_unique_logins(plan, bindings, claims, owners)
    return plan


def _lost_accounts(
    plan: Plan,
    bindings: Mapping[str, BoundAccount],
    seen: set[str],
    options: PlanOptions,
    portal: Mapping[str, ExistingAccount],
) -> list[Remove]:
    """Portal accounts carrying a contractor's key that no binding points at: syncd created
    them and died before its state store recorded it. One whose contractor is still in
    scope with the same login is bound again by ``resolve_creates``; any other (the
    contractor left scope, or has since got an account under a new e-mail) would stay
    in the portal forever, so it is removed like a contractor that left scope.

    Only for contractors with nothing else to do in this cycle (a step holds one portal
    operation per contractor) and one account per contractor a cycle: the next full
    reconcile takes the rest. Counted with the other removals by the safety guard.
    """
    bound = {b.account_id for b in bindings.values()}
    busy = {key for key in bindings if key not in seen}
    busy.update(c.desired.key for c in plan.create)
    busy.update(u.desired.key for u in (*plan.update, *plan.refresh))
    busy.update(b.desired.key for b in plan.block)
    busy.update(u.desired.key for u in plan.unblock)
    busy.update(c.key for c in plan.conflict)
    busy.update(d.key for d in plan.deferred)
    lost: list[Remove] = []
    for account in sorted(portal.values(), key=lambda a: a.id):
        key = account.contractor_key
        if not key or account.id in bound or key in busy:
            continue
        if options.only_keys is not None and key not in options.only_keys:
            continue
        if options.on_removed == "deactivate" and account.status == AccountStatus.INACTIVE:
            continue
        symbol = str(account.fields.get("symbol") or "")
        lost.append(Remove(key, account.id, account.login, symbol, options.on_removed, lost=True))
        busy.add(key)
    return lost


def _plan_removals(
    plan: Plan,
    bindings: Mapping[str, BoundAccount],
    seen: set[str],
    options: PlanOptions,
    lost: list[Remove],
) -> None:
    removals = [
        Remove(b.key, b.account_id, b.login, b.fields.get("symbol") or "", options.on_removed)
        for key, b in bindings.items()
        if key not in seen
        and (options.only_keys is None or key in options.only_keys)
        and b.status != AccountStatus.INACTIVE
    ]
    removals += lost
    removals.sort(key=lambda r: r.key)
    waiting = [r for r in removals if r.key in options.deferred]
    for removal in waiting:
        deferral = options.deferred[removal.key]
        plan.deferred.append(Deferred(removal.key, removal.symbol, removal.login, deferral))
    if waiting:
        removals = [r for r in removals if r.key not in options.deferred]
    hold = safety.judge(
        len(removals),
        plan.scope,
        max_removals=options.max_removals,
        min_scope=options.min_scope,
        reference=options.scope_reference,
        feature=options.feature,
    )
    if hold is not None and not options.allow_removals:
        plan.held.extend(removals)
        plan.held_limit = options.max_removals
        plan.held_check, plan.held_reason = hold.check, hold.reason
    else:
        plan.remove.extend(removals)
