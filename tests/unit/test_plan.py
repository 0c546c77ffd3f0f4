"""The plan: a pure diff of desired accounts against bindings (and the portal's listing)."""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Any

from syncd.mapping import map_contractor
from syncd.model import Conflict, ConflictKind, DesiredAccount, SourceContractor
from syncd.plan import PlanOptions, make_plan, resolve_creates


@dataclass(frozen=True)
class Bound:
    """A binding as the plan sees it (the store's Binding has the same attributes)."""

    key: str
    account_id: str
    login: str
    fingerprint: str
    fields_json: str
    status: str = "active"
    erp_blocked: bool = False
    support_block_reason: str | None = None
    activated: bool = True
    source_fingerprint: str | None = None

    @property
    def fields(self) -> dict[str, Any]:
        parsed: dict[str, Any] = json.loads(self.fields_json)
        return parsed


@dataclass(frozen=True)
class Account:
    """A portal account as the plan sees it."""

    id: str
    login: str
    contractor_key: str | None
    status: str
    block_reason: str | None
    fields: dict[str, Any]


def desired(key: str, email: str | None = None, **extra: Any) -> DesiredAccount:
    result = map_contractor(
        SourceContractor(
            key=key,
            symbol=f"K{key}",
            name=f"Firma {key}",
            email_raw=email or f"k{key}@example.pl",
            **extra,
        )
    )
    assert isinstance(result, DesiredAccount)
    return result


def bound(item: DesiredAccount, account_id: str | None = None, **extra: Any) -> Bound:
    return Bound(
        key=item.key,
        account_id=account_id or f"a{item.key}",
        login=item.login,
        fingerprint=item.fingerprint(),
        fields_json=json.dumps(item.fields()),
        erp_blocked=item.erp_blocked,
        source_fingerprint=item.source_fingerprint,
        **extra,
    )


OPTIONS = PlanOptions()


def test_new_contractors_are_created() -> None:
    """A contractor without a binding is planned as a create."""
    plan = make_plan([desired("1"), desired("2")], {}, OPTIONS)
    assert [c.desired.key for c in plan.create] == ["1", "2"]
    assert plan.unchanged == 0


def test_nothing_changed_means_an_empty_plan() -> None:
    """Bound contractors whose fingerprint matches are only counted as unchanged."""
    items = [desired("1"), desired("2")]
    plan = make_plan(items, {i.key: bound(i) for i in items}, OPTIONS)
    assert plan.is_empty
    assert plan.unchanged == 2


def test_changed_fields_are_listed_with_old_and_new_values() -> None:
    """An update lists exactly the fields that changed, with old and new values."""
    before = desired("1", price_level="Hurtowa", discount=Decimal(5))
    after = desired("1", price_level="Dystrybutor", discount=Decimal("7.5"))
    plan = make_plan([after], {"1": bound(before)}, OPTIONS)
    assert len(plan.update) == 1
    assert plan.update[0].changes == {
        "price_level": {"old": "Hurtowa", "new": "Dystrybutor"},
        "discount": {"old": "5.00", "new": "7.50"},
    }


def test_contractor_leaving_scope_is_removed() -> None:
    """A binding whose contractor is no longer read is removed in the configured mode."""
    gone = desired("9")
    plan = make_plan([], {"9": bound(gone)}, PlanOptions(on_removed="deactivate"))
    assert [(r.key, r.mode) for r in plan.remove] == [("9", "deactivate")]


def test_removals_over_the_limit_are_all_held() -> None:
    """Over safety.max_removals, every removal of the cycle is held, none applied."""
    gone = [desired(str(k)) for k in range(5)]
    bindings = {g.key: bound(g) for g in gone}
    plan = make_plan([], bindings, PlanOptions(max_removals=2))
    assert plan.remove == []
    assert len(plan.held) == 5
    allowed = make_plan([], bindings, PlanOptions(max_removals=2, allow_removals=True))
    assert len(allowed.remove) == 5
    assert allowed.held == []


