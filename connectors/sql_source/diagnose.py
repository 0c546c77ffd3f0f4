"""Saying what the database disliked about the admin's query, and on which of its lines.

A driver error becomes one line for ``check-config --online`` and ``doctor``:
``source.query: line 3 (FORM customers c): syntax error at or near "FORM"; fix ...``.
The line comes from the database when it gives one (PostgreSQL's ``LINE n:``, MySQL and
MariaDB's ``at line n``), counted from the marker comment that opens the wrapped text;
otherwise from the name the message quotes (SQLite's ``near "FORM"``, ``no such table:
x``), looked up in the query. Never a traceback, never the statement's bound values,
never a password.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

import sqlalchemy as sa

from connectors.sql_source import query, sqltext

_PG_LINE = re.compile(r"^LINE (\d+):", re.MULTILINE)
_MYSQL_NEAR = re.compile(r"near '(.*?)' at line (\d+)", re.DOTALL)
_NAMES = re.compile(
    r"\"([^\"]+)\"|'([^']+)'|`([^`]+)`|(?:no such (?:table|column)|for table|column)"
    r":?\s+([\w.]+)"
)
_DENIED = re.compile(r"permission denied|command denied|access denied", re.IGNORECASE)
# What MariaDB quotes after "in" to say where it met an unknown column.
_CLAUSES = {"field list", "where clause", "on clause", "order clause", "group statement",
            "having clause", "select"}  # fmt: skip


def problem(
    setting: str, sql: str, error: sa.exc.DBAPIError, secrets: Iterable[str | None] = ()
) -> str:
    """One ``source.<setting>: ...`` line saying what is wrong and where."""
    full = _driver_text(error)
    words = full.strip().splitlines()[0] if full.strip() else type(error.orig).__name__
    number = _database_line(full, error.statement, setting, sql.count("\n") + 1)
    near = _MYSQL_NEAR.search(full)
    if near is not None:  # MySQL: "You have an error in your SQL syntax; check the manual..."
        snippet = near.group(1).strip().splitlines()[0][:40] if near.group(1).strip() else ""
        words = f"syntax error near {snippet!r}" if snippet else "syntax error at its end"
    if number is None:
        number = _named_line(sql, full)
    for secret in secrets:
        if secret:
            words = words.replace(secret, "***")
    words = words[:200]
    fix = "fix the query" if _DENIED.search(full) is None else "grant the login SELECT on it"
    if number is None:
        return (
            f"source.{setting}: the database refused it: {words}; {fix} and run syncd "
            "check-config --online again"
        )
    return (
        f"source.{setting}: line {number} ({sqltext.line(sql, number)}): {words}; {fix} "
        "and run syncd check-config --online again"
    )


def _driver_text(error: sa.exc.DBAPIError) -> str:
    """The driver's message: pymysql keeps ``(code, text)`` in ``args``, others in ``str``."""
    args: tuple[Any, ...] = getattr(error.orig, "args", ())
    if len(args) == 2 and isinstance(args[0], int) and isinstance(args[1], str):
        return args[1]
    return str(error.orig)


def _database_line(full: str, statement: str | None, setting: str, lines: int) -> int | None:
    """The query's line number from the database's own line number, when it gave one."""
    found = _PG_LINE.search(full) or _MYSQL_NEAR.search(full)
    if found is None or statement is None:
        return None
    reported = int(found.group(found.lastindex or 1))
    opening = statement.find(query.marker(setting))
    if opening < 0:
        return None
    number = reported - sqltext.line_at(statement, opening)
    return number if 1 <= number <= lines else None


def _named_line(sql: str, full: str) -> int | None:
    """The line of the first name the message quotes that the query contains (a table or
    column; not a user in ``'syncd'@'host'``, not a clause in ``in 'field list'``)."""
    for match in _NAMES.finditer(full):
        name = next(group for group in match.groups() if group)
        beside = full[match.start() - 1 : match.start()] + full[match.end() : match.end() + 1]
        if "@" in beside or name.lower() in _CLAUSES:
            continue
        number = sqltext.line_with(sql, name)
        if number is not None:
            return number
    return None
