"""The items a plan is made of, and their JSON form (spec section 4, ``plan --json``)."""

from __future__ import annotations

from collections.abc import Collection, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from syncd._render import Items
from syncd.model import Conflict, DesiredAccount

if TYPE_CHECKING:
    from syncd._spool import Spool

Changes = dict[str, dict[str, Any]]


def changes_between(old: dict[str, Any], new: dict[str, Any]) -> Changes:
    """``{field: {"old": .., "new": ..}}`` for every synced field whose value differs."""
    return {
        name: {"old": old.get(name), "new": value}
        for name, value in new.items()
        if old.get(name) != value
    }


@dataclass(frozen=True, slots=True)
class Create:
    """A new account. ``replaces`` is the id of a bound account the portal lost (full mode)."""

    desired: DesiredAccount
    replaces: str | None = None

    def as_json(self) -> dict[str, Any]:
        item = _head(self.desired)
        item["fields"] = self.desired.fields()
        if self.replaces:
            item["replaces"] = self.replaces
        return item


@dataclass(slots=True)
class Creates:
    """The plan's creates: ``Create`` items held in memory, and a sync's spooled accounts.

    A sync spools every new account as it is mapped (``syncd._spool``) and the plan holds
    nothing per create; iterating reads them back whole, one at a time, in the ERP's order.
    A dry run and a full reconcile keep theirs in memory (``plan --json`` lists them). A
    cycle has one kind or the other, so the order is the ERP's either way. A spooled
    account's contractor has no binding (``compare_records`` spools only those), so no
    other item of the plan shares its key.
    """

    held: list[Create] = field(default_factory=list)
    spool: Spool | None = None

    def append(self, create: Create) -> None:
        self.held.append(create)

    def __len__(self) -> int:
        return len(self.held) + (self.spool.count if self.spool is not None else 0)

    def __bool__(self) -> bool:
        return len(self) > 0

    def __iter__(self) -> Iterator[Create]:
        yield from self.held
        if self.spool is not None:
            for desired in self.spool.accounts():
                yield Create(desired)

    def drop(self, keys: Collection[str]) -> None:
        """Take the creates of ``keys`` out of the plan (they became conflicts or adopts)."""
        if keys:
            self.held = [c for c in self.held if c.desired.key not in keys]
            if self.spool is not None:
                self.spool.drop(keys)

    def with_logins(self, logins: Collection[str]) -> Iterator[Create]:
        """The creates whose login is one of ``logins``: what ``resolve_creates`` decides."""
        for create in self.held:
            if create.desired.login in logins:
                yield create
        if self.spool is not None:
            for desired in self.spool.with_logins(logins):
                yield Create(desired)

    def login_batches(self, size: int) -> Iterator[list[str]]:
        """Every create's login, ``size`` at a time (the portal is asked about them)."""
        for start in range(0, len(self.held), size):
            yield [c.desired.login for c in self.held[start : start + size]]
        if self.spool is not None:
            for batch in self.spool.login_batches(size):
                yield [login for login, _ in batch]


@dataclass(frozen=True, slots=True)
class Adopt:
    """Bind an account the portal already has (own lost account, or an unmanaged one)."""

    desired: DesiredAccount
    account_id: str
    changes: Changes
    own: bool
    status: str

    def as_json(self) -> dict[str, Any]:
        return {**_head(self.desired), "account_id": self.account_id, "changes": self.changes}


@dataclass(frozen=True, slots=True)
class Update:
    """Change only ``changes`` of an account; ``reactivate`` brings back an inactive one."""

    desired: DesiredAccount
    account_id: str
    changes: Changes
    reactivate: bool
    status: str

    def as_json(self) -> dict[str, Any]:
        item = {**_head(self.desired), "account_id": self.account_id, "changes": self.changes}
        if self.reactivate:
            item["reactivate"] = True
        return item


@dataclass(frozen=True, slots=True)
class Block:
    """Block an account because the ERP blocked the contractor.

    ``portal_change`` is False when support already blocked it: the portal keeps support's
    reason and only syncd's bookkeeping notes the ERP block.
    """

    desired: DesiredAccount
    account_id: str
    reason: str
    portal_change: bool = True

    def as_json(self) -> dict[str, Any]:
        return {**_head(self.desired), "account_id": self.account_id, "reason": self.reason}


@dataclass(frozen=True, slots=True)
class Unblock:
    """Lift an ERP block; ``portal_change`` is False when a support block stays in force."""

    desired: DesiredAccount
    account_id: str
    status: str
    portal_change: bool = True

    def as_json(self) -> dict[str, Any]:
        item = {**_head(self.desired), "account_id": self.account_id}
        if not self.portal_change:
            item["note"] = "support block stays in force"
        return item


