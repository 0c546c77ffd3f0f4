"""The SQL a ``source.kind: sql`` source sends: the admin's query wrapped, never pasted into.

Each query is a ``text()`` construct with its ``:name`` parameters bound, wrapped as the
subquery ``q`` so that syncd adds only what it must around it: the column list, the key
filter and the ORDER BY. A comment line (``/* syncd: source.query */``) opens the wrapped
text; it marks syncd's queries in the server's logs and tells ``diagnose`` on which line
of the statement the admin's line 1 is.

Keys are ordered as TEXT in code-point order on both streams, whatever the key's type:
``CAST(key AS VARCHAR)`` under the database's binary collation. Python's ``str`` order is
the same, so the merge join in ``rows`` can compare keys safely for integer keys (``"10"``
sorts before ``"9"``, on both sides), text keys under any default collation, and a
contacts query whose ``contractor_key`` has another type than the main query's ``key``.
The price: the database sorts instead of reading an index in order.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import mssql, mysql

# The collation that compares text by code point, per SQLAlchemy dialect name.
_BINARY_TEXT: dict[str, tuple[sa.types.TypeEngine[Any], str]] = {
    "postgresql": (sa.String(), "C"),
    "sqlite": (sa.String(), "BINARY"),
    "mysql": (mysql.CHAR(charset="utf8mb4"), "utf8mb4_bin"),
    "mariadb": (mysql.CHAR(charset="utf8mb4"), "utf8mb4_bin"),
    "mssql": (mssql.NVARCHAR(450), "Latin1_General_100_BIN2"),
}

Select = sa.Select[Any]


def marker(setting: str) -> str:
    """The comment line that opens the wrapped text of ``source.<setting>``."""
    return f"/* syncd: source.{setting} */"


def wrapped(
    setting: str, sql: str, params: Mapping[str, Any], columns: Sequence[str] = ()
) -> sa.Subquery:
    """The admin's query as the subquery ``q`` with ``columns`` (its result's own names).

    The text starts on its own line after the marker and ends with a newline, so that a
    trailing ``-- comment`` cannot swallow the closing parenthesis.
    """
    body = "\n".join((marker(setting), sql, ""))
    text = sa.text(body).bindparams(**params)
    return text.columns(*(sa.column(name) for name in columns)).subquery("q")


def probe(setting: str, sql: str, params: Mapping[str, Any]) -> Select:
    """``SELECT * FROM (query) AS q LIMIT 0``: the result's column names, reading no row."""
    q = wrapped(setting, sql, params)
    return sa.select(sa.literal_column("*")).select_from(q).limit(0)


def as_text(column: sa.ColumnElement[Any], dialect: str) -> sa.ColumnElement[Any]:
    """``column`` as text compared by code point (the order ``str`` has in Python)."""
    type_, collation = _BINARY_TEXT.get(dialect, (sa.String(), None))
    cast = sa.cast(column, type_)
    return cast.collate(collation) if collation else cast


def ordered(
    q: sa.Subquery,
    columns: Mapping[str, str],
    key: str,
    dialect: str,
    keys: Sequence[str] | None = None,
) -> Select:
    """Every column of ``q`` labelled by its lower-case alias, ordered by ``key`` as text;
    only the rows whose key is in ``keys`` when given."""
    key_text = as_text(q.c[columns[key]], dialect)
    query = sa.select(*(q.c[name].label(alias) for alias, name in columns.items()))
    if keys is not None:
        query = query.where(key_text.in_(keys))
    return query.order_by(key_text)


def lookup(q: sa.Subquery, columns: Mapping[str, str], ident: str, dialect: str) -> Select:
    """The rows whose key, or trimmed symbol, is ``ident`` (for ``explain``)."""
    symbol = sa.func.ltrim(sa.func.rtrim(sa.cast(q.c[columns["symbol"]], sa.String())))
    query = ordered(q, columns, "key", dialect)
    return query.where(sa.or_(as_text(q.c[columns["key"]], dialect) == ident, symbol == ident))
