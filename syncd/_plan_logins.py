"""Login uniqueness, the plan's last pass: a login belongs to one contractor (spec 2).

A create or update that would give two contractors one login becomes a conflict that says
what to fix in the ERP. Part of the pure plan (``syncd.plan``): no I/O here.
"""

from __future__ import annotations

from collections import ChainMap
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING, Protocol

from syncd._plan_items import Plan
from syncd.mapping import login_key
from syncd.model import Conflict, ConflictKind, DesiredAccount

if TYPE_CHECKING:
    from syncd._spool import Spool
    from syncd.plan import BoundAccount

# Spooled logins asked of the state store's owners at a time (``owners``).
OWNERS_ASKED = 5000


class Claimant(Protocol):
    """What the uniqueness rules read of a contractor that wants a login."""

    @property
    def key(self) -> str: ...
    @property
    def login(self) -> str: ...
    @property
    def symbol(self) -> str: ...


@dataclass(slots=True)
class Claims:
    """Who wants which login, for the uniqueness rules.

    A claim is the claimant's own account (the plan holds it anyway): no copy of its key,
    symbol or name per contractor. A sync's new accounts claim theirs in the spool
    (``syncd._spool``) and join here only when their login is contested
    (``enforce_unique_logins``). ``fold`` is how the portal tells logins apart
    (``PlanOptions.fold_logins``); None: as they are. Logins are kept under ``same(login)``."""

    fold: Callable[[str], str] | None = None
    first: dict[str, Claimant] = field(default_factory=dict)
    more: dict[str, list[Claimant]] = field(default_factory=dict)

    def same(self, login: str) -> str:
        """The login as the portal compares it: folded (``fold``), else ignoring case."""
        return self.fold(login) if self.fold is not None else login_key(login)

    def add(self, claimant: Claimant) -> None:
        login = claimant.login
        same = self.same(login)
        # A login compares as it is, nearly always: keep the plan's string, not an equal copy.
        login = login if same == login else same
        if login not in self.first:
            self.first[login] = claimant
        else:
            self.more.setdefault(login, [self.first[login]]).append(claimant)


def enforce_unique_logins(
    plan: Plan,
    bindings: Mapping[str, BoundAccount],
    claims: Claims,
    owners: Callable[[Collection[str]], Mapping[str, BoundAccount]] | None = None,
) -> None:
    """Turn creates and updates that would break login uniqueness into conflicts.

    A login already bound to a contractor stays with it while that contractor still claims
    it; anyone else asking for it is a conflict. A login claimed by several new contractors
    goes to none of them: guessing would mail one customer's password to another.
    ``owners`` (see ``make_plan``) finds the bindings ``bindings`` lacks that hold a login
    someone wants: those of unchanged contractors, which keep their logins. It is asked
    for logins as ``claims.same`` gives them and may return more (they are filtered here).
    """
    # A deactivated account keeps its login in the portal; only a deleted one frees it. A
    # lost account's removal (``Remove.lost``) leaves its contractor's binding in place.
    deleted = {r.key for r in plan.remove if r.mode == "delete" and not r.lost}
    owner_of = {claims.same(b.login): key for key, b in bindings.items() if key not in deleted}
    wanted: dict[str, DesiredAccount] = {c.desired.key: c.desired for c in plan.create.held}
    wanted.update((u.desired.key, u.desired) for u in plan.update)
    spool = plan.create.spool
    if owners is not None:
        asked = {claims.same(d.login) for d in wanted.values()} - owner_of.keys()
        more = _owned(asked, owners, bindings, deleted, claims)
        if spool is not None:
            for batch in spool.login_batches(OWNERS_ASKED):
                asked = {same for _, same in batch} - owner_of.keys()
                more.update(_owned(asked, owners, bindings, deleted, claims))
        owner_of.update((claims.same(b.login), key) for key, b in more.items())
        bindings = ChainMap(dict(more), dict(bindings)) if more else bindings
    if spool is not None:
        _contested(spool, claims, owner_of, wanted)
    rejected: dict[str, Conflict] = {}
    conflict_of = partial(
        _login_conflict,
        wanted=wanted,
        rejected=rejected,
        owner_of=owner_of,
        bindings=bindings,
        claims=claims,
    )
    # A rejection can take back a rename that freed a login for someone else, so repeat
    # until nothing changes (in practice one or two passes).
    while True:
        found = {
            key: conflict
            for key, desired in wanted.items()
            if key not in rejected and (conflict := conflict_of(desired))
        }
        if not found:
            break
        rejected.update(found)
    if not rejected:
        return
    plan.create.drop(rejected.keys())
    plan.update = [u for u in plan.update if u.desired.key not in rejected]
    plan.block = [b for b in plan.block if b.desired.key not in rejected]
    plan.unblock = [u for u in plan.unblock if u.desired.key not in rejected]
    plan.refresh = [u for u in plan.refresh if u.desired.key not in rejected]
    plan.conflict.extend(rejected.values())