@dataclass(frozen=True, slots=True)
class Remove:
    """The contractor left scope: delete or deactivate its account (``portal.on_removed``).

    ``lost``: an account that syncd created but never recorded (the process died between
    the portal write and the state store's commit) and that no binding will claim; only a
    full reconcile sees those, and removing one leaves the contractor's binding alone.
    """

    key: str
    account_id: str
    login: str
    symbol: str
    mode: str
    lost: bool = False

    def as_json(self) -> dict[str, Any]:
        document: dict[str, Any] = {
            "key": self.key,
            "symbol": self.symbol,
            "login": self.login,
            "account_id": self.account_id,
            "mode": self.mode,
        }
        if self.lost:
            document["lost"] = True
        return document


@dataclass(frozen=True, slots=True)
class Deferral:
    """Why a record is left alone this cycle: its last portal writes failed (syncd.backoff).

    ``fingerprint`` is the digest of the ERP row that failed: a different row is tried at
    once. None for a failed removal.
    """

    fingerprint: str | None
    failures: int
    quarantined: bool
    retry_after: datetime | None
    error: str


@dataclass(frozen=True, slots=True)
class Deferred:
    """A record with work to do that this cycle does not send: it waits or is quarantined."""

    key: str
    symbol: str
    login: str | None
    deferral: Deferral

    def as_json(self) -> dict[str, Any]:
        d = self.deferral
        return {
            "key": self.key,
            "symbol": self.symbol,
            "login": self.login,
            "failures": d.failures,
            "quarantined": d.quarantined,
            "retry_after": d.retry_after.isoformat() if d.retry_after else None,
            "error": d.error,
        }


def _head(desired: DesiredAccount) -> dict[str, Any]:
    item: dict[str, Any] = {
        "key": desired.key,
        "symbol": desired.symbol,
        "login": desired.login,
        "name": desired.name,
    }
    if desired.warnings:
        item["warnings"] = list(desired.warnings)
    return item


def conflict_json(conflict: Conflict) -> dict[str, Any]:
    return {
        "key": conflict.key,
        "symbol": conflict.symbol,
        "login": conflict.login,
        "name": conflict.name,
        "kind": conflict.kind.value,
        "reason": conflict.reason,
    }


@dataclass(slots=True)
class Plan:
    """What one cycle does. ``refresh`` only rewrites syncd's own bookkeeping."""

    create: Creates = field(default_factory=Creates)
    adopt: list[Adopt] = field(default_factory=list)
    update: list[Update] = field(default_factory=list)
    remove: list[Remove] = field(default_factory=list)
    block: list[Block] = field(default_factory=list)
    unblock: list[Unblock] = field(default_factory=list)
    conflict: list[Conflict] = field(default_factory=list)
    held: list[Remove] = field(default_factory=list)
    refresh: list[Update] = field(default_factory=list)
    deferred: list[Deferred] = field(default_factory=list)
    unchanged: int = 0
    held_limit: int | None = None
    # Which check of syncd.safety held the removals (empty_scope, min_scope, max_removals).
    held_check: str | None = None
    held_reason: str | None = None  # that check's message: what happened, how to let it through
    scope: int = 0  # contractors the ERP returned in scope (conflicts included)
    # NIPs held by several in-scope contractors: warnings, never a block (_plan_duplicates).
    duplicate_tax_ids: list[dict[str, Any]] = field(default_factory=list)

    @property
    def is_empty(self) -> bool:
        """True when applying the plan would write nothing anywhere."""
        return not (
            self.create
            or self.adopt
            or self.update
            or self.remove
            or self.block
            or self.unblock
            or self.refresh
        )

    def counts(self) -> dict[str, int]:
        return {
            "create": len(self.create),
            "adopt": len(self.adopt),
            "update": len(self.update),
            "remove": len(self.remove),
            "block": len(self.block),
            "unblock": len(self.unblock),
            "conflict": len(self.conflict),
            "held": len(self.held),
            "deferred": len(self.deferred),
            "unchanged": self.unchanged + len(self.refresh),
        }

    def as_json(self, *, stream: bool = False) -> dict[str, Any]:
        """The ``plan --json`` document; ``sync --json`` adds a ``result`` to each item.

        ``stream``: the item lists are ``Items``, made one item at a time as the document is
        written (``syncd._render``), so a first sync's output never holds every create."""
        lists: dict[str, Any] = {
            "create": self.create,
            "adopt": self.adopt,
            "update": self.update,
            "remove": self.remove,
            "block": self.block,
            "unblock": self.unblock,
        }
        document: dict[str, Any] = {
            kind: Items.of(items) if stream else [item.as_json() for item in items]
            for kind, items in lists.items()
        }
        return document | {
            "conflict": [conflict_json(c) for c in sorted(self.conflict, key=_conflict_order)],
            "held": [r.as_json() for r in self.held],
            "held_by": self.held_check,
            "held_reason": self.held_reason,
            "deferred": [d.as_json() for d in self.deferred],
            "warnings": [item["warning"] for item in self.duplicate_tax_ids],
            "duplicate_tax_ids": self.duplicate_tax_ids,
            # A refresh rewrites only syncd's bookkeeping: the account itself is unchanged.
            "unchanged": self.unchanged + len(self.refresh),
        }


def _conflict_order(conflict: Conflict) -> tuple[int, str]:
    return (int(conflict.key), conflict.key) if conflict.key.isdigit() else (0, conflict.key)
