"""The state store's rows as frozen dataclasses, and their conversion to and from SQL rows.

``Binding``, ``AuditEntry`` and ``MailEntry`` are what the cycle writes; the ``*Row``
classes are what the read side (``status``, ``explain``, ``history``, ``mail list``) gets
back. Conversions live here so that ``syncd.store`` holds only the queries.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa

# Context keys that would put a password in the outbox. Spec section 2: a plaintext
# password never reaches the state store; the mailer generates it at send time.
_FORBIDDEN_CONTEXT_WORDS = ("password", "passwd", "haslo", "hasło")


def dump_json(value: Any) -> str:
    """Canonical JSON text (sorted keys, real UTF-8) so equal documents compare equal."""
    return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def load_json(text: str | None) -> Any:
    """Parse a JSON column; an empty column reads as an empty object."""
    return json.loads(text) if text else {}


@dataclass(frozen=True, slots=True)
class Binding:
    """Which portal account belongs to which ERP contractor, and what syncd last wrote to it.

    ``fingerprint`` and ``fields_json`` describe the last *applied* state, so the plan can
    tell what changed in the ERP since. ``support_block_reason`` is set only when support
    blocked the account by hand; no sync lifts such a block. ``activated`` is true once an
    activation mail went out, so that an unblock returns the account to ``active`` rather
    than ``pending``. ``created_at`` and
    ``updated_at`` are filled when read from the store and ignored when written.
    """

    key: str
    account_id: str
    login: str
    fingerprint: str
    fields_json: str
    status: str
    erp_blocked: bool
    support_block_reason: str | None
    support_blocked_by: str | None = None
    activated: bool = False
    # Digest of the raw ERP row this binding was last applied from: an equal row is not
    # even mapped again (see syncd.cycle). None for bindings written before it existed.
    source_fingerprint: str | None = None
    created_at: datetime | None = field(default=None, compare=False)
    updated_at: datetime | None = field(default=None, compare=False)

    @property
    def fields(self) -> dict[str, Any]:
        """The synced fields as last applied (see ``DesiredAccount.fields``)."""
        parsed: dict[str, Any] = json.loads(self.fields_json)
        return parsed


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One action on one contractor's account, as it goes into the audit trail."""

    key: str
    login: str | None
    action: str
    result: str
    detail: dict[str, Any]
    actor: str = "syncd"
    # ``detail`` as ``dump_json`` encodes it, when the caller has that text already (a
    # create's detail is built around its binding's encoded fields: encoded once).
    detail_json: str | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class MailEntry:
    """A mail to enqueue. ``context`` feeds the template and must never hold a password."""

    key: str
    account_id: str
    recipient: str
    template: str
    not_before: datetime
    context: dict[str, Any]
    language: str = "pl"

    def __post_init__(self) -> None:
        if self.not_before.tzinfo is None:
            message = f"not_before {self.not_before!r} of a {self.template} mail has no time zone"
            raise ValueError(message)
        for name in self.context:
            if any(word in name.lower() for word in _FORBIDDEN_CONTEXT_WORDS):
                message = (
                    f"mail context key {name!r} looks like a password; passwords are "
                    f"generated at send time and never stored in the outbox"
                )
                raise ValueError(message)


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


def failure_from_row(row: sa.RowMapping) -> RecordFailure:
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


def failure_values(item: RecordFailure) -> dict[str, Any]:
    return {
        "contractor_key": item.key,
        "login": item.login,
        "action": item.action,
        "failures": item.failures,
        "first_failed_at": item.first_failed_at,
        "last_failed_at": item.last_failed_at,
        "retry_after": item.retry_after,
        "quarantined": item.quarantined,
        "fingerprint": item.fingerprint,
        "last_error": item.last_error,
    }


def binding_from_row(row: sa.RowMapping) -> Binding:
    return Binding(
        key=row["contractor_key"],
        account_id=row["account_id"],
        login=row["login"],
        fingerprint=row["fingerprint"],
        fields_json=row["fields_json"],
        status=row["status"],
        erp_blocked=bool(row["erp_blocked"]),
        support_block_reason=row["support_block_reason"],
        support_blocked_by=row["support_blocked_by"],
        activated=bool(row["activated"]),
        source_fingerprint=row["source_fingerprint"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )


def binding_params(item: Binding, now: datetime) -> dict[str, Any]:
    """Bound parameters (prefixed ``b_`` so they never clash with column names)."""
    return {
        "b_key": item.key,
        "b_account_id": item.account_id,
        "b_login": item.login,
        "b_parked": " " + item.key,  # a login is trimmed, so no real one starts with a space
        "b_fingerprint": item.fingerprint,
        "b_fields_json": item.fields_json,
        "b_status": item.status,
        "b_erp_blocked": item.erp_blocked,
        "b_support_block_reason": item.support_block_reason,
        "b_support_blocked_by": item.support_blocked_by,
        "b_activated": item.activated,
        "b_source_fingerprint": item.source_fingerprint,
        "b_now": now,
    }


def run_from_row(row: sa.RowMapping) -> RunRow:
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


def audit_from_row(row: sa.RowMapping) -> AuditRow:
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


def conflict_from_row(row: sa.RowMapping) -> ConflictRow:
    return ConflictRow(
        key=row["contractor_key"],
        symbol=row["symbol"],
        name=row["name"],
        login=row["login"],
        kind=row["kind"],
        reason=row["reason"],
        first_seen=row["first_seen"],
    )


def mail_from_row(row: sa.RowMapping) -> MailRow:
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
