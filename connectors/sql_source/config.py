"""``source.kind: sql``: the keys a plain-SQL source takes, checked as far as possible offline.

What can be known without a database is checked here, so that ``syncd check-config`` says
it before anything connects: each query is one read-only SELECT (or WITH ... SELECT), and
the ``:name`` placeholders of both queries and ``source.params`` match one for one. Which
aliases the queries really return needs the database: ``SqlSource.check`` reports those.

    source:
      kind: sql
      url: postgresql+psycopg://syncd@erp/firma
      feature: b2b            # optional: the query then needs a "features" column
      params: {customer: true}
      query: |
        SELECT c.id AS "key", c.code AS symbol, c.name AS name, c.email AS email, ...
        FROM customers c WHERE c.is_customer = :customer
      contacts_query: |
        SELECT p.customer_id AS contractor_key, p.first_name AS first_name, ...
        FROM contacts p

``key`` is a reserved word in MySQL and SQL Server: write ``AS "key"``, which all of
SQLite, PostgreSQL, MariaDB and SQL Server read as the name ``key``. On SQL Server a
``WITH`` query cannot be wrapped as a subquery: use a derived table there.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from connectors.sql_source import sqltext
from syncd.config.base import NO_VALUE, FieldProblems, SqlSourceSection, Text

ParamValue = str | int | float | bool
_QUERIES = ("query", "contacts_query")


class SqlSourceConfig(SqlSourceSection):
    """Any SQL database read through the admin's SELECT (``query``) and, optionally, a
    SELECT of contact persons (``contacts_query``).

    Scope is the query's WHERE clause, narrowed further by ``feature`` (compared with the
    ``features`` column, trimmed and case-insensitively) and by an ``is_customer`` column
    when the query has one. ``params`` are bound as ``:name`` parameters, never pasted into
    the SQL, so a value with a quote in it is just a value.
    """

    kind: Literal["sql"] = "sql"
    query: Text
    contacts_query: Text | None = None
    feature: Text | None = None
    params: dict[str, ParamValue] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _queries_are_single_reads_with_their_params(self) -> SqlSourceConfig:
        problems: list[tuple[tuple[str, ...], str, Any]] = []
        used: set[str] = set()
        for key in _QUERIES:
            sql = getattr(self, key)
            if sql is None:
                continue
            problems += [((key,), text, NO_VALUE) for text in sqltext.problems(sql)]
            for name, spot in sqltext.placeholders(sql).items():
                used.add(name)
                if name in self.params:
                    continue
                message = (
                    f"uses :{name} on line {spot.line} but source.params has no {name!r}: "
                    f"add it to params"
                )
                if spot.quoted:
                    message += rf" (or, if that colon is text, write \:{name})"
                problems.append(((key,), message, NO_VALUE))
        for name in self.params:
            if name not in used:
                message = (
                    f"is not used by source.query or source.contacts_query: use :{name} "
                    "in one of them or remove it"
                )
                problems.append((("params", name), message, NO_VALUE))
        if problems:
            raise FieldProblems(problems)
        return self

    def params_of(self, sql: str) -> dict[str, ParamValue]:
        """The params that ``sql`` uses (each query binds only its own)."""
        names = sqltext.placeholders(sql)
        return {name: value for name, value in self.params.items() if name in names}
