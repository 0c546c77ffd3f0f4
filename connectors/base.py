"""The two small interfaces every connector implements: a Source (the ERP) and a Portal.

A connector translates its driver's errors into ``syncd.errors`` at this boundary:
``SourceUnavailable`` / ``PortalUnavailable`` for anything a retry may fix, ``RecordError``
(or ``LoginTaken``) for a problem with one record. Nothing else may escape.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from syncd.model import PortalLimits, RawRecord, SourceContractor


@dataclass(frozen=True, slots=True)
class SourceCheck:
    """What ``doctor`` reports about a source, whatever its kind.

    ``problems`` make the check fail; each one names the table, column or setting and says
    what to do. ``facts`` are shown as they are (versions, optional columns, the feature's
    spellings). ``in_scope`` is the number of contractors a cycle would read.
    """

    in_scope: int
    problems: tuple[str, ...] = ()
    facts: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class ContractorFacts:
    """The ERP's facts about one contractor, in or out of scope (what ``explain`` shows).

    ``scope`` is a sentence saying why it is or is not in scope and, when not, what to change
    in the ERP. ``details`` are the kind's own facts as (label, value) pairs in display order,
    e.g. ``("features", "b2b, vip")`` or ``("kh_Rodzaj", "2 (customer)")``.
    """

    key: str
    symbol: str
    name: str | None
    email: str | None
    erp_blocked: bool
    in_scope: bool
    scope: str
    details: tuple[tuple[str, str], ...] = ()

    def as_json(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "symbol": self.symbol,
            "name": self.name,
            "email": self.email,
            "erp_blocked": self.erp_blocked,
            "in_scope": self.in_scope,
            "scope": self.scope,
            "details": dict(self.details),
        }


@dataclass(frozen=True, slots=True)
class DirectoryEntry:
    """One contractor as ``accounts find`` searches the whole ERP, in scope or not: only
    what a person searches by and the scope decision, so that streaming every contractor
    stays cheap (no contacts, no salesperson, no discount)."""

    key: str
    symbol: str
    name: str | None
    email: str | None
    tax_id: str | None
    in_scope: bool


@dataclass(frozen=True, slots=True)
class Candidate:
    """One table (and its likely columns) that ``doctor --discover`` offers for a setting."""

    setting: str  # the YAML key it could fill, e.g. "source.tables.feature_link"
    table: str
    columns: tuple[str, ...]
    why: str  # how it was found: "name matches %Cech%", "foreign key to Podmioty.Id"


class Source(Protocol):
    """An ERP, read-only. Built by the registry with ``from_config(section)``."""

    def check(self) -> SourceCheck:
        """Connect, check every table, column and setting the kind needs, count the scope.

        Raises ``SourceUnavailable`` when the ERP cannot be reached or read at all; a
        missing table, column or feature is a ``problem`` in the result, not an exception.
        """

    def contractors(self, keys: Collection[str] | None = None) -> Iterator[SourceContractor]:
        """Stream every in-scope contractor (or only ``keys``), ordered by key, in a constant
        number of queries.

        Raises ``SourceUnavailable``, possibly after some rows were yielded: a caller must
        then discard what it read, never treat the missing rows as removed.
        """

    def describe(self, ident: str) -> ContractorFacts | None:
        """The ERP's facts about one contractor, whatever its scope (for ``explain``).

        ``ident`` is the contractor id or its symbol; None when the ERP has no such
        contractor. Raises ``SourceUnavailable``.
        """

    def directory(self) -> Iterator[DirectoryEntry]:
        """Stream every contractor the ERP has, in scope or not, in one statement, ordered by
        key (what ``accounts find`` searches: one cheap read of the whole ERP).

        Raises ``SourceUnavailable``, possibly after some entries were yielded.
        """

    def close(self) -> None:
        """Release connections. Never raises."""


@runtime_checkable
class Digesting(Protocol):
    """A source that can digest its raw rows before building anything from them, so that a
    cycle builds and maps only the contractors whose rows changed (``syncd._cycle_plan``)."""

    def records(self, keys: Collection[str] | None = None) -> Iterator[RawRecord]:
        """``contractors``' stream as ``RawRecord`` (key, digest, ``build()``), same order,
        same queries. Raises ``SourceUnavailable`` as ``contractors`` does."""


@runtime_checkable
class Discovering(Protocol):
    """A source whose table names may have to be found in the customer's database."""

    def discover(self) -> list[Candidate]:
        """Catalogue queries only: candidate tables and columns for each configurable name.

        Raises ``SourceUnavailable``.
        """


