"""The state store's rows as the read side gets them back (``status``, ``explain``,
``history``, ``mail list``), as frozen dataclasses, and their conversion from a row mapping.

They live outside ``syncd.store`` because that package imports SQLAlchemy (a third of a
second): ``syncd status`` reads a current SQLite store through the stdlib ``sqlite3``
(``syncd._status_sqlite``) and builds the same rows with the same functions. The store
re-exports everything here, so ``from syncd.store import RunRow`` keeps working.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

# A row by column name: SQLAlchemy's ``RowMapping`` (keys may be columns too) or a dict.
Row = Mapping[Any, Any]


def load_json(text: str | None) -> Any:
    """Parse a JSON column; an empty column reads as an empty object."""
    return json.loads(text) if text else {}


@dataclass(frozen=True, slots=True)
class RunRow:
    """One cycle as recorded in ``syncd_run``."""

    run_id: str
    kind: str
    trigger: str
    started_at: datetime
    finished_at: datetime | None
    status: str
    summary: dict[str, Any]
    error: str | None


@dataclass(frozen=True, slots=True)
class AuditRow:
    """One audit trail entry as stored, with when and in which run it happened."""

    id: int
    at: datetime
    run_id: str | None
    actor: str
    key: str
    login: str | None
    action: str
    result: str
    detail: dict[str, Any]


@dataclass(frozen=True, slots=True)
class ConflictRow:
    """A current conflict, with when it was first seen (it stays until fixed in the ERP)."""

    key: str
    symbol: str
    name: str
    login: str | None
    kind: str
    reason: str
    first_seen: datetime


@dataclass(frozen=True, slots=True)
class MailRow:
    """A mail in the outbox, with its delivery state."""

    id: int
    created_at: datetime
    not_before: datetime
    key: str
    account_id: str
    recipient: str
    template: str
    language: str
    status: str
    attempts: int
    last_error: str | None
    sent_at: datetime | None
    context: dict[str, Any]


@dataclass(frozen=True, slots=True)
class RecordFailure:
    """A contractor whose portal write failed ``failures`` times in a row (``syncd.backoff``).

    ``retry_after`` is when a cycle may try it again (None once ``quarantined``: then only a
    changed ERP row, whose digest differs from ``fingerprint``, or support's explicit
    ``sync --contractor K`` tries it). ``fingerprint`` is None for a failed removal.
    """

    key: str
    login: str | None
    action: str
    failures: int
    first_failed_at: datetime
    last_failed_at: datetime
    retry_after: datetime | None
    quarantined: bool
    fingerprint: str | None
    last_error: str

    def as_json(self) -> dict[str, Any]:
        """How ``status --json`` and ``explain --json`` show it."""
        return {
            "key": self.key,
            "login": self.login,
            "action": self.action,
            "failures": self.failures,
            "first_failed_at": self.first_failed_at.isoformat(),
            "last_failed_at": self.last_failed_at.isoformat(),
            "retry_after": self.retry_after.isoformat() if self.retry_after else None,
            "quarantined": self.quarantined,
            "error": self.last_error,
        }


def failure_from_row(row: Row) -> RecordFailure:
    return RecordFailure(
        key=row["contractor_key"],
        login=row["login"],
        action=row["action"],
        failures=int(row["failures"]),
        first_failed_at=row["first_failed_at"],
        last_failed_at=row["last_failed_at"],
        retry_after=row["retry_after"],
        quarantined=bool(row["quarantined"]),
        fingerprint=row["fingerprint"],
        last_error=row["last_error"],
    )


def run_from_row(row: Row) -> RunRow:
    return RunRow(
        run_id=row["run_id"],
        kind=row["kind"],
        trigger=row["trigger"],
        started_at=row["started_at"],
        finished_at=row["finished_at"],
        status=row["status"],
        summary=load_json(row["summary_json"]),
        error=row["error"],
    )


def audit_from_row(row: Row) -> AuditRow:
    return AuditRow(
        id=int(row["id"]),
        at=row["at"],
        run_id=row["run_id"],
        actor=row["actor"],
        key=row["contractor_key"],
        login=row["login"],
        action=row["action"],
        result=row["result"],
        detail=load_json(row["detail_json"]),
    )


def conflict_from_row(row: Row) -> ConflictRow:
    return ConflictRow(
        key=row["contractor_key"],
        symbol=row["symbol"],
        name=row["name"],
        login=row["login"],
        kind=row["kind"],
        reason=row["reason"],
        first_seen=row["first_seen"],
    )


def mail_from_row(row: Row) -> MailRow:
    return MailRow(
        id=int(row["id"]),
        created_at=row["created_at"],
        not_before=row["not_before"],
        key=row["contractor_key"],
        account_id=row["account_id"],
        recipient=row["recipient"],
        template=row["template"],
        language=row["language"],
        status=row["status"],
        attempts=int(row["attempts"]),
        last_error=row["last_error"],
        sent_at=row["sent_at"],
        context=load_json(row["context_json"]),
    )