def test_duplicate_email_between_new_contractors_is_a_conflict_for_both() -> None:
    """Two new contractors with one e-mail: neither gets an account, both are conflicts."""
    plan = make_plan([desired("1", "x@a.pl"), desired("2", "X@A.pl "), desired("3")], {}, OPTIONS)
    assert [c.desired.key for c in plan.create] == ["3"]
    kinds = {c.key: c.kind for c in plan.conflict}
    assert kinds == {"1": ConflictKind.DUPLICATE_EMAIL, "2": ConflictKind.DUPLICATE_EMAIL}
    assert "2" in next(c.reason for c in plan.conflict if c.key == "1")


def test_login_owned_by_a_bound_contractor_stays_with_it() -> None:
    """A new contractor asking for a login that a bound one holds is a conflict."""
    owner = desired("1", "x@a.pl")
    plan = make_plan([owner, desired("2", "x@a.pl")], {"1": bound(owner)}, OPTIONS)
    assert list(plan.create) == []
    assert plan.unchanged == 1
    assert [(c.key, c.kind) for c in plan.conflict] == [("2", ConflictKind.LOGIN_TAKEN)]


def test_conflicts_from_mapping_pass_through() -> None:
    """Mapping conflicts appear in the plan and touch nothing."""
    conflict = Conflict("7", "K7", "Firma 7", None, ConflictKind.MISSING_EMAIL, "no e-mail")
    plan = make_plan([conflict], {}, OPTIONS)
    assert plan.conflict == [conflict]
    assert plan.is_empty


def test_erp_block_and_unblock() -> None:
    """An ERP block blocks the account; lifting it unblocks; a support block stays."""
    item = desired("1")
    blocked = replace(item, erp_blocked=True)
    plan = make_plan([blocked], {"1": bound(item)}, OPTIONS)
    assert [b.portal_change for b in plan.block] == [True]
    plan = make_plan([item], {"1": bound(blocked, status="blocked")}, OPTIONS)
    assert [(u.status, u.portal_change) for u in plan.unblock] == [("active", True)]
    support = bound(blocked, status="blocked", support_block_reason="unpaid invoices")
    plan = make_plan([item], {"1": support}, OPTIONS)
    assert [u.portal_change for u in plan.unblock] == [False]


def test_inactive_binding_coming_back_is_reactivated() -> None:
    """In deactivate mode a contractor that comes back gets the same account back."""
    item = desired("1")
    plan = make_plan([item], {"1": bound(item, status="inactive")}, OPTIONS)
    assert [(u.account_id, u.reactivate, u.status) for u in plan.update] == [("a1", True, "active")]


def test_only_keys_limits_the_plan_but_not_the_uniqueness_rules() -> None:
    """`--contractor K` plans only K, yet a duplicate with another contractor still counts."""
    items = [desired("1", "x@a.pl"), desired("2", "x@a.pl"), desired("3")]
    plan = make_plan(items, {"9": bound(desired("9"))}, PlanOptions(only_keys=frozenset({"1"})))
    assert list(plan.create) == []
    assert plan.remove == []
    assert [c.key for c in plan.conflict] == ["1"]


def test_full_mode_repairs_portal_drift() -> None:
    """With the portal's listing, hand edits are reverted and lost accounts recreated."""
    one, two = desired("1", price_level="Hurtowa"), desired("2")
    edited = Account("a1", one.login, "1", "active", None, {**one.fields(), "price_level": "X"})
    plan = make_plan([one, two], {"1": bound(one), "2": bound(two)}, OPTIONS, {"a1": edited})
    assert plan.update[0].changes == {"price_level": {"old": "X", "new": "Hurtowa"}}
    assert [(c.desired.key, c.replaces) for c in plan.create] == [("2", "a2")]


def test_full_mode_compares_only_the_fields_the_portal_stores() -> None:
    """A portal without contacts or discounts is not "repaired" every night for them."""
    one = desired("1", price_level="Hurtowa")
    listed = {**one.fields(), "contacts": [], "discount": "0.00"}
    edited = Account("a1", one.login, "1", "active", None, listed)
    stores = frozenset({"login", "name", "email", "price_level"})
    options = replace(OPTIONS, portal_fields=stores)
    plan = make_plan([one], {"1": bound(one)}, options, {"a1": edited})
    assert plan.update == []
    assert (plan.is_empty, plan.unchanged) == (True, 1)
    hand_edit = replace(edited, fields={**listed, "price_level": "X"})
    plan = make_plan([one], {"1": bound(one)}, options, {"a1": hand_edit})
    assert plan.update[0].changes == {"price_level": {"old": "X", "new": "Hurtowa"}}