@dataclass(frozen=True, slots=True)
class PortalAccount:
    """An account as the portal holds it. ``fields`` uses the keys of ``SYNCED_FIELDS``."""

    id: str
    login: str
    contractor_key: str | None
    status: str
    block_reason: str | None
    fields: dict[str, Any]


@dataclass(frozen=True, slots=True)
class CreateAccount:
    """Create an account. ``fields`` holds every synced field (``contacts`` as a list)."""

    key: str
    fields: dict[str, Any]
    status: str
    block_reason: str | None = None


@dataclass(frozen=True, slots=True)
class UpdateAccount:
    """Change only ``fields`` of account ``account_id`` (any of the synced fields, ``status``,
    ``block_reason`` or ``password_hash``). ``contacts``, when present, replaces them all."""

    key: str
    account_id: str
    fields: dict[str, Any]


@dataclass(frozen=True, slots=True)
class DeleteAccount:
    """Delete account ``account_id`` with its contacts. Deleting a missing account is a no-op."""

    key: str
    account_id: str


@dataclass(frozen=True, slots=True)
class SetPassword:
    """Give account ``account_id`` this password, in whatever form its portal needs.

    The core hands a freshly generated (or typed) password over in memory only; the
    connector hashes it (SQL: bcrypt, ``$2y$`` or argon2id), sends it (SCIM's ``password``
    attribute) or calls the portal's own operation (REST). It never appears in a repr, an
    error, a log line or anything stored.
    """

    key: str
    account_id: str
    password: str = field(repr=False)


PortalOp = CreateAccount | UpdateAccount | DeleteAccount | SetPassword


@dataclass(frozen=True, slots=True)
class OpOutcome:
    """The result of one operation: the account id on success, or the record-level error."""

    op: PortalOp
    account_id: str | None = None
    error: Exception | None = field(default=None)

    @property
    def ok(self) -> bool:
        return self.error is None


class Portal(Protocol):
    """The B2B portal's account store. Built by the registry with ``from_config(section,
    clock=...)``.

    ``stored_fields`` are the synced fields (of ``syncd.model.SYNCED_FIELDS``) this portal
    keeps: the full reconcile compares only those, so a portal without contacts or
    discounts is never "repaired" every night. ``CreateAccount``/``UpdateAccount`` may
    carry the others; the connector ignores what it cannot store.
    """

    @property
    def stored_fields(self) -> frozenset[str]:
        """The synced fields this portal keeps (see the class docstring)."""

    def ensure_ready(self) -> None:
        """Check the portal can be reached (and, for SQL, create missing tables).

        Raises ``PortalUnavailable``.
        """

    def find_by_logins(self, logins: Collection[str]) -> dict[str, PortalAccount]:
        """The accounts whose login is in ``logins``, by login. Raises ``PortalUnavailable``."""

    def accounts(self) -> Iterator[PortalAccount]:
        """Stream every account (the full reconcile's listing). Raises ``PortalUnavailable``."""

    def apply(self, ops: Sequence[PortalOp]) -> list[OpOutcome]:
        """Apply ``ops`` (in batches that fall back to one-by-one on error) and return one
        outcome per op, in order. A bad record yields an outcome with a ``RecordError``
        (``LoginTaken`` for a duplicate login) and never blocks the others.

        When the portal itself fails part-way (unreachable, server error), the ops already
        applied keep their outcomes and every op not applied gets an outcome whose error is
        a ``PortalUnavailable``; the caller records the applied ones and stops the cycle.
        Raises ``PortalUnavailable`` only when nothing was applied.
        """

    def close(self) -> None:
        """Release connections. Never raises."""


@runtime_checkable
class PortalNotes(Protocol):
    """A portal that can say what it will not sync and why (``syncd doctor`` prints it):
    a SCIM server that does not know syncd's extension schema, for instance."""

    def notes(self) -> list[str]:
        """After ``ensure_ready``: one sentence per limitation, with what to do about it."""


@runtime_checkable
class LimitedPortal(Protocol):
    """A portal that can say how long each value may be (a SQL table's column lengths), so
    that a contractor whose value would not fit is a conflict to fix in the ERP, found
    while planning, rather than a write the portal refuses."""

    def limits(self) -> PortalLimits:
        """After ``ensure_ready``: the limits of the fields it stores. Raises
        ``PortalUnavailable``."""