def _owned(
    asked: set[str],
    owners: Callable[[Collection[str]], Mapping[str, BoundAccount]],
    bindings: Mapping[str, BoundAccount],
    deleted: set[str],
    claims: Claims,
) -> dict[str, BoundAccount]:
    """The bindings ``owners`` finds holding one of ``asked`` that ``bindings`` lacks."""
    if not asked:
        return {}
    return {
        key: b
        for key, b in owners(asked).items()
        if key not in bindings and key not in deleted and claims.same(b.login) in asked
    }


def _contested(
    spool: Spool, claims: Claims, owner_of: Mapping[str, str], wanted: dict[str, DesiredAccount]
) -> None:
    """Bring in the spooled creates whose login someone else wants too: claimed by several
    of them, by a contractor held in memory, or bound to a contractor. Only these can be a
    conflict; every other spooled create keeps its login and stays in the spool."""
    contested = set(spool.duplicate_logins())
    contested.update(owner_of, claims.first)
    for account in spool.claimants(contested):
        claims.add(account)
        wanted[account.key] = account


def _login_conflict(
    desired: DesiredAccount,
    *,
    wanted: Mapping[str, DesiredAccount],
    rejected: Mapping[str, Conflict],
    owner_of: Mapping[str, str],
    bindings: Mapping[str, BoundAccount],
    claims: Claims,
) -> Conflict | None:
    """The conflict that stops ``desired`` from having its login, if any."""
    key, login = desired.key, desired.login
    same = claims.same(login)
    owner = owner_of.get(same)
    claimants = claims.more.get(same)
    # With portal.login: symbol the login is the symbol, and it is the symbol to fix.
    what = "e-mail" if login == desired.email else "symbol"
    if owner is not None and owner != key:
        owner_claims = owner in {c.key for c in claimants or []}
        moves_away = (
            owner in wanted and owner not in rejected and claims.same(wanted[owner].login) != same
        )
        if owner_claims or not moves_away:
            symbol = bindings[owner].fields.get("symbol") or owner
            reason = (
                f"contractor {key} ({desired.symbol}, {desired.name}) has {what} {login}, "
                f"which is already the login of contractor {owner} ({symbol}): give each "
                f"contractor its own {what} in the ERP{_folded(claims)}"
            )
            return Conflict(
                key, desired.symbol, desired.name, login, ConflictKind.LOGIN_TAKEN, reason
            )
    if claimants and owner != key:
        others = ", ".join(f"{c.key} ({c.symbol})" for c in claimants if c.key != key)
        reason = (
            f"contractor {key} ({desired.symbol}, {desired.name}) shares {what} {login} "
            f"with contractor {others}: a login must be unique, so none of them gets an "
            f"account until each has its own {what} in the ERP{_folded(claims)}"
        )
        kind = ConflictKind.DUPLICATE_EMAIL if what == "e-mail" else ConflictKind.DUPLICATE_SYMBOL
        return Conflict(key, desired.symbol, desired.name, login, kind, reason)
    return None


def _folded(claims: Claims) -> str:
    if claims.fold is None:
        return ""
    return " (the portal tells logins apart ignoring case and accents: kąsia = kasia)"