def test_existing_portal_login_is_adopted_or_a_conflict() -> None:
    """A create whose login the portal has: adopt when allowed, rebind our own, else conflict."""
    item = desired("1")
    unmanaged = Account("77", item.login, None, "active", None, item.fields())
    plan = make_plan([item], {}, OPTIONS)
    adopted = resolve_creates(plan, {item.login: unmanaged}, adopt_existing=True)
    assert [(a.account_id, a.own) for a in adopted.adopt] == [("77", False)]
    plan = make_plan([item], {}, OPTIONS)
    refused = resolve_creates(plan, {item.login: unmanaged}, adopt_existing=False)
    assert list(refused.create) == []
    assert refused.conflict[0].kind is ConflictKind.LOGIN_TAKEN
    assert "adopt_existing" in refused.conflict[0].reason
    ours = replace(unmanaged, contractor_key="1")
    plan = make_plan([item], {}, OPTIONS)
    rebound = resolve_creates(plan, {item.login: ours}, adopt_existing=False)
    assert [(a.account_id, a.own) for a in rebound.adopt] == [("77", True)]


def _by_symbol(key: str, symbol: str, email: str) -> DesiredAccount:
    result = map_contractor(
        SourceContractor(key=key, symbol=symbol, name=f"Firma {key}", email_raw=email),
        login_by="symbol",
    )
    assert isinstance(result, DesiredAccount)
    return result


def test_symbol_logins_share_an_email_but_not_a_symbol_in_any_case() -> None:
    """portal.login: symbol: one e-mail for two contractors is fine; a symbol already bound
    (compared case-insensitively) is a conflict that says to fix the symbol."""
    first = _by_symbol("1", "KOW-1", "wspolny@example.pl")
    plan = make_plan([first, _by_symbol("2", "KOW-2", "wspolny@example.pl")], {}, OPTIONS)
    assert sorted(c.desired.login for c in plan.create) == ["KOW-1", "KOW-2"]
    assert plan.conflict == []
    clash = _by_symbol("3", " kow-1", "inny@example.pl")
    plan = make_plan([first, clash], {"1": bound(first)}, OPTIONS)
    [conflict] = plan.conflict
    assert (conflict.key, conflict.kind) == ("3", ConflictKind.LOGIN_TAKEN)
    assert "has symbol kow-1, which is already the login of contractor 1" in conflict.reason
    assert "its own symbol in the ERP" in conflict.reason


def test_full_mode_removes_accounts_syncd_created_but_never_recorded() -> None:
    """An unbound portal account carrying a contractor's key (syncd died before recording
    it) is removed when nothing will claim it, and bound again when its login is wanted."""
    one, two, three = desired("1"), desired("2"), desired("3", "new@example.pl")
    left_scope = Account("a9", "k9@example.pl", "9", "pending", None, {"symbol": "K9"})
    renamed = Account("a7", "k3@example.pl", "3", "pending", None, three.fields())
    again = Account("a5", two.login, "2", "pending", None, two.fields())
    by_hand = Account("a6", "hand@example.pl", None, "active", None, {})
    listing = {a.id: a for a in (left_scope, renamed, again, by_hand)}
    bindings = {"1": bound(one), "3": bound(three, "a3")}
    listing["a1"] = Account("a1", one.login, "1", "active", None, one.fields())
    listing["a3"] = Account("a3", three.login, "3", "active", None, three.fields())
    plan = make_plan([one, two, three], bindings, OPTIONS, listing)
    plan = resolve_creates(plan, {two.login: again}, adopt_existing=False)
    assert [(r.key, r.account_id, r.lost) for r in plan.remove] == [
        ("3", "a7", True),
        ("9", "a9", True),
    ]
    assert [(a.account_id, a.own) for a in plan.adopt] == [("a5", True)]
    assert list(plan.create) == []
    assert plan.remove[0].as_json()["lost"] is True

    # The safety guard counts them with the other removals.
    held = make_plan([one, two, three], bindings, replace(OPTIONS, max_removals=1), listing)
    assert ([r.key for r in held.held], held.remove) == (["3", "9"], [])

    # A light cycle has no listing, so it never guesses.
    assert make_plan([one, three], bindings, OPTIONS).remove == []
