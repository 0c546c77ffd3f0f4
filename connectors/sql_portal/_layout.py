"""Where each account field sits in a portal table: syncd's own schema, or a mapped table.

A ``Layout`` names, for syncd's field names (``login``, ``status``, ``price_level``, ...),
the table's columns, how statuses are spelled there, which constants an insert adds and
whether contacts have a table. The reads and writes of both portal flavours go through it,
so the own schema is just the layout whose column names are syncd's names.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import sqlalchemy as sa

from connectors.base import PortalAccount
from connectors.sql_portal.schema import STATUSES, account, contact
from syncd.model import SYNCED_FIELDS, format_discount

# Columns that are never read back into an account: the hash stays in the portal.
_NOT_LISTED = frozenset({"password_hash", "created_at", "updated_at"})
# The status an unknown value of a mapped status column reads as (the portal's own state,
# e.g. "banned by an admin", which syncd must not lift by reading it as active).
UNKNOWN_STATUS = "blocked"


@dataclass(frozen=True)
class Layout:
    """The accounts table, its columns by syncd's names, and how values are spelled there."""

    table: sa.Table
    columns: Mapping[str, str]  # syncd's name (id, login, status, ...) -> the table's column
    contacts: sa.Table | None = None  # None: the portal stores no contacts
    status_values: Mapping[str, Any] = field(default_factory=lambda: {s: s for s in STATUSES})
    constants: Mapping[str, Any] = field(default_factory=dict)  # column -> value, on insert
    fold_case: bool = False  # match logins case-insensitively with lower() on both sides
    _status_names: dict[str, str] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        names = {str(value): status for status, value in self.status_values.items()}
        object.__setattr__(self, "_status_names", names)  # a frozen dataclass's derived field

    @property
    def stored_fields(self) -> frozenset[str]:
        """The synced fields this table keeps."""
        kept = {name for name in SYNCED_FIELDS if name in self.columns}
        return frozenset(kept | ({"contacts"} if self.contacts is not None else set()))

    def has(self, name: str) -> bool:
        return name in self.columns

    def col(self, name: str) -> sa.Column[Any]:
        """The column that holds syncd's field ``name``."""
        return self.table.c[self.columns[name]]

    def to_db_status(self, status: str) -> Any:
        return self.status_values[status]

    def status_from_db(self, value: Any) -> str:
        return self._status_names.get(str(value), UNKNOWN_STATUS)

    def parse_id(self, account_id: str) -> int | str | None:
        """An account id as the key column holds it; None when it cannot be one."""
        if self._python_type("id") is not int:
            return account_id
        try:
            return int(account_id)
        except ValueError:
            return None

    def login_matches(self, logins: Iterable[str]) -> sa.ColumnElement[bool]:
        """The condition "the login is one of ``logins``" (case-folded when ``fold_case``)."""
        if self.fold_case:
            return sa.func.lower(self.col("login")).in_([login.lower() for login in logins])
        return self.col("login").in_(list(logins))

    def listed(self) -> list[sa.Label[Any]]:
        """The columns a listing reads, labelled with syncd's names; never the hash."""
        names = [name for name in self.columns if name not in _NOT_LISTED]
        return [self.col(name).label(name) for name in names]

    @property
    def discount_limit(self) -> Decimal | None:
        """The largest discount a NUMERIC(p, s) column holds; None when it does not say."""
        if not self.has("discount"):
            return None
        kind = self.col("discount").type
        precision, scale = getattr(kind, "precision", None), getattr(kind, "scale", None)
        if not isinstance(precision, int) or not isinstance(scale, int):
            return None
        return Decimal(10) ** (precision - scale) - Decimal(1).scaleb(-scale)

    @property
    def discount_as_text(self) -> bool:
        """Whether the discount column holds text (``"12.50"``) rather than a number."""
        return self.has("discount") and self._python_type("discount") is str

    def account_from_row(self, row: sa.Row[Any], contacts: list[dict[str, Any]]) -> PortalAccount:
        """A row read with ``listed()`` as a ``PortalAccount`` (only the stored fields)."""
        values = row._mapping
        fields: dict[str, Any] = {}
        for name in SYNCED_FIELDS:
            if name == "contacts":
                if self.contacts is not None:
                    fields[name] = contacts
            elif name == "discount" and name in values:
                fields[name] = format_discount(Decimal(str(values[name] or 0)))
            elif name in values:
                fields[name] = None if values[name] is None else str(values[name])
        return PortalAccount(
            id=str(values["id"]),
            login=str(values["login"]),
            contractor_key=_text(values.get("contractor_key")),
            status=self.status_from_db(values["status"]),
            block_reason=_text(values.get("block_reason")),
            fields=fields,
        )

    def _python_type(self, name: str) -> type | None:
        try:
            return self.col(name).type.python_type
        except NotImplementedError:
            return None


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


# syncd's own schema (spec section 5): every column under syncd's own name.
OWN_LAYOUT = Layout(account, {column.name: column.name for column in account.c}, contact)
