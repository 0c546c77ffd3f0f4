"""Bulk INSERTs of plain rows: a Core statement compiled once, values bound by the driver.

A first sync writes about half a million rows (accounts, contacts, bindings, audit, mails).
``Connection.execute(insert, [dict, ...])`` runs SQLAlchemy's parameter processing for
every row (building each row's parameters, then each value's type processor): a third of
the writing. ``insert_rows`` sends the same INSERT, compiled by SQLAlchemy for the
connection's dialect (so SQL Server and MariaDB get their own SQL, as ever), as one
executemany of value tuples, and runs the type processors the dialect needs (SQLite's
datetimes) once per distinct value: a batch's rows share their timestamps.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import date, datetime
from functools import lru_cache
from typing import Any

import sqlalchemy as sa

Processor = Callable[[Any], Any]


def insert_rows(
    conn: sa.Connection, table: sa.Table, columns: Sequence[str], rows: Sequence[Sequence[Any]]
) -> None:
    """INSERT ``rows`` (each a sequence of values in ``columns`` order) into ``table``,
    as one executemany on ``conn`` (the caller's transaction). Driver errors propagate as
    SQLAlchemy's ``DBAPIError``, as from ``Connection.execute``."""
    if not rows:
        return
    sql, order, processors = _compiled(table, tuple(columns), conn.dialect)
    if processors:
        rows = _processed(rows, processors)
    if order is None:  # named parameters (psycopg's pyformat)
        params: list[Any] = [dict(zip(columns, row, strict=True)) for row in rows]
    elif order == tuple(range(len(columns))):
        params = [tuple(row) for row in rows]
    else:
        params = [tuple(row[at] for at in order) for row in rows]
    conn.exec_driver_sql(sql, params)


@lru_cache(maxsize=64)
def _compiled(
    table: sa.Table, columns: tuple[str, ...], dialect: sa.Dialect
) -> tuple[str, tuple[int, ...] | None, tuple[tuple[int, Processor], ...]]:
    """The INSERT's SQL for ``dialect``, where each positional parameter's value sits in a
    row (None: the dialect binds by name), and the type processors the dialect needs."""
    compiled = sa.insert(table).compile(dialect=dialect, column_keys=list(columns))
    order = None
    if compiled.positional:
        assert compiled.positiontup is not None
        order = tuple(columns.index(name) for name in compiled.positiontup)
    processors = []
    for at, name in enumerate(columns):
        processor = table.c[name].type.dialect_impl(dialect).bind_processor(dialect)
        if processor is not None:
            processors.append((at, processor))
    return compiled.string, order, tuple(processors)


def _processed(
    rows: Sequence[Sequence[Any]], processors: tuple[tuple[int, Processor], ...]
) -> list[list[Any]]:
    """``rows`` with each processed column's values converted; a timestamp, flag or NULL
    (values equal only when they mean the same) is converted once per distinct value."""
    out = [list(row) for row in rows]
    for at, processor in processors:
        seen: dict[tuple[type, Any], Any] = {}
        for row in out:
            value = row[at]
            if type(value) not in _SHARED:
                row[at] = processor(value)
                continue
            memo = (type(value), value)
            if memo not in seen:
                seen[memo] = processor(value)
            row[at] = seen[memo]
    return out


_SHARED = frozenset({datetime, date, bool, type(None)})
