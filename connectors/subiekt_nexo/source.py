"""The InsERT Subiekt nexo source: reads in-scope contractors from nexo's SQL Server database.

A read costs a constant number of queries whatever the number of contractors: the contact
kinds (a few ``RodzajeKontaktu`` rows), one streamed main query (contractor, main address,
country, price level, discount, salesperson, e-mail) and one streamed query of contact
persons, both ordered by contractor id and merge-joined here, so memory stays flat. Each
stream has its own connection (no MARS on pyodbc by default; pymysql cannot interleave two
unbuffered results). ``keys=`` reads in chunks of ``KEY_CHUNK`` ids, well under SQL
Server's 2,100-parameter limit. Change detection never reads ``TimeStamp``: a rowversion
changes with the contractor's row, not with its contacts, features or salesperson, and
syncd fingerprints the whole record instead.

The tables that are not publicly known are named by ``source.tables``. ``check()`` looks
every named table and column up in the catalogue; a read does so only after the server
refused a statement, so a wrong guess fails with the YAML key to fix, not with a driver's
"invalid object name", and a good configuration pays nothing for it.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator
from contextlib import AbstractContextManager

import sqlalchemy as sa
import structlog

from connectors._rows import flag, text
from connectors._sql import is_connection_problem, make_engine, translate_errors
from connectors._stream import STREAM_BATCH, read_records
from connectors.base import Candidate, ContractorFacts, DirectoryEntry, SourceCheck
from connectors.subiekt_nexo import catalogue, rows
from connectors.subiekt_nexo import query as q
from connectors.subiekt_nexo.config import DEFAULT_SCHEMA, NexoTables, SubiektNexoConfig
from connectors.subiekt_nexo.tables import OWN_COMPANY, NexoSchema
from syncd.config.base import secret_value
from syncd.errors import SourceUnavailable
from syncd.model import RawRecord, SourceContractor

log = structlog.get_logger(__name__)

KEY_CHUNK = 1000
_WHAT = "the Subiekt nexo database"
_HINT = (
    "check that the ERP's SQL Server is reachable and source.url is right; "
    "syncd will retry on the next cycle"
)


class SubiektNexoSource:
    """Reads contractors carrying ``feature`` from a Subiekt nexo database, never writing.

    ``engine`` lets a caller share one (it is then not disposed by ``close``); otherwise one
    is built from ``url`` and ``password``. ``schema`` is nexo's schema (None: the login's
    default); ``tables`` names the tables no public source names.
    """

    def __init__(
        self,
        url: str,
        *,
        feature: str,
        password: str | None = None,
        engine: sa.Engine | None = None,
        schema: str | None = DEFAULT_SCHEMA,
        tables: NexoTables | None = None,
    ) -> None:
        self.feature = feature
        self.t = NexoSchema(tables or NexoTables(), schema)
        self._owns_engine = engine is None
        self._engine = engine if engine is not None else make_engine(url, password=password)

    @classmethod
    def from_config(cls, config: SubiektNexoConfig) -> SubiektNexoSource:
        """The source that ``source.kind: subiekt_nexo`` describes."""
        return cls(
            config.url,
            feature=config.feature,
            password=secret_value(config.password),
            schema=config.db_schema,
            tables=config.tables,
        )

    def _errors(self) -> AbstractContextManager[None]:
        return translate_errors(_WHAT, SourceUnavailable, url=self._engine.url, hint=_HINT)

    def _explain(self, error: sa.exc.DBAPIError) -> None:
        """After a read failed on the server (not the network): when the catalogue lacks a
        table or column that ``source.tables`` names, raise that, with the key to fix."""
        if is_connection_problem(error):
            return
        with self._errors(), self._engine.connect() as conn:
            problems = catalogue.problems(sa.inspect(conn), self.t)
        if problems:
            message = "cannot read the Subiekt nexo database: " + "; ".join(problems)
            raise SourceUnavailable(message) from error

    def _kinds(self, conn: sa.Connection) -> rows.Kinds:
        n = self.t.names
        return rows.kinds(
            conn.execute(q.kinds_query(self.t)).mappings(),
            n.email_kind,
            n.phone_kind,
            n.billing_email_kind,
        )

    def _kind_problems(self, kinds: rows.Kinds, *, vital: bool = False) -> list[str]:
        """Configured kinds the dictionary lacks. ``vital``: only those a read cannot do
        without; a missing billing kind only leaves the billing e-mail out (``check`` says)."""
        n, found = self.t.names, []
        named: list[tuple[str, str | None, tuple[int, ...]]] = [
            ("email_kind", n.email_kind, kinds.email),
            ("phone_kind", n.phone_kind, kinds.phone),
        ]
        if not vital:
            named.append(("billing_email_kind", n.billing_email_kind, kinds.billing))
        for key, name, ids in named:
            if name is not None and not ids:
                found.append(
                    f"source.tables.{key}: {self.t.contact_kind.name} has no kind named {name!r} "
                    f"(compared trimmed and case-insensitively); set source.tables.{key} to the "
                    f"name of that kind in {self.t.contact_kind.name}.{n.contact_kind_name}"
                )
        return found

    def check(self) -> SourceCheck:
        """Every named table and column, the contact kinds and the feature; the scope count."""
        with self._errors(), self._engine.connect() as conn:
            problems = catalogue.problems(sa.inspect(conn), self.t)
            if problems:
                return SourceCheck(in_scope=0, problems=tuple(problems))
            problems = self._kind_problems(self._kinds(conn))
            names = list(conn.execute(q.feature_names_query(self.t, self.feature)).scalars())
            count = int(conn.execute(q.count_query(self.t, self.feature)).scalar_one())
        facts: list[str] = []
        if not names:
            problems.append(
                f"source.feature: the feature {self.feature!r} is not in "
                f"{self.t.feature.name} (compared trimmed and case-insensitively): create it "
                "in Subiekt nexo, give it to the contractors that should have portal accounts "
                "(„Klienci – Popraw – Cechy”), or fix source.feature"
            )
        else:
            shown = ", ".join(repr(n) for n in sorted(names))
            facts.append(f"feature {self.feature!r} found as {shown}")
        facts.append(f"{count} contractor(s) in scope")
        return SourceCheck(in_scope=count, problems=tuple(problems), facts=tuple(facts))

    def contractors(self, keys: Collection[str] | None = None) -> Iterator[SourceContractor]:
        """Stream the in-scope contractors (only ``keys`` when given), ordered by id."""
        for record in self.records(keys):
            yield record.build()

    def records(self, keys: Collection[str] | None = None) -> Iterator[RawRecord]:
        """Like ``contractors``, but each row only digested until ``build()`` is called."""
        if keys is None:
            chunks: list[list[int] | None] = [None]
        else:
            ids = sorted({int(k) for k in keys if str(k).strip().isdigit()})
            chunks = [ids[i : i + KEY_CHUNK] for i in range(0, len(ids), KEY_CHUNK)]
            if not chunks:
                return
        with self._errors():
            try:
                with self._engine.connect() as conn:
                    kinds = self._kinds(conn)
                if problems := self._kind_problems(kinds, vital=True):
                    message = "cannot read the Subiekt nexo database: " + "; ".join(problems)
                    raise SourceUnavailable(message)
                for chunk in chunks:
                    yield from self._read(kinds, chunk)
            except sa.exc.DBAPIError as error:
                self._explain(error)
                raise

    def _read(self, kinds: rows.Kinds, ids: list[int] | None) -> Iterator[RawRecord]:
        """Merge-join the main and the contacts stream, both ordered by contractor id."""
        people_sql = None
        if self.t.person_link is not None:
            people_sql = q.contacts_query(self.t, self.feature, ids, kinds.email, kinds.phone)
        return read_records(
            self._engine,
            q.main_query(self.t, self.feature, ids, kinds.email, kinds.billing),
            people_sql,
            lambda row, mine, digest: rows.contractor(row, rows.contacts(mine), digest),
            main_key="id",
            symbol_key="symbol",
            tax_id_key="tax_id",
            person_key="contractor_id",
            duplicate="subiekt_nexo.duplicate_main_row",
            salt=repr(kinds),
        )

    def describe(self, ident: str) -> ContractorFacts | None:
        """The contractor's ``Podmioty`` row and features, and why it is (not) in scope."""
        ident = ident.strip()
        with self._errors(), self._engine.connect() as conn:
            kinds = self._kinds(conn)
            row = conn.execute(q.describe_query(self.t, ident, kinds.email)).mappings().first()
            if row is None:
                return None
            features = list(conn.execute(q.features_of_query(self.t, int(row["id"]))).scalars())
        in_scope, sentence = rows.scope(row, features, self.feature)
        kind = f"{row['kind']}/{row['subkind']}"
        if (row["kind"], row["subkind"]) == OWN_COMPANY:
            kind += " (own company)"
        return ContractorFacts(
            key=str(row["id"]),
            symbol=text(row["symbol"]) or str(row["id"]),
            name=text(row["name"]),
            email=row["email"],
            erp_blocked=flag(row.get("blocked")),
            in_scope=in_scope,
            scope=sentence,
            details=(
                ("features", ", ".join(repr(n) for n in features) or "none"),
                (
                    "Kontrahent",
                    "1 (contractor)" if flag(row["is_contractor"]) else "0 (not a contractor)",
                ),
                ("Aktywny", "1 (active)" if flag(row["active"]) else "0 (inactive)"),
                ("Typ/Podtyp", kind),
            ),
        )

    def directory(self) -> Iterator[DirectoryEntry]:
        """Every contractor nexo has (``Kontrahent = 1``), whatever its feature or status."""
        streaming = {"stream_results": True, "yield_per": STREAM_BATCH}
        with self._errors(), self._engine.connect() as conn:
            kinds = self._kinds(conn)
            statement = q.directory_query(self.t, self.feature, kinds.email)
            for row in conn.execution_options(**streaming).execute(statement).mappings():
                yield DirectoryEntry(
                    key=str(row["id"]),
                    symbol=text(row["symbol"]) or str(row["id"]),
                    name=text(row["name"]),
                    email=text(row["email"]),
                    tax_id=text(row["tax_id"]),
                    in_scope=bool(row["in_scope"]),
                )

    def discover(self) -> list[Candidate]:
        """Candidate tables and columns for each ``source.tables`` setting (catalogue only)."""
        with self._errors(), self._engine.connect() as conn:
            return catalogue.discover(sa.inspect(conn), self.t.schema)

    def close(self) -> None:
        """Dispose of the engine when this source built it. Never raises."""
        if self._owns_engine:
            try:
                self._engine.dispose()
            except Exception:  # close() must never raise
                log.warning("subiekt_nexo.close_failed", exc_info=True)
