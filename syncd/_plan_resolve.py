"""Creates whose login the portal already has: bound again, adopted, or a conflict (spec 2).

The plan's last step before apply, once the portal has been asked about the new logins
(``syncd._cycle_plan``, ``syncd.explain``). Part of the pure plan (``syncd.plan``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from syncd._plan_items import Adopt, Plan, changes_between
from syncd.model import Conflict, ConflictKind

if TYPE_CHECKING:
    from syncd.plan import ExistingAccount


def resolve_creates(
    plan: Plan,
    existing: Mapping[str, ExistingAccount],
    *,
    adopt_existing: bool,
    portal_fields: frozenset[str] | None = None,
) -> Plan:
    """Decide what to do with creates whose login the portal already has (spec section 2).

    ``existing`` maps login to the portal's account. An account that syncd itself created
    for the same contractor (its bookkeeping was lost, e.g. a crash between the portal write
    and the state write) is simply bound again. An unmanaged account is adopted when
    ``portal.adopt_existing`` is true and is a conflict otherwise.
    """
    # Logins freed earlier in this same cycle: removals and renames are applied before creates.
    freed = {r.account_id for r in plan.remove if r.mode == "delete"}
    freed.update(u.account_id for u in plan.update if "login" in u.changes)
    taken: list[str] = []  # creates that become an adoption or a conflict
    for create in plan.create.with_logins(existing.keys()):
        desired = create.desired
        account = existing[desired.login]
        if account.id == create.replaces or account.id in freed:
            continue
        taken.append(desired.key)
        own = account.contractor_key == desired.key
        what = "e-mail" if desired.login == desired.email else "symbol"  # portal.login
        if own or (adopt_existing and not account.contractor_key):
            changes = changes_between(account.fields, desired.fields())
            if portal_fields is not None:
                changes = {k: c for k, c in changes.items() if k in portal_fields}
            plan.adopt.append(Adopt(desired, account.id, changes, own=own, status=account.status))
            continue
        if account.contractor_key:
            whose = f"the account of contractor {account.contractor_key}"
            fix = f"give each contractor its own {what} in the ERP"
        else:
            whose = "an account that syncd did not create"
            fix = (
                f"set portal.adopt_existing: true to take it over, or change the {what} in "
                "the ERP or the login in the portal"
            )
        reason = (
            f"contractor {desired.key} ({desired.symbol}, {desired.name}) has {what} "
            f"{desired.login}, but the portal already has {whose} with that login: {fix}"
        )
        plan.conflict.append(
            Conflict(
                desired.key,
                desired.symbol,
                desired.name,
                desired.login,
                ConflictKind.LOGIN_TAKEN,
                reason,
            )
        )
    plan.create.drop(taken)
    return plan
