"""The state store's rows as frozen dataclasses, and their conversion to and from SQL rows.

``Binding``, ``AuditEntry`` and ``MailEntry`` are what the cycle writes; the ``*Row``
classes are what the read side (``status``, ``explain``, ``history``, ``mail list``) gets
back: those live in ``syncd.rows`` (importable without SQLAlchemy, for ``syncd status``)
and are re-exported here. Conversions live here so that ``syncd.store`` holds only the
queries.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from syncd.rows import (
    AuditRow,
    ConflictRow,
    MailRow,
    RecordFailure,
    RunRow,
    audit_from_row,
    conflict_from_row,
    failure_from_row,
    load_json,
    mail_from_row,
    run_from_row,
)

__all__ = [
    "AuditEntry",
    "AuditRow",
    "Binding",
    "ConflictRow",
    "MailEntry",
    "MailRow",
    "RecordFailure",
    "RunRow",
    "audit_from_row",
    "binding_from_row",
    "binding_params",
    "conflict_from_row",
    "dump_json",
    "failure_from_row",
    "failure_values",
    "load_json",
    "mail_from_row",
    "run_from_row",
]

# Context keys that would put a password in the outbox. Spec section 2: a plaintext
# password never reaches the state store; the mailer generates it at send time.
_FORBIDDEN_CONTEXT_WORDS = ("password", "passwd", "haslo", "hasło")


def dump_json(value: Any) -> str:
    """Canonical JSON text (sorted keys, real UTF-8) so equal documents compare equal."""
    return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


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
