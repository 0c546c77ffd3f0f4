"""The ``source.kind: sql`` source: contractors from any SQL database, via the admin's SELECT.

A read costs a constant number of queries whatever the number of contractors: one
``LIMIT 0`` probe per configured query (to learn its column names, checked against the
aliases syncd knows), then the contractors stream and the contacts stream, both ordered by
key as text and merge-joined here, each on its own connection (pymysql cannot interleave
two unbuffered results on one, pyodbc has no MARS by default). ``keys=`` reads in chunks
of ``KEY_CHUNK`` keys. Scope is the query's WHERE clause, then ``source.feature`` and an
``is_customer`` column, decided in Python so that ``explain`` can say why a contractor the
query returns is out of scope.

As with Subiekt GT, the two streams are not one snapshot: a contractor edited between them
shows its old or new contacts, and the next cycle corrects it.
"""

from __future__ import annotations

from collections.abc import Collection, Generator, Iterator, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
import structlog

from connectors._rows import flag, text
from connectors._sql import is_connection_problem, make_engine, translate_errors
from connectors._stream import STREAM_BATCH
from connectors.base import ContractorFacts, DirectoryEntry, SourceCheck
from connectors.sql_source import aliases, diagnose, rows, sqltext
from connectors.sql_source import query as q
from connectors.sql_source.config import SqlSourceConfig
from syncd.config.base import secret_value
from syncd.errors import SourceUnavailable
from syncd.model import SourceContractor

log = structlog.get_logger(__name__)

KEY_CHUNK = 1000

# What ``explain`` can say when ``describe`` finds nothing: the query defines the scope.
NOT_RETURNED = "the contractor query does not return it: check its WHERE clause"
_WHAT = "the ERP database"


@dataclass(frozen=True, slots=True)
class _Layout:
    """The column names each query returns, by lower-case alias (checked against aliases)."""

    contractors: Mapping[str, str]
    contacts: Mapping[str, str] | None


