"""The InsERT Subiekt GT source: reads in-scope contractors from GT's SQL Server database.

A read costs a constant number of queries whatever the number of contractors: the price
level names (one ``tw_Parametr`` row), one streamed main query (contractor, main address,
country, discount, salesperson) and one streamed contacts query, both ordered by contractor
id and merge-joined here, so memory stays flat at 200,000 contractors. Each stream has its
own connection: pyodbc on SQL Server has no MARS by default and pymysql cannot interleave
two unbuffered results on one connection. ``keys=`` reads in chunks of ``KEY_CHUNK`` ids,
well under SQL Server's 2,100-parameter limit.

The two queries are not one snapshot: a contractor edited between them shows its old or new
contacts, and the next cycle corrects it. That is the price of not holding locks on a
production ERP.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Mapping
from contextlib import AbstractContextManager

import sqlalchemy as sa
import structlog

from connectors._sql import make_engine, translate_errors
from connectors._stream import STREAM_BATCH, read_records
from connectors.base import ContractorFacts, DirectoryEntry, SourceCheck
from connectors.subiekt_gt import query as q
from connectors.subiekt_gt import rows
from connectors.subiekt_gt.config import SubiektGtConfig
from connectors.subiekt_gt.tables import (
    ADDRESS_MAIN,
    CUSTOMER_KINDS,
    KIND_SUPPLIER,
    OPTIONAL_CONTACT_COLUMNS,
)
from syncd.config.base import secret_value
from syncd.errors import SourceUnavailable
from syncd.model import RawRecord, SourceContractor

log = structlog.get_logger(__name__)

KEY_CHUNK = 1000
_WHAT = "the Subiekt GT database"
_HINT = (
    "check that the ERP's SQL Server is reachable and source.url is right; "
    "syncd will retry on the next cycle"
)


class SubiektGtSource:
    """Reads contractors carrying ``feature`` from a Subiekt GT database, never writing.

    ``engine`` lets a caller share one (it is then not disposed by ``close``); otherwise one
    is built from ``url`` and ``password``. ``schema`` is GT's schema when it is not the
    login's default (GT uses ``dbo``).
    """

    def __init__(
        self,
        url: str,
        *,
        feature: str,
        password: str | None = None,
        engine: sa.Engine | None = None,
        schema: str | None = None,
        roles: Mapping[str, str | None] | None = None,
    ) -> None:
        self.feature = feature
        self.schema = schema
        # Contact role -> the kh_Pracownik column the config names for it (None: nobody).
        self.roles = {role: column for role, column in (roles or {}).items() if column}
        self._role_problems: tuple[str, ...] = ()
        self._owns_engine = engine is None
        self._engine = engine if engine is not None else make_engine(url, password=password)
        self._tables: q.GtTables | None = None
        self._missing: tuple[str, ...] = ()

    @classmethod
    def from_config(cls, config: SubiektGtConfig) -> SubiektGtSource:
        """The source that ``source.kind: subiekt_gt`` describes."""
        return cls(
            config.url,
            feature=config.feature,
            password=secret_value(config.password),
            schema=config.db_schema,
            roles={
                "receives_mail": config.contact_receives_mail,
                "represents": config.contact_represents,
            },
        )

    def _errors(self) -> AbstractContextManager[None]:
        return translate_errors(_WHAT, SourceUnavailable, url=self._engine.url, hint=_HINT)

    def _inspect(self) -> q.GtTables:
        """Find which optional columns this GT version has; done once, then cached."""
        if self._tables is not None:
            return self._tables
        with self._errors(), self._engine.connect() as conn:
            try:
                inspector = sa.inspect(conn)
                columns = inspector.get_columns("kh_Pracownik", schema=self.schema)
                billing = inspector.has_table("adr_Email", schema=self.schema)
            except sa.exc.NoSuchTableError:
                message = (
                    "table kh_Pracownik was not found: source.url must point at a Subiekt GT "
                    "company database (and source.schema at its schema, usually dbo)"
                )
                raise SourceUnavailable(message) from None
        present = {c["name"].lower() for c in columns}
        found = [name for name in OPTIONAL_CONTACT_COLUMNS if name.lower() in present]
        self._missing = tuple(n for n in OPTIONAL_CONTACT_COLUMNS if n not in found)
        if self._missing:
            log.warning(
                "subiekt_gt.optional_columns_missing",
                table="kh_Pracownik",
                missing=list(self._missing),
                effect="contacts are read without them",
            )
        roles = self._role_columns({c["name"] for c in columns})
        self._tables = q.GtTables(self.schema, found, roles=roles, billing=billing)
        return self._tables

    def _role_columns(self, present: set[str]) -> dict[str, str]:
        """The configured role columns as this database spells them; a missing one is a
        problem ``check`` reports (and the role reads as false meanwhile)."""
        by_lower = {name.lower(): name for name in present}
        found: dict[str, str] = {}
        problems: list[str] = []
        for role, column in self.roles.items():
            if column.lower() in by_lower:
                found[role] = by_lower[column.lower()]
                continue
            problems.append(
                f"source.contact_{role}: kh_Pracownik has no column {column!r}: name a bit "
                "column of kh_Pracownik that marks the role, or null when nobody has it"
            )
            log.warning("subiekt_gt.role_column_missing", role=role, column=column)
        self._role_problems = tuple(problems)
        return found

    def check(self) -> SourceCheck:
        """Count the in-scope contractors; a missing feature or table is a problem."""
        t = self._inspect()
        with self._errors(), self._engine.connect() as conn:
            names = list(conn.execute(q.feature_names_query(t, self.feature)).scalars())
            count = conn.execute(q.count_query(t, self.feature)).scalar_one()
        problems: list[str] = list(self._role_problems)
        facts: list[str] = []
        if not names:
            problems.append(
                f"source.feature: the feature {self.feature!r} is not in sl_CechaKh (compared "
                "trimmed and case-insensitively): create it in Subiekt GT (cecha kontrahenta) "
                "and tag the contractors that should have portal accounts, or fix "
                "source.feature"
            )
        else:
            shown = ", ".join(repr(n) for n in sorted(names))
            facts.append(f"feature {self.feature!r} found as {shown}")
        facts.append(f"{count} contractor(s) in scope")
        if self._missing:
            facts.append(
                "kh_Pracownik lacks " + ", ".join(self._missing) + " (older GT); "
                "contacts are read without them"
            )
        return SourceCheck(in_scope=int(count), problems=tuple(problems), facts=tuple(facts))

    def contractors(self, keys: Collection[str] | None = None) -> Iterator[SourceContractor]:
        """Stream the in-scope contractors (only ``keys`` when given), ordered by id."""
        for record in self.records(keys):
            yield record.build()

    def records(self, keys: Collection[str] | None = None) -> Iterator[RawRecord]:
        """Like ``contractors``, but each row only digested until ``build()`` is called."""
        t = self._inspect()
        if keys is None:
            chunks: list[list[int] | None] = [None]
        else:
            ids = sorted({int(k) for k in keys if str(k).strip().isdigit()})
            chunks = [ids[i : i + KEY_CHUNK] for i in range(0, len(ids), KEY_CHUNK)]
            if not chunks:
                return
        with self._errors():
            with self._engine.connect() as conn:
                names = rows.price_names(conn.execute(q.price_names_query(t)).first())
            for chunk in chunks:
                yield from self._read(t, names, chunk)

    def _read(
        self, t: q.GtTables, names: tuple[str | None, ...], ids: list[int] | None
    ) -> Iterator[RawRecord]:
        """Merge-join the main and the contacts stream, both ordered by contractor id."""
        return read_records(
            self._engine,
            q.main_query(t, self.feature, ids),
            q.contacts_query(t, self.feature, ids),
            lambda row, mine, digest: rows.contractor(
                row, rows.contacts(mine, t.roles), names, digest
            ),
            main_key="kh_Id",
            symbol_key="kh_Symbol",
            tax_id_key="adr_NIP",
            person_key="pk_IdKh",
            duplicate="subiekt_gt.duplicate_main_address",
            salt=repr(names),
        )

    def describe(self, ident: str) -> ContractorFacts | None:
        """The contractor's GT row and features, and why it is (not) in scope."""
        t = self._inspect()
        k, a = t.kh, t.adr
        ident = ident.strip()
        where = k.c.kh_Id == int(ident) if ident.isdigit() else k.c.kh_Symbol == ident
        main = (a.c.adr_IdObiektu == k.c.kh_Id) & (a.c.adr_TypAdresu == ADDRESS_MAIN)
        with self._errors(), self._engine.connect() as conn:
            row = conn.execute(
                sa.select(
                    k.c.kh_Id, k.c.kh_Symbol, k.c.kh_EMail, k.c.kh_Rodzaj, k.c.kh_Zablokowany,
                    a.c.adr_NazwaPelna, a.c.adr_Nazwa,
                )
                .select_from(k.outerjoin(a, main))
                .where(where)
                .limit(1)
            ).first()  # fmt: skip
            if row is None:
                return None
            features = list(conn.execute(q.features_of_query(t, int(row.kh_Id))).scalars())
        wanted = self.feature.strip().lower()
        has_feature = any((name or "").strip().lower() == wanted for name in features)
        customer = row.kh_Rodzaj in CUSTOMER_KINDS
        if has_feature and customer:
            scope = f"in scope: carries the feature {self.feature!r} and is a customer"
        elif not has_feature:
            shown = ", ".join(repr(n) for n in features) or "none"
            scope = (
                f"NOT in scope: it does not carry the feature {self.feature!r} (its features: "
                f"{shown}); add the feature to the contractor in Subiekt GT"
            )
        else:
            scope = (
                f"NOT in scope: kh_Rodzaj={row.kh_Rodzaj} means a supplier only; make it a "
                "customer (or supplier and customer) in Subiekt GT"
            )
        kinds = {0: "supplier and customer", KIND_SUPPLIER: "supplier", 2: "customer"}
        return ContractorFacts(
            key=str(row.kh_Id),
            symbol=rows.text(row.kh_Symbol) or str(row.kh_Id),
            name=rows.text(row.adr_NazwaPelna) or rows.text(row.adr_Nazwa),
            email=row.kh_EMail,
            erp_blocked=bool(row.kh_Zablokowany),
            in_scope=has_feature and customer,
            scope=scope,
            details=(
                ("features", ", ".join(repr(n) for n in features) or "none"),
                ("kh_Rodzaj", f"{row.kh_Rodzaj} ({kinds.get(row.kh_Rodzaj, 'unknown')})"),
            ),
        )

    def directory(self) -> Iterator[DirectoryEntry]:
        """Every contractor GT has (suppliers and contractors without the feature too)."""
        t = self._inspect()
        streaming = {"stream_results": True, "yield_per": STREAM_BATCH}
        with self._errors(), self._engine.connect() as conn:
            statement = q.directory_query(t, self.feature)
            result = conn.execution_options(**streaming).execute(statement)
            for row in result:
                yield DirectoryEntry(
                    key=str(row.kh_Id),
                    symbol=rows.text(row.kh_Symbol) or str(row.kh_Id),
                    name=rows.text(row.adr_NazwaPelna) or rows.text(row.adr_Nazwa),
                    email=rows.text(row.kh_EMail),
                    tax_id=rows.text(row.adr_NIP),
                    in_scope=bool(row.in_scope),
                )

    def close(self) -> None:
        """Dispose of the engine when this source built it. Never raises."""
        if self._owns_engine:
            try:
                self._engine.dispose()
            except Exception:  # close() must never raise
                log.warning("subiekt_gt.close_failed", exc_info=True)
