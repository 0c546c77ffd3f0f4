"""Write portal operations to a SQL portal's tables in a constant number of statements.

Every function takes the ``Layout`` of the table it writes (syncd's own schema or a mapped
table). ``prepare`` checks one operation in Python before anything is sent (so a too long
value is reported alike on every backend, SQLite included) and turns its fields into
values under syncd's names, dropping the fields the table does not store.
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
from functools import lru_cache
from typing import Any

import sqlalchemy as sa

from connectors._sql import driver_message
from connectors.base import (
    CreateAccount,
    DeleteAccount,
    OpOutcome,
    PortalOp,
    SetPassword,
    UpdateAccount,
)
from connectors.sql_portal._layout import Layout
from connectors.sql_portal.schema import (
    ACCOUNT_FIELDS,
    CONTACT_FIELDS,
    CONTACT_ROLES,
    STATUSES,
    contact_from_row,
    contact_values,
    max_length,
    to_db_discount,
)
from syncd._bulk import insert_rows
from syncd.errors import AccountGone, FatalError, LoginTaken, RecordError
from syncd.model import format_discount

CONTACT_COLUMNS = ("name", "email", "phone", "position", *CONTACT_ROLES)
CREATE_FIELDS = ACCOUNT_FIELDS - {"status", "block_reason"} | {"contacts"}
UPDATE_FIELDS = ACCOUNT_FIELDS | {"contacts"}
MYSQL_CONSTRAINT_FAILED = 4025  # MariaDB: a CHECK constraint refused the row


@dataclass(frozen=True, slots=True)
class Prepared:
    """One operation, checked, with its values (by syncd's names) and contacts ready."""

    index: int  # position in the caller's list of operations
    op: PortalOp
    values: dict[str, Any]  # create: every stored field; update: only the requested ones
    contacts: list[dict[str, Any]] | None  # None: leave the account's contacts alone
    account_id: int | str | None  # update/delete target; None when it cannot be a portal id

    @property
    def secrets(self) -> tuple[str | None, ...]:
        """Values that must never appear in an error message."""
        return (self.values.get("password_hash"),)


def prepare(
    layout: Layout, index: int, op: PortalOp, password_hash: str | None = None
) -> Prepared | RecordError:
    """Check ``op`` and convert its fields; a bad value is a ``RecordError`` for this op.

    A ``SetPassword`` arrives with ``password_hash`` made by the caller. Raises
    ``FatalError`` for a field syncd does not have: that is a bug in the caller.
    """
    if isinstance(op, DeleteAccount):
        return Prepared(index, op, {}, None, layout.parse_id(op.account_id))
    if isinstance(op, SetPassword):
        if not layout.has("password_hash"):
            message = (
                f"the portal's table has no password column, so the password of contractor "
                f"{op.key} cannot be set: map it in portal.columns.password_hash"
            )
            return RecordError(op.key, message)
        fields: dict[str, Any] = {"password_hash": password_hash}
    else:
        allowed = CREATE_FIELDS if isinstance(op, CreateAccount) else UPDATE_FIELDS
        unknown = sorted(set(op.fields) - allowed)
        if unknown:
            message = f"bug: {type(op).__name__} for {op.key} carries unknown field(s) {unknown}"
            raise FatalError(message)
        fields = op.fields
    try:
        values = {
            n: _clean(layout, n, v) for n, v in fields.items() if n != "contacts" and layout.has(n)
        }
    except InvalidOperation:
        message = f"contractor {op.key}: discount {fields['discount']!r} is not a number"
        return RecordError(op.key, message)
    raw_contacts = fields.get("contacts") if layout.contacts is not None else None
    contacts = None if raw_contacts is None else [contact_values(c) for c in raw_contacts]
    if isinstance(op, CreateAccount):
        state = {
            "contractor_key": op.key,
            "status": str(op.status),
            "block_reason": op.block_reason,
        }
        values = {
            **dict.fromkeys(_create_names(layout)),
            **values,
            **{name: value for name, value in state.items() if layout.has(name)},
        }
        if layout.has("discount") and values["discount"] is None:
            values["discount"] = _clean(layout, "discount", None)
        contacts = contacts or [] if layout.contacts is not None else None
        target = None
    else:
        target = layout.parse_id(op.account_id)
    if "status" in values:
        if values["status"] not in STATUSES:
            message = f"bug: status {values['status']!r} is not one of {sorted(STATUSES)}"
            raise FatalError(message)
        values["status"] = layout.to_db_status(values["status"])
    problem = _problem(layout, values, contacts, creating=isinstance(op, CreateAccount))
    if problem is not None:
        return RecordError(op.key, f"contractor {op.key}: {problem}")
    return Prepared(index, op, values, contacts, target)


def write_batch(
    layout: Layout, conn: sa.Connection, batch: Sequence[Prepared], now: datetime
) -> list[OpOutcome]:
    """Write ``batch`` on ``conn`` (inside the caller's transaction); one outcome per op.

    Database errors propagate: the caller rolls back and decides what they mean.
    """
    outcomes: dict[int, OpOutcome] = {}
    updates = [p for p in batch if isinstance(p.op, UpdateAccount | SetPassword)]
    _delete(layout, conn, [p for p in batch if isinstance(p.op, DeleteAccount)], outcomes)
    _update(layout, conn, updates, now, outcomes)
    _create(layout, conn, [p for p in batch if isinstance(p.op, CreateAccount)], now, outcomes)
    return [outcomes[p.index] for p in batch]


def record_error(
    layout: Layout, conn: sa.Connection, item: Prepared, error: sa.exc.DBAPIError
) -> RecordError:
    """Why the database refused ``item`` alone: ``LoginTaken`` when its login is someone
    else's, else a ``RecordError`` quoting the database (never the password hash)."""
    key = item.op.key
    login = item.values.get("login")
    if login is not None and isinstance(error, sa.exc.IntegrityError):
        owner_key = layout.col("contractor_key") if layout.has("contractor_key") else sa.null()
        query = sa.select(layout.col("id").label("id"), owner_key.label("owner_key"))
        owner = conn.execute(query.where(layout.login_matches([login]))).first()
        if owner is not None and owner.id != item.account_id:
            return LoginTaken(key, login, owner_key=owner.owner_key)
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


def missing_account(item: Prepared) -> AccountGone:
    """The error of an update whose account is gone from the portal."""
    assert isinstance(item.op, UpdateAccount | DeleteAccount | SetPassword)
    message = (
        f"account {item.op.account_id} no longer exists in the portal; the cycle that "
        f"updates it, or a full reconcile (`syncd sync --full`), creates it again"
    )
    return AccountGone(item.op.key, message)


def _delete(
    layout: Layout, conn: sa.Connection, items: list[Prepared], outcomes: dict[int, OpOutcome]
) -> None:
    ids = [p.account_id for p in items if p.account_id is not None]
    if ids:
        if layout.contacts is not None:
            # Explicit, not left to ON DELETE CASCADE: SQLite enforces it only when asked to.
            contacts = layout.contacts
            conn.execute(sa.delete(contacts).where(contacts.c.account_id.in_(ids)))
        conn.execute(sa.delete(layout.table).where(layout.col("id").in_(ids)))
    for p in items:
        outcomes[p.index] = OpOutcome(p.op, account_id=_op_account_id(p.op))


def _update(
    layout: Layout,
    conn: sa.Connection,
    items: list[Prepared],
    now: datetime,
    outcomes: dict[int, OpOutcome],
) -> None:
    ids = sorted({p.account_id for p in items if p.account_id is not None}, key=str)
    if not ids:
        for p in items:
            outcomes[p.index] = OpOutcome(p.op, error=missing_account(p))
        return
    read = ["id", *(name for name in sorted(ACCOUNT_FIELDS) if layout.has(name))]
    columns = [layout.col(name).label(name) for name in read]
    rows = conn.execute(sa.select(*columns).where(layout.col("id").in_(ids)))
    current = {row.id: row._mapping for row in rows}
    with_contacts = [p.account_id for p in items if p.contacts is not None]
    with_contacts = [target for target in with_contacts if target in current]
    stored = _contacts_of(layout, conn, with_contacts) if with_contacts else {}
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
        if (changes or new_contacts) and layout.has("updated_at"):
            changes["updated_at"] = now
        if changes:
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
            sa.update(layout.table)
            .where(layout.col("id") == sa.bindparam("v_id"))
            .values({layout.columns["login"]: sa.bindparam("v_parked")}),
            [{"v_id": target, "v_parked": f" parked {target}"} for target in renamed],
        )
    for names, params_list in groups.items():
        statement = (
            sa.update(layout.table)
            .where(layout.col("id") == sa.bindparam("v_id"))
            .values({layout.columns[name]: sa.bindparam(f"v_{name}") for name in names})
        )
        conn.execute(statement, params_list)
    if replaced and layout.contacts is not None:
        targets = [p.account_id for p in replaced]
        conn.execute(sa.delete(layout.contacts).where(layout.contacts.c.account_id.in_(targets)))
        _insert_contacts(layout, conn, [(p.account_id, p.contacts or []) for p in replaced])