class SqlSource:
    """Reads contractors through ``config.query`` (and ``config.contacts_query``), never
    writing. ``engine`` lets a test share one; it is then not disposed by ``close``."""

    def __init__(self, config: SqlSourceConfig, *, engine: sa.Engine | None = None) -> None:
        self.config = config
        self._owns_engine = engine is None
        password = secret_value(config.password)
        self._engine = engine if engine is not None else make_engine(config.url, password=password)
        self._secrets = (password, self._engine.url.password)
        self._sql = {
            setting: sqltext.without_trailing_semicolon(sql)
            for setting in ("query", "contacts_query")
            if (sql := getattr(config, setting)) is not None
        }

    @classmethod
    def from_config(cls, config: SqlSourceConfig) -> SqlSource:
        """The source that ``source.kind: sql`` describes."""
        return cls(config)

    def _errors(self) -> AbstractContextManager[None]:
        return translate_errors(_WHAT, SourceUnavailable, url=self._engine.url)

    def _wrapped(self, setting: str, columns: Mapping[str, str]) -> sa.Subquery:
        sql = self._sql[setting]
        return q.wrapped(setting, sql, self.config.params_of(sql), list(columns.values()))

    def _probe(self, setting: str) -> tuple[list[str] | None, str | None]:
        """The column names of one query, or the problem the database found with it."""
        sql = self._sql[setting]
        try:
            with self._engine.connect() as conn:
                result = conn.execute(q.probe(setting, sql, self.config.params_of(sql)))
                return list(result.keys()), None
        except sa.exc.DBAPIError as error:
            if is_connection_problem(error):
                raise
            return None, diagnose.problem(setting, sql, error, self._secrets)

    def _inspect(self) -> tuple[_Layout | None, list[str]]:
        """Probe both queries; the layout when every alias is right, and the problems."""
        problems: list[str] = []
        main, problem = self._probe("query")
        if problem:
            problems.append(problem)
        elif main is not None:
            problems += aliases.contractor_problems(main, feature=self.config.feature)
        people: list[str] | None = None
        if "contacts_query" in self._sql:
            people, problem = self._probe("contacts_query")
            problems += [problem] if problem else aliases.contact_problems(people or [])
        if problems or main is None:
            return None, problems
        layout = _Layout(
            aliases.resolve(main), aliases.resolve(people) if people is not None else None
        )
        return layout, []

    def _layout(self) -> _Layout:
        """The layout, or ``SourceUnavailable`` naming every problem (as ``check`` does)."""
        with self._errors():
            layout, problems = self._inspect()
        if layout is None:
            message = "; ".join(problems) + " (syncd check-config --online shows them all)"
            raise SourceUnavailable(message)
        return layout

    def check(self) -> SourceCheck:
        """Probe both queries, report wrong aliases and refused SQL by line, count the scope."""
        with self._errors():
            layout, problems = self._inspect()
            if layout is None:
                return SourceCheck(in_scope=0, problems=tuple(problems))
            count, spellings = self._count(layout)
        facts = [f"source.query returns {', '.join(layout.contractors)}"]
        if layout.contacts is not None:
            facts.append(f"source.contacts_query returns {', '.join(layout.contacts)}")
        feature = self.config.feature
        if feature is not None and not spellings:
            problems.append(
                f"source.feature: no contractor that source.query returns carries the feature "
                f"{feature!r} (compared trimmed and case-insensitively): tag the contractors "
                "that should have portal accounts in the ERP, or fix source.feature"
            )
        elif feature is not None:
            shown = ", ".join(repr(s) for s in sorted(spellings))
            facts.append(f"feature {feature!r} found as {shown}")
        facts.append(f"{count} contractor(s) in scope")
        return SourceCheck(in_scope=count, problems=tuple(problems), facts=tuple(facts))

    def _count(self, layout: _Layout) -> tuple[int, set[str]]:
        """In-scope contractors, and the spellings of the feature met, in one streamed read."""
        wanted = {a: c for a, c in layout.contractors.items() if a in rows.SCOPE_COLUMNS}
        statement = q.ordered(self._wrapped("query", wanted), wanted, "key", self._dialect)
        count, spellings = 0, set()
        with self._engine.connect() as conn:
            streaming = conn.execution_options(stream_results=True, yield_per=STREAM_BATCH)
            found = streaming.execute(statement).mappings()
            for key, group in rows.groups(found, "key", "query"):
                names = rows.features(group)
                feature = self.config.feature
                if feature is not None:
                    spellings |= {n for n in names if rows.has_feature([n], feature)}
                count += rows.out_of_scope(rows.first(key, group), names, feature) is None
        return count, spellings

    @property
    def _dialect(self) -> str:
        return self._engine.dialect.name

    def contractors(self, keys: Collection[str] | None = None) -> Iterator[SourceContractor]:
        """Stream the in-scope contractors (only ``keys`` when given), ordered by key."""
        layout = self._layout()
        if keys is None:
            yield from self._read(layout, None)
            return
        wanted = sorted({k for k in (rows.key_text(key) for key in keys) if k})
        for start in range(0, len(wanted), KEY_CHUNK):
            yield from self._read(layout, wanted[start : start + KEY_CHUNK])

    def _read(self, layout: _Layout, keys: list[str] | None) -> Iterator[SourceContractor]:
        """Merge-join the contractors and the contacts stream, both ordered by key."""
        streaming: dict[str, Any] = {"stream_results": True, "yield_per": STREAM_BATCH}
        feature = self.config.feature
        main_q = q.ordered(
            self._wrapped("query", layout.contractors), layout.contractors, "key", self._dialect,
            keys,
        )  # fmt: skip
        with self._errors(), self._engine.connect() as main_conn:
            main = main_conn.execution_options(**streaming).execute(main_q)
            found = rows.groups(main.mappings(), "key", "query")
            merged = self._with_contacts(found, layout, keys, streaming)
            try:
                for key, group, people in merged:
                    if keys is not None and key not in keys:
                        continue  # the database's equality may be looser than syncd's
                    row = rows.first(key, group)
                    if rows.out_of_scope(row, rows.features(group), feature) is None:
                        yield rows.contractor(key, row, rows.contacts(people))
            except sa.exc.DBAPIError:
                main_conn.invalidate()  # see SubiektGtSource._read: never leak a cursor
                raise
            finally:  # also when the consumer abandons the stream early
                merged.close()  # releases the contacts connection now, not at GC time
                main.close()

    def _with_contacts(
        self,
        found: Iterator[rows.Group],
        layout: _Layout,
        keys: list[str] | None,
        streaming: dict[str, Any],
    ) -> Generator[tuple[str, list[rows.Row], list[rows.Row]]]:
        """``found`` with each contractor's contact rows, read on a second connection."""
        if layout.contacts is None:
            yield from ((key, group, []) for key, group in found)
            return
        people_q = q.ordered(
            self._wrapped("contacts_query", layout.contacts), layout.contacts,
            "contractor_key", self._dialect, keys,
        )  # fmt: skip
        with self._engine.connect() as conn:
            people = conn.execution_options(**streaming).execute(people_q)
            try:
                grouped = rows.groups(people.mappings(), "contractor_key", "contacts_query")
                yield from rows.merge(found, grouped)
            except sa.exc.DBAPIError:
                conn.invalidate()
                raise
            finally:
                people.close()

    def directory(self) -> Iterator[DirectoryEntry]:
        """Every contractor the query returns, in scope or not: with scope in
        ``source.feature`` or ``is_customer`` the others are found too; a WHERE clause
        hides them from syncd altogether."""
        layout = self._layout()
        streaming: dict[str, Any] = {"stream_results": True, "yield_per": STREAM_BATCH}
        statement = q.ordered(
            self._wrapped("query", layout.contractors), layout.contractors, "key", self._dialect,
            None,
        )  # fmt: skip
        with self._errors(), self._engine.connect() as conn:
            result = conn.execution_options(**streaming).execute(statement)
            try:
                feature = self.config.feature
                for key, group in rows.groups(result.mappings(), "key", "query"):
                    row = rows.first(key, group)
                    email = row.get("email")
                    outside = rows.out_of_scope(row, rows.features(group), feature)
                    yield DirectoryEntry(
                        key=key,
                        symbol=text(row["symbol"]) or key,
                        name=text(row["name"]),
                        email=None if email is None else text(str(email)),
                        tax_id=text(row.get("tax_id")),
                        in_scope=outside is None,
                    )
            finally:
                result.close()

    def describe(self, ident: str) -> ContractorFacts | None:
        """The query's row for a key or symbol, and why it is (not) in scope; None when the
        query does not return it (then ``NOT_RETURNED`` says what to check)."""
        layout = self._layout()
        ident = ident.strip()
        statement = q.lookup(
            self._wrapped("query", layout.contractors), layout.contractors, ident, self._dialect
        )
        with self._errors(), self._engine.connect() as conn:
            found = list(rows.groups(conn.execute(statement).mappings(), "key", "query"))
        if not found:
            return None
        by_key = [group for group in found if group[0] == ident]
        key, group = (by_key or found)[0]
        row, names = rows.first(key, group), rows.features(group)
        feature = self.config.feature
        why = rows.out_of_scope(row, names, feature)
        if why is not None:
            scope = f"NOT in scope: the contractor query returns it, but {why}"
        elif feature is not None:
            scope = f"in scope: the contractor query returns it and it carries {feature!r}"
        else:
            scope = "in scope: the contractor query returns it"
        details: list[tuple[str, str]] = []
        if "features" in row:
            details.append(("features", ", ".join(repr(n) for n in names) or "none"))
        if "is_customer" in row:
            value = row["is_customer"]
            details.append(("is_customer", f"{'yes' if flag(value) else 'no'} ({value!r})"))
        return ContractorFacts(
            key=key,
            symbol=text(row["symbol"]) or key,
            name=text(row["name"]),
            email=text(row.get("email")),
            erp_blocked=flag(row.get("blocked")),
            in_scope=why is None,
            scope=scope,
            details=tuple(details),
        )

    def close(self) -> None:
        """Dispose of the engine when this source built it. Never raises."""
        if self._owns_engine:
            try:
                self._engine.dispose()
            except Exception:  # close() must never raise
                log.warning("sql_source.close_failed", exc_info=True)


def validate_online(config: SqlSourceConfig) -> list[str]:
    """The problems ``check-config --online`` prints for this source (empty when none).

    Raises ``SourceUnavailable`` when the database cannot be reached at all.
    """
    source = SqlSource.from_config(config)
    try:
        return list(source.check().problems)
    finally:
        source.close()
