"""The SQL portal's tables as SQLAlchemy Core objects, and conversions between rows and fields.

These definitions are what the connector queries with; the tables themselves are created
by the migrations in ``sql_portal/migrations`` (a test checks that both agree). The column
lengths are also the limits that ``_apply`` checks before writing, so that a too
long value is reported the same way on SQLite (which does not enforce lengths) as on
PostgreSQL, MariaDB and SQL Server.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import mysql

from syncd.model import SYNCED_FIELDS, format_discount

# Microsecond timestamps: MySQL/MariaDB DATETIME would otherwise round them to seconds.
Timestamp = sa.DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")

metadata = sa.MetaData()

account = sa.Table(
    "b2b_account",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("login", sa.String(254), nullable=False),
    sa.Column("contractor_key", sa.String(64), nullable=True),
    sa.Column("symbol", sa.String(64), nullable=True),
    sa.Column("name", sa.String(255), nullable=True),
    sa.Column("tax_id", sa.String(32), nullable=True),
    sa.Column("email", sa.String(254), nullable=True),
    sa.Column("phone", sa.String(64), nullable=True),
    sa.Column("address", sa.String(500), nullable=True),
    sa.Column("price_level", sa.String(64), nullable=True),
    sa.Column("discount", sa.Numeric(5, 2), nullable=False, server_default="0"),
    sa.Column("owner_name", sa.String(255), nullable=True),
    sa.Column("owner_email", sa.String(254), nullable=True),
    sa.Column("customer_group", sa.String(100), nullable=True),  # migration 0002
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("block_reason", sa.String(500), nullable=True),
    sa.Column("password_hash", sa.String(255), nullable=True),
    sa.Column("created_at", Timestamp, nullable=False),
    sa.Column("updated_at", Timestamp, nullable=False),
    sa.UniqueConstraint("login", name="uq_b2b_account_login"),
    sa.Index("ix_b2b_account_contractor_key", "contractor_key"),
    sqlite_autoincrement=True,  # never reuse a deleted account's id (spec section 5)
)

contact = sa.Table(
    "b2b_contact",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column(
        "account_id",
        sa.Integer,
        sa.ForeignKey("b2b_account.id", ondelete="CASCADE", name="fk_b2b_contact_account_id"),
        nullable=False,
    ),
    sa.Column("name", sa.String(255), nullable=False),
    sa.Column("email", sa.String(254), nullable=True),
    sa.Column("phone", sa.String(64), nullable=True),
    sa.Column("position", sa.String(128), nullable=True),
    sa.Column("is_primary", sa.Boolean, nullable=False, server_default=sa.false()),
    # The contact person's roles (migration 0002): authorised to receive mail, to represent.
    sa.Column("receives_mail", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("represents", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Index("ix_b2b_contact_account_id", "account_id"),
    sqlite_autoincrement=True,
)

# Account columns an UpdateAccount may set besides the synced fields.
EXTRA_FIELDS: frozenset[str] = frozenset({"status", "block_reason", "password_hash"})
ACCOUNT_FIELDS: frozenset[str] = frozenset(SYNCED_FIELDS) - {"contacts"} | EXTRA_FIELDS
CONTACT_FIELDS: tuple[str, ...] = (
    "name",
    "email",
    "phone",
    "position",
    "is_primary",
    "receives_mail",
    "represents",
)
CONTACT_ROLES: tuple[str, ...] = ("is_primary", "receives_mail", "represents")
STATUSES: frozenset[str] = frozenset({"pending", "active", "blocked", "inactive"})
MAX_DISCOUNT = Decimal("999.99")  # Numeric(5, 2)


def max_length(table: sa.Table, column: str) -> int | None:
    """The declared length of a string column, or None for columns without one."""
    length = getattr(table.c[column].type, "length", None)
    return length if isinstance(length, int) else None


def to_db_time(moment: datetime) -> datetime:
    """Timestamps are stored as naive UTC so that every backend holds the same value."""
    if moment.tzinfo is None:
        return moment
    return moment.astimezone(UTC).replace(tzinfo=None)


def to_db_discount(value: Any) -> Decimal:
    """Discounts arrive as two-decimal strings (see ``format_discount``) or Decimals."""
    if value is None:
        return Decimal(0)
    return Decimal(str(value)).quantize(Decimal("0.01"))


def contact_values(item: Mapping[str, Any]) -> dict[str, Any]:
    """A contact dict (``Contact.as_dict()`` shape) as ``b2b_contact`` column values."""
    return {
        "name": item.get("name"),
        "email": item.get("email"),
        "phone": item.get("phone"),
        "position": item.get("position"),
        **{role: bool(item.get(role, False)) for role in CONTACT_ROLES},
    }


def contact_from_row(row: sa.Row[Any]) -> dict[str, Any]:
    """A ``b2b_contact`` row in the ``Contact.as_dict()`` shape."""
    return {
        "name": row.name,
        "email": row.email,
        "phone": row.phone,
        "position": row.position,
        **{role: bool(getattr(row, role)) for role in CONTACT_ROLES},
    }


def synced_fields(row: sa.Row[Any], contacts: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """A ``b2b_account`` row as ``DesiredAccount.fields()`` shapes, never the password hash."""
    fields: dict[str, Any] = {}
    for name in SYNCED_FIELDS:
        if name == "contacts":
            fields[name] = list(contacts)
        elif name == "discount":
            fields[name] = format_discount(Decimal(row.discount or 0))
        else:
            fields[name] = row._mapping[name]
    return fields


# The columns read for a listing: everything but password_hash, which never leaves the portal.
LISTED_COLUMNS = [column for column in account.c if column.name != "password_hash"]