def _create(
    layout: Layout,
    conn: sa.Connection,
    items: list[Prepared],
    now: datetime,
    outcomes: dict[int, OpOutcome],
) -> None:
    """INSERT the accounts as one executemany (``syncd._bulk``: no per-row parameter work
    in SQLAlchemy), read their ids back by login in one query, then INSERT the contacts.
    Cheaper than "insertmanyvalues" with RETURNING, and the same on every backend."""
    if not items:
        return
    names = _create_names(layout)  # every create has every one of them (``prepare``)
    stamps = [name for name in ("created_at", "updated_at") if layout.has(name)]
    mapped = [layout.columns[n] for n in names + stamps]
    constants = [c for c in layout.constants if c not in mapped]  # a mapped value wins
    columns = [*constants, *mapped]
    fixed = tuple(layout.constants[c] for c in constants)
    stamped = (now,) * len(stamps)
    rows = [(*fixed, *(p.values[n] for n in names), *stamped) for p in items]
    insert_rows(conn, layout.table, columns, rows)
    id_column, login = layout.col("id").label("id"), layout.col("login").label("login")
    logins = [p.values["login"] for p in items]
    query = sa.select(id_column, login).where(layout.col("login").in_(logins))
    ids = {row.login: row.id for row in conn.execute(query)}
    _insert_contacts(layout, conn, [(ids[p.values["login"]], p.contacts or []) for p in items])
    for p in items:
        outcomes[p.index] = OpOutcome(p.op, account_id=str(ids[p.values["login"]]))


