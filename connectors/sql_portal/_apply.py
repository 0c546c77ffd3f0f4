"""Write portal operations to the SQL portal's tables in a constant number of statements.

``prepare`` checks one operation in Python before anything is sent (so a too long value is
reported alike on every backend, SQLite included) and turns its fields into column values.
``write_batch`` writes a batch on a connection the caller holds in a transaction: deletes
first, then updates, then creates, so a login freed by a delete or a login change can be
taken by a create of the same batch. The number of statements depends on which kinds of
operations the batch holds, never on how many. ``record_error`` explains why the database
refused one operation, once the caller has fallen back to one operation per transaction.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

import sqlalchemy as sa

from connectors._sql import driver_message
from connectors.base import CreateAccount, DeleteAccount, OpOutcome, PortalOp, UpdateAccount
from connectors.sql_portal.schema import (
    ACCOUNT_FIELDS,
    CONTACT_FIELDS,
    MAX_DISCOUNT,
    STATUSES,
    account,
    contact,
    contact_from_row,
    contact_values,
    max_length,
    to_db_discount,
)
from syncd.errors import FatalError, LoginTaken, RecordError

# Every column a create writes, so that all rows of one executemany have the same keys.
CREATE_COLUMNS = ("contractor_key", *sorted(ACCOUNT_FIELDS))
CREATE_FIELDS = ACCOUNT_FIELDS - {"status", "block_reason"} | {"contacts"}
UPDATE_FIELDS = ACCOUNT_FIELDS | {"contacts"}
MYSQL_CONSTRAINT_FAILED = 4025  # MariaDB: a CHECK constraint refused the row


@dataclass(frozen=True, slots=True)
class Prepared:
    """One operation, checked, with its ``b2b_account`` values and contacts ready to write."""

    index: int  # position in the caller's list of operations
    op: PortalOp
    values: dict[str, Any]  # create: every column; update: only the requested ones
    contacts: list[dict[str, Any]] | None  # None: leave the account's contacts alone
    account_id: int | None  # update/delete target; None when it cannot be a portal id

    @property
    def secrets(self) -> tuple[str | None, ...]:
        """Values that must never appear in an error message."""
        return (self.values.get("password_hash"),)


def prepare(index: int, op: PortalOp) -> Prepared | RecordError:
    """Check ``op`` and convert its fields; a bad value is a ``RecordError`` for this op.

    Raises ``FatalError`` for a field the portal does not have: that is a bug in the caller.
    """
    if isinstance(op, DeleteAccount):
        return Prepared(index, op, {}, None, _parse_id(op.account_id))
    allowed = CREATE_FIELDS if isinstance(op, CreateAccount) else UPDATE_FIELDS
    unknown = sorted(set(op.fields) - allowed)
    if unknown:
        message = f"bug: {type(op).__name__} for {op.key} carries unknown field(s) {unknown}"
        raise FatalError(message)
    try:
        values = {n: _clean(n, v) for n, v in op.fields.items() if n != "contacts"}
    except InvalidOperation:
        message = f"contractor {op.key}: discount {op.fields['discount']!r} is not a number"
        return RecordError(op.key, message)
    raw_contacts = op.fields.get("contacts")
    contacts = None if raw_contacts is None else [contact_values(c) for c in raw_contacts]
    if isinstance(op, CreateAccount):
        values = {
            **dict.fromkeys(CREATE_COLUMNS),
            **values,
            "contractor_key": op.key,
            "status": str(op.status),
            "block_reason": op.block_reason,
        }
        values["discount"] = to_db_discount(values["discount"])
        contacts = contacts or []
        target = None
    else:
        target = _parse_id(op.account_id)
    problem = _problem(values, contacts, creating=isinstance(op, CreateAccount))
    if problem is not None:
        return RecordError(op.key, f"contractor {op.key}: {problem}")
    return Prepared(index, op, values, contacts, target)


def write_batch(conn: sa.Connection, batch: Sequence[Prepared], now: datetime) -> list[OpOutcome]:
    """Write ``batch`` on ``conn`` (inside the caller's transaction); one outcome per op.

    Database errors propagate: the caller rolls back and decides what they mean.
    """
    outcomes: dict[int, OpOutcome] = {}
    _delete(conn, [p for p in batch if isinstance(p.op, DeleteAccount)], outcomes)
    _update(conn, [p for p in batch if isinstance(p.op, UpdateAccount)], now, outcomes)
    _create(conn, [p for p in batch if isinstance(p.op, CreateAccount)], now, outcomes)
    return [outcomes[p.index] for p in batch]


def record_error(conn: sa.Connection, item: Prepared, error: sa.exc.DBAPIError) -> RecordError:
    """Why the database refused ``item`` alone: ``LoginTaken`` when its login is someone
    else's, else a ``RecordError`` quoting the database (never the password hash)."""
    key = item.op.key
    login = item.values.get("login")
    if login is not None and isinstance(error, sa.exc.IntegrityError):
        owner = conn.execute(
            sa.select(account.c.id, account.c.contractor_key).where(account.c.login == login)
        ).first()
        if owner is not None and owner.id != item.account_id:
            return LoginTaken(key, login, owner_key=owner.contractor_key)
    detail = driver_message(error, secrets=item.secrets)
    message = (
        f"the portal refused the account of contractor {key}: {detail}; correct the "
        f"contractor in the ERP, it will be tried again on the next cycle"
    )
    return RecordError(key, message)


def refused_record(error: BaseException | None) -> sa.exc.DBAPIError | None:
    """``error`` when it is a failed CHECK constraint that PyMySQL reports as operational.

    MariaDB's error 4025 (``CONSTRAINT ... failed``) concerns one record, but PyMySQL maps it
    to ``OperationalError``, which would otherwise read as "portal unreachable" forever.
    """
    if not isinstance(error, sa.exc.OperationalError) or error.connection_invalidated:
        return None
    args = getattr(error.orig, "args", ())
    return error if args and args[0] == MYSQL_CONSTRAINT_FAILED else None


def missing_account(item: Prepared) -> RecordError:
    """The error of an update whose account is gone from the portal."""
    assert isinstance(item.op, UpdateAccount | DeleteAccount)
    message = (
        f"account {item.op.account_id} no longer exists in the portal; a full reconcile "
        f"(`syncd sync --full`) will recreate it"
    )
    return RecordError(item.op.key, message)


def _delete(conn: sa.Connection, items: list[Prepared], outcomes: dict[int, OpOutcome]) -> None:
    ids = [p.account_id for p in items if p.account_id is not None]
    if ids:
        # Explicit, not left to ON DELETE CASCADE: SQLite enforces it only when asked to.
        conn.execute(sa.delete(contact).where(contact.c.account_id.in_(ids)))
        conn.execute(sa.delete(account).where(account.c.id.in_(ids)))
    for p in items:
        outcomes[p.index] = OpOutcome(p.op, account_id=_op_account_id(p.op))


def _update(
    conn: sa.Connection, items: list[Prepared], now: datetime, outcomes: dict[int, OpOutcome]
) -> None:
    ids = sorted({p.account_id for p in items if p.account_id is not None})
    if not ids:
        for p in items:
            outcomes[p.index] = OpOutcome(p.op, error=missing_account(p))
        return
    columns = [account.c.id, *(account.c[name] for name in sorted(ACCOUNT_FIELDS))]
    rows = conn.execute(sa.select(*columns).where(account.c.id.in_(ids)))
    current = {row.id: row._mapping for row in rows}
    with_contacts = [p.account_id for p in items if p.contacts is not None]
    with_contacts = [target for target in with_contacts if target in current]
    stored = _contacts_of(conn, with_contacts) if with_contacts else {}
    groups: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    replaced: list[Prepared] = []
    for p in items:
        target = p.account_id
        if target is None or target not in current:
            outcomes[p.index] = OpOutcome(p.op, error=missing_account(p))
            continue
        row = current[target]
        changes = {name: value for name, value in p.values.items() if not _same(row[name], value)}
        new_contacts = p.contacts is not None and p.contacts != stored.get(target, [])
        if new_contacts:
            replaced.append(p)
        if changes or new_contacts:
            changes["updated_at"] = now
            params = {f"v_{name}": value for name, value in changes.items()}
            groups.setdefault(tuple(sorted(changes)), []).append({"v_id": target, **params})
        outcomes[p.index] = OpOutcome(p.op, account_id=_op_account_id(p.op))
    renamed = [
        params["v_id"]
        for params_list in groups.values()
        for params in params_list
        if "v_login" in params
    ]
    if renamed:
        # Move changing logins aside first, so two accounts can swap logins in one batch
        # without tripping the unique index. No real login starts with a space.
        conn.execute(
            sa.update(account)
            .where(account.c.id == sa.bindparam("v_id"))
            .values(login=sa.bindparam("v_parked")),
            [{"v_id": target, "v_parked": f" parked {target}"} for target in renamed],
        )
    for names, params_list in groups.items():
        statement = (
            sa.update(account)
            .where(account.c.id == sa.bindparam("v_id"))
            .values({name: sa.bindparam(f"v_{name}") for name in names})
        )
        conn.execute(statement, params_list)
    if replaced:
        targets = [p.account_id for p in replaced]
        conn.execute(sa.delete(contact).where(contact.c.account_id.in_(targets)))
        _insert_contacts(conn, [(p.account_id, p.contacts or []) for p in replaced])


def _create(
    conn: sa.Connection, items: list[Prepared], now: datetime, outcomes: dict[int, OpOutcome]
) -> None:
    if not items:
        return
    rows = [{**p.values, "created_at": now, "updated_at": now} for p in items]
    if conn.dialect.insert_executemany_returning:
        # One INSERT ... VALUES (...), (...) RETURNING per page ("insertmanyvalues").
        inserted = conn.execute(sa.insert(account).returning(account.c.id, account.c.login), rows)
        ids = {row.login: row.id for row in inserted}
    else:  # MySQL and MariaDB < 10.5 have no RETURNING: insert, then read the ids back
        conn.execute(sa.insert(account), rows)
        logins = [p.values["login"] for p in items]
        query = sa.select(account.c.id, account.c.login).where(account.c.login.in_(logins))
        ids = {row.login: row.id for row in conn.execute(query)}
    _insert_contacts(conn, [(ids[p.values["login"]], p.contacts or []) for p in items])
    for p in items:
        outcomes[p.index] = OpOutcome(p.op, account_id=str(ids[p.values["login"]]))


def _insert_contacts(conn: sa.Connection, owners: list[tuple[Any, list[dict[str, Any]]]]) -> None:
    # Contacts keep their order through their ids: one executemany inserts them in order.
    rows = [{"account_id": owner, **item} for owner, items in owners for item in items]
    if rows:
        conn.execute(sa.insert(contact), rows)


def _contacts_of(conn: sa.Connection, ids: list[int | None]) -> dict[int, list[dict[str, Any]]]:
    query = (
        sa.select(contact)
        .where(contact.c.account_id.in_(ids))
        .order_by(contact.c.account_id, contact.c.id)
    )
    found: dict[int, list[dict[str, Any]]] = {}
    for row in conn.execute(query):
        found.setdefault(row.account_id, []).append(contact_from_row(row))
    return found


def _same(stored: Any, new: Any) -> bool:
    if isinstance(new, Decimal) and stored is not None:
        return Decimal(stored) == new
    return bool(stored == new)


def _clean(name: str, value: Any) -> Any:
    if name == "discount":
        return to_db_discount(value)
    # str() turns a StrEnum (AccountStatus) into its value; some drivers would send its name.
    return None if value is None else str(value)


def _parse_id(account_id: str) -> int | None:
    try:
        return int(account_id)
    except ValueError:
        return None


def _op_account_id(op: PortalOp) -> str | None:
    return op.account_id if isinstance(op, UpdateAccount | DeleteAccount) else None


def _problem(
    values: Mapping[str, Any], contacts: list[dict[str, Any]] | None, *, creating: bool
) -> str | None:
    """What is wrong with the values, said so that someone can fix it in the ERP."""
    if (creating or "login" in values) and not values.get("login"):
        return "the login (e-mail) is empty: add an e-mail address in the ERP"
    if "status" in values and values["status"] not in STATUSES:
        message = f"bug: status {values['status']!r} is not one of {sorted(STATUSES)}"
        raise FatalError(message)
    discount = values.get("discount")
    if discount is not None and abs(discount) > MAX_DISCOUNT:
        return f"discount {discount}% is out of range: the portal holds at most {MAX_DISCOUNT}%"
    for name, value in values.items():
        problem = _too_long(account, name, value, what=name)
        if problem:
            return problem
    for position, item in enumerate(contacts or [], start=1):
        if not item["name"]:
            return f"contact person #{position} has no name: add one in the ERP"
        for name in CONTACT_FIELDS:
            problem = _too_long(contact, name, item[name], what=f"contact #{position} {name}")
            if problem:
                return problem
    return None


def _too_long(table: sa.Table, name: str, value: Any, *, what: str) -> str | None:
    limit = max_length(table, name)
    if limit is None or not isinstance(value, str) or len(value) <= limit:
        return None
    if name == "password_hash":
        return f"the password hash is {len(value)} characters long, the portal holds {limit}"
    return (
        f"{what} is {len(value)} characters long but the portal holds at most {limit}: "
        f"shorten it in the ERP, it will be synced on the next cycle"
    )
