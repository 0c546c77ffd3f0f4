"""How ``StateStore`` writes a batch and a conflict set: prepared statements and diffing.

Every statement here runs as one executemany, so a batch of 10,000 records costs the same
number of round trips as a batch of one. Private to ``syncd.store``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from syncd.model import Conflict
from syncd.store._rows import AuditEntry, Binding, MailEntry, dump_json
from syncd.store.schema import NAME_LEN, binding, conflict, outbox, record_backoff


def p(name: str, column: sa.Column[Any]) -> sa.BindParameter[Any]:
    """A named, typed bound parameter for executemany statements."""
    return sa.bindparam(name, type_=column.type)


# commit_batch's binding statements, built once; StateStore.commit_batch says why three.
B = binding.c
PARK_LOGIN = (
    sa.update(binding)
    .where(B.contractor_key == p("b_key", B.contractor_key), B.login != p("b_login", B.login))
    .values(login=p("b_parked", B.login))
)
UPDATE_BINDING = (
    sa.update(binding)
    .where(B.contractor_key == p("b_key", B.contractor_key))
    .values(
        account_id=p("b_account_id", B.account_id),
        login=p("b_login", B.login),
        fingerprint=p("b_fingerprint", B.fingerprint),
        fields_json=p("b_fields_json", B.fields_json),
        status=p("b_status", B.status),
        erp_blocked=p("b_erp_blocked", B.erp_blocked),
        support_block_reason=p("b_support_block_reason", B.support_block_reason),
        support_blocked_by=p("b_support_blocked_by", B.support_blocked_by),
        activated=p("b_activated", B.activated),
        source_fingerprint=p("b_source_fingerprint", B.source_fingerprint),
        updated_at=p("b_now", B.updated_at),
    )
)
INSERT_COLUMNS = {
    "contractor_key": "b_key",
    "account_id": "b_account_id",
    "login": "b_login",
    "fingerprint": "b_fingerprint",
    "fields_json": "b_fields_json",
    "status": "b_status",
    "erp_blocked": "b_erp_blocked",
    "support_block_reason": "b_support_block_reason",
    "support_blocked_by": "b_support_blocked_by",
    "activated": "b_activated",
    "source_fingerprint": "b_source_fingerprint",
    "created_at": "b_now",
    "updated_at": "b_now",
}
BINDING_COLUMNS = tuple(INSERT_COLUMNS)
INSERT_MISSING_BINDING = sa.insert(binding).from_select(
    list(INSERT_COLUMNS),
    sa.select(*(p(param, B[col]) for col, param in INSERT_COLUMNS.items())).where(
        ~sa.exists().where(B.contractor_key == p("b_key", B.contractor_key))
    ),
)


def binding_values(item: Binding, now: datetime) -> dict[str, Any]:
    """A new binding's row, for a plain INSERT."""
    return dict(zip(INSERT_COLUMNS, binding_row(item, now), strict=True))


def binding_row(item: Binding, now: datetime) -> tuple[Any, ...]:
    """A new binding's values in ``INSERT_COLUMNS`` order (``syncd._bulk.insert_rows``)."""
    return (
        item.key, item.account_id, item.login, item.fingerprint, item.fields_json,
        item.status, item.erp_blocked, item.support_block_reason, item.support_blocked_by,
        item.activated, item.source_fingerprint, now, now,
    )  # fmt: skip


DELETE_BINDING = sa.delete(binding).where(B.contractor_key == p("b_key", B.contractor_key))
CANCEL_MAIL = (
    sa.update(outbox)
    .where(
        outbox.c.contractor_key == p("b_key", outbox.c.contractor_key),
        outbox.c.status == "pending",
    )
    .values(status="cancelled")
)

DELETE_BACKOFF = sa.delete(record_backoff).where(
    record_backoff.c.contractor_key == p("b_key", record_backoff.c.contractor_key)
)


C = conflict.c
DELETE_CONFLICT = sa.delete(conflict).where(C.contractor_key == p("b_key", C.contractor_key))
UPDATE_CONFLICT = (
    sa.update(conflict)
    .where(C.contractor_key == p("b_key", C.contractor_key))
    .values(
        symbol=p("b_symbol", C.symbol),
        name=p("b_name", C.name),
        login=p("b_login", C.login),
        kind=p("b_kind", C.kind),
        reason=p("b_reason", C.reason),
    )
)


@dataclass(frozen=True, slots=True)
class ConflictDiff:
    inserts: list[dict[str, Any]]
    updates: list[dict[str, Any]]
    deletes: list[dict[str, Any]]


AUDIT_COLUMNS = (
    "at", "run_id", "actor", "contractor_key", "login", "action", "result", "detail_json",
)  # fmt: skip
MAIL_COLUMNS = (
    "created_at", "not_before", "contractor_key", "account_id", "recipient", "template",
    "language", "status", "attempts", "last_error", "sent_at", "context_json",
)  # fmt: skip


def audit_values(entry: AuditEntry, now: datetime, run_id: str | None) -> dict[str, Any]:
    return dict(zip(AUDIT_COLUMNS, audit_row(entry, now, run_id), strict=True))


def audit_row(entry: AuditEntry, now: datetime, run_id: str | None) -> tuple[Any, ...]:
    """An audit entry's values in ``AUDIT_COLUMNS`` order; its detail encoded here unless
    the caller encoded it already (``AuditEntry.detail_json``)."""
    detail = entry.detail_json if entry.detail_json is not None else dump_json(entry.detail)
    return (
        now, run_id, entry.actor, entry.key, entry.login, entry.action, entry.result, detail,
    )  # fmt: skip


def mail_values(entry: MailEntry, now: datetime) -> dict[str, Any]:
    return dict(zip(MAIL_COLUMNS, mail_row(entry, now), strict=True))


def mail_row(entry: MailEntry, now: datetime) -> tuple[Any, ...]:
    """A new outbox row's values in ``MAIL_COLUMNS`` order."""
    return (
        now, entry.not_before, entry.key, entry.account_id, entry.recipient, entry.template,
        entry.language, "pending", 0, None, None, dump_json(entry.context),
    )  # fmt: skip


def _storable(text: str) -> str:
    """A conflict's text as every store holds it: the ERP value may be the reason for the
    conflict (a NUL, which PostgreSQL refuses; a symbol longer than the column), and
    recording the conflict must not fail because of it. The reason still says what is wrong.
    """
    return text.replace("\x00", "\ufffd")


def diff_conflicts(
    current: dict[str, sa.RowMapping], wanted: Sequence[Conflict], now: datetime
) -> ConflictDiff:
    diff = ConflictDiff(inserts=[], updates=[], deletes=[])
    seen: set[str] = set()
    for item in wanted:
        seen.add(item.key)
        values = {
            "symbol": _storable(item.symbol)[:NAME_LEN],
            "name": _storable(item.name),
            "login": item.login,
            "kind": str(item.kind),
            "reason": _storable(item.reason),
        }
        old = current.get(item.key)
        if old is None:
            diff.inserts.append({"contractor_key": item.key, "first_seen": now, **values})
        elif any(old[name] != value for name, value in values.items()):
            diff.updates.append({"b_key": item.key} | {f"b_{k}": v for k, v in values.items()})
    diff.deletes.extend({"b_key": key} for key in current.keys() - seen)
    return diff