def _insert_contacts(
    layout: Layout, conn: sa.Connection, owners: list[tuple[Any, list[dict[str, Any]]]]
) -> None:
    # Contacts keep their order through their ids: one executemany inserts them in order.
    if layout.contacts is None:
        return
    rows = [
        (owner, *(item[name] for name in CONTACT_COLUMNS))
        for owner, items in owners
        for item in items
    ]
    insert_rows(conn, layout.contacts, ("account_id", *CONTACT_COLUMNS), rows)


def _contacts_of(
    layout: Layout, conn: sa.Connection, ids: list[Any]
) -> dict[Any, list[dict[str, Any]]]:
    assert layout.contacts is not None
    contact = layout.contacts
    query = (
        sa.select(contact)
        .where(contact.c.account_id.in_(ids))
        .order_by(contact.c.account_id, contact.c.id)
    )
    found: dict[Any, list[dict[str, Any]]] = {}
    for row in conn.execute(query):
        found.setdefault(row.account_id, []).append(contact_from_row(row))
    return found


def _create_names(layout: Layout) -> list[str]:
    """Every field a create writes, so that all rows of one executemany have the same keys."""
    return sorted(name for name in ACCOUNT_FIELDS | {"contractor_key"} if layout.has(name))


def _same(stored: Any, new: Any) -> bool:
    if isinstance(new, Decimal) and stored is not None:
        return Decimal(stored) == new
    # A mapped table may hand back 1 for a configured "1" (or the other way round).
    return bool(stored == new) or (stored is not None and str(stored) == str(new))


def _clean(layout: Layout, name: str, value: Any) -> Any:
    if name == "discount":
        discount = to_db_discount(value)
        return format_discount(discount) if layout.discount_as_text else discount
    # str() turns a StrEnum (AccountStatus) into its value; some drivers would send its name.
    return None if value is None else str(value)


def _op_account_id(op: PortalOp) -> str | None:
    return op.account_id if isinstance(op, UpdateAccount | DeleteAccount | SetPassword) else None


def _problem(
    layout: Layout,
    values: Mapping[str, Any],
    contacts: list[dict[str, Any]] | None,
    *,
    creating: bool,
) -> str | None:
    """What is wrong with the values, said so that someone can fix it in the ERP."""
    if (creating or "login" in values) and not values.get("login"):
        return "the login (e-mail) is empty: add an e-mail address in the ERP"
    discount, limit = values.get("discount"), layout.discount_limit
    if discount is not None and limit is not None and abs(Decimal(discount)) > limit:
        return f"discount {discount}% is out of range: the portal holds at most {limit}%"
    limits = _limits(layout.table)
    for name, value in values.items():
        cap = limits.get(layout.columns[name])
        if cap is not None and isinstance(value, str) and len(value) > cap:
            return _too_long(cap, value, what=name)
    if contacts:
        assert layout.contacts is not None
        contact_limits = [(n, _limits(layout.contacts).get(n)) for n in CONTACT_FIELDS]
        for position, item in enumerate(contacts, start=1):
            if not item["name"]:
                return f"contact person #{position} has no name: add one in the ERP"
            for name, cap in contact_limits:
                value = item[name]
                if cap is not None and isinstance(value, str) and len(value) > cap:
                    return _too_long(cap, value, what=f"contact #{position} {name}")
    return None


@lru_cache(maxsize=64)
def _limits(table: sa.Table) -> dict[str, int]:
    """The declared length of each string column of ``table``, looked up once per table
    rather than once per value (half a million lookups in a first sync of 100,000)."""
    found = {column.key: max_length(table, column.key) for column in table.columns}
    return {name: limit for name, limit in found.items() if limit is not None}


def _too_long(limit: int, value: str, *, what: str) -> str:
    if what == "password_hash":
        return f"the password hash is {len(value)} characters long, the portal holds {limit}"
    return (
        f"{what} is {len(value)} characters long but the portal holds at most {limit}: "
        f"shorten it in the ERP, it will be synced on the next cycle"
    )
