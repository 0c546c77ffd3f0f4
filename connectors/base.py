"""The two small interfaces every connector implements: a Source (the ERP) and a Portal.

A connector translates its driver's errors into ``syncd.errors`` at this boundary:
``SourceUnavailable`` / ``PortalUnavailable`` for anything a retry may fix, ``RecordError``
(or ``LoginTaken``) for a problem with one record. Nothing else may escape.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from syncd.model import SourceContractor


@dataclass(frozen=True, slots=True)
class SourceInfo:
    """What ``doctor`` reports about a source."""

    feature_exists: bool
    in_scope: int
    notes: tuple[str, ...] = ()


class Source(Protocol):
    """An ERP, read-only."""

    def check(self) -> SourceInfo:
        """Connect, check that the feature exists and count the contractors in scope.

        Raises ``SourceUnavailable`` when the ERP cannot be reached or read.
        """

    def contractors(self, keys: Collection[str] | None = None) -> Iterator[SourceContractor]:
        """Stream every in-scope contractor (or only ``keys``), in a constant number of queries.

        Raises ``SourceUnavailable``, possibly after some rows were yielded: a caller must
        then discard what it read, never treat the missing rows as removed.
        """

    def describe(self, ident: str) -> dict[str, Any] | None:
        """The ERP's facts about one contractor, whatever its scope (for ``explain``).

        ``ident`` is the contractor id or its symbol. Returns at least ``key``, ``symbol``,
        ``in_scope`` (bool) and ``scope`` (a sentence saying why it is or is not in scope),
        or None when the ERP has no such contractor. Raises ``SourceUnavailable``.
        """

    def close(self) -> None:
        """Release connections. Never raises."""


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


PortalOp = CreateAccount | UpdateAccount | DeleteAccount


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
    """The B2B portal's account store."""

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
