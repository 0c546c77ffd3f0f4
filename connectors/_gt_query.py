"""The SQL that Subiekt GT's source connector sends: scope filter, main read, contacts read.

Written in SQLAlchemy Core against lightweight ``sa.table`` shapes of GT's tables (only the
columns syncd reads; ``uz_Haslo`` is deliberately absent) so that the same statements
compile for SQL Server, SQLite, PostgreSQL and MariaDB. String functions are limited to
``lower``, ``ltrim`` and ``rtrim``, which all four have (``TRIM`` arrived only in SQL Server
2017, and many GT installations run on older ones).
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

import sqlalchemy as sa

# Customers are kh_Rodzaj 0 (supplier and customer) and 2 (customer); 1 is supplier-only.
CUSTOMER_KINDS = (0, 2)
ADDRESS_MAIN = 1
PRICE_LEVELS = 10  # tw_Parametr.twp_NazwaCeny1 .. twp_NazwaCeny10

_S, _I, _B = sa.String, sa.Integer, sa.Boolean


def _table(
    name: str, schema: str | None, *columns: tuple[str, type[sa.types.TypeEngine[Any]]]
) -> sa.TableClause:
    return sa.table(name, *(sa.column(n, t()) for n, t in columns), schema=schema)


class GtTables:
    """The GT tables as the connector sees them (in ``schema``, GT's default ``dbo``)."""

    def __init__(self, schema: str | None, contact_columns: Collection[str]) -> None:
        self.kh = _table(
            "kh__Kontrahent", schema,
            ("kh_Id", _I), ("kh_Symbol", _S), ("kh_EMail", _S), ("kh_Cena", _I),
            ("kh_IdRabat", _I), ("kh_IdOpiekun", _I), ("kh_Zablokowany", _B),
            ("kh_Rodzaj", _I), ("kh_Osoba", _B), ("kh_Imie", _S), ("kh_Nazwisko", _S),
        )  # fmt: skip
        self.adr = _table(
            "adr__Ewid", schema,
            ("adr_IdObiektu", _I), ("adr_TypAdresu", _I), ("adr_Nazwa", _S),
            ("adr_NazwaPelna", _S), ("adr_NIP", _S), ("adr_Telefon", _S), ("adr_Ulica", _S),
            ("adr_NrDomu", _S), ("adr_NrLokalu", _S), ("adr_Kod", _S),
            ("adr_Miejscowosc", _S), ("adr_IdPanstwo", _I),
        )  # fmt: skip
        self.country = _table(
            "sl_Panstwo", schema, ("pa_Id", _I), ("pa_Nazwa", _S), ("pa_KodPanstwaISO", _S)
        )
        self.feature = _table("sl_CechaKh", schema, ("ckh_Id", _I), ("ckh_Nazwa", _S))
        self.kh_feature = _table("kh_CechaKh", schema, ("ck_IdKhnt", _I), ("ck_IdCecha", _I))
        self.discount = sa.table(
            "sl_Rabat", sa.column("rt_id", _I()), sa.column("rt_Procent", sa.Numeric(19, 4)),
            schema=schema,
        )  # fmt: skip
        self.user = _table(
            "pd_Uzytkownik", schema,
            ("uz_Id", _I), ("uz_Imie", _S), ("uz_Nazwisko", _S), ("uz_EMail", _S),
        )  # fmt: skip
        self.params = _table(
            "tw_Parametr", schema,
            ("twp_Id", _I), *((f"twp_NazwaCeny{n}", _S) for n in range(1, PRICE_LEVELS + 1)),
        )  # fmt: skip
        contact = [
            ("pk_Id", _I), ("pk_IdKh", _I), ("pk_Imie", _S), ("pk_Nazwisko", _S),
            ("pk_Stanowisko", _S), ("pk_Telefon", _S), ("pk_Podstaw", _B),
            ("pk_EMail", _S), ("pk_TelKomorka", _S), ("pk_Zablokowany", _B),
        ]  # fmt: skip
        optional = {"pk_EMail", "pk_TelKomorka", "pk_Zablokowany"}
        self.contact = _table(
            "kh_Pracownik",
            schema,
            *(c for c in contact if c[0] not in optional or c[0] in contact_columns),
        )


def _norm(value: sa.ColumnElement[str]) -> sa.ColumnElement[str]:
    """``lower(ltrim(rtrim(x)))``: how feature names are compared, on both sides."""
    return sa.func.lower(sa.func.ltrim(sa.func.rtrim(value)))


def feature_match(t: GtTables, feature: str) -> sa.ColumnElement[bool]:
    """Dictionary entries whose name equals ``feature``, trimmed and case-insensitively."""
    return _norm(t.feature.c.ckh_Nazwa) == _norm(sa.literal(feature, _S()))


def in_scope(t: GtTables, feature: str) -> sa.ColumnElement[bool]:
    """A customer carrying the feature. The correlated EXISTS probes ``kh_CechaKh`` by its
    ``ck_IdKhnt`` index and ``sl_CechaKh`` by primary key, so it costs O(log n) per row."""
    has_feature = (
        sa.select(sa.literal(1))
        .select_from(t.kh_feature.join(t.feature, t.feature.c.ckh_Id == t.kh_feature.c.ck_IdCecha))
        .where(t.kh_feature.c.ck_IdKhnt == t.kh.c.kh_Id, feature_match(t, feature))
        .exists()
    )
    return sa.and_(t.kh.c.kh_Rodzaj.in_(CUSTOMER_KINDS), has_feature)


def main_query(t: GtTables, feature: str, ids: list[int] | None) -> sa.Select[*tuple[Any, ...]]:
    """One row per in-scope contractor with its main address, discount and salesperson."""
    k, a, p, r, u = t.kh, t.adr, t.country, t.discount, t.user
    joined = (
        k.outerjoin(a, (a.c.adr_IdObiektu == k.c.kh_Id) & (a.c.adr_TypAdresu == ADDRESS_MAIN))
        .outerjoin(p, p.c.pa_Id == a.c.adr_IdPanstwo)
        .outerjoin(r, r.c.rt_id == k.c.kh_IdRabat)
        .outerjoin(u, u.c.uz_Id == k.c.kh_IdOpiekun)
    )
    skip = (
        "kh_IdRabat",
        "kh_IdOpiekun",
        "kh_Rodzaj",
        "adr_IdObiektu",
        "adr_TypAdresu",
        "adr_IdPanstwo",
    )
    columns = [
        *(c for c in (*k.c, *a.c) if c.name not in skip),
        *p.c["pa_Nazwa", "pa_KodPanstwaISO"],
        r.c.rt_Procent,
        *u.c["uz_Imie", "uz_Nazwisko", "uz_EMail"],
    ]
    query = sa.select(*columns).select_from(joined).where(in_scope(t, feature)).order_by(k.c.kh_Id)
    if ids is not None:
        query = query.where(k.c.kh_Id.in_(ids))
    return query


def contacts_query(t: GtTables, feature: str, ids: list[int] | None) -> sa.Select[*tuple[Any, ...]]:
    """The valid contact persons of every in-scope contractor, in contractor-id order."""
    c, k = t.contact, t.kh
    query = (
        sa.select(*c.c)
        .select_from(c.join(k, k.c.kh_Id == c.c.pk_IdKh))
        .where(in_scope(t, feature))
        .order_by(c.c.pk_IdKh, c.c.pk_Id)
    )
    if "pk_Zablokowany" in c.c:
        blocked = c.c.pk_Zablokowany
        query = query.where(sa.or_(blocked.is_(None), blocked == sa.false()))
    if ids is not None:
        query = query.where(c.c.pk_IdKh.in_(ids))
    return query


def count_query(t: GtTables, feature: str) -> sa.Select[int]:
    """How many contractors are in scope."""
    return sa.select(sa.func.count()).select_from(t.kh).where(in_scope(t, feature))


def feature_names_query(t: GtTables, feature: str) -> sa.Select[str]:
    """The dictionary entries that match the feature (``b2b``, ``B2B `` ...)."""
    return sa.select(t.feature.c.ckh_Nazwa).where(feature_match(t, feature))


def price_names_query(t: GtTables) -> sa.Select[*tuple[Any, ...]]:
    """The one ``tw_Parametr`` row with the price level names."""
    columns = [t.params.c[f"twp_NazwaCeny{n}"] for n in range(1, PRICE_LEVELS + 1)]
    return sa.select(*columns).order_by(t.params.c.twp_Id).limit(1)


def features_of_query(t: GtTables, kh_id: int) -> sa.Select[str]:
    """The names of every feature one contractor carries (for ``explain``)."""
    return (
        sa.select(t.feature.c.ckh_Nazwa)
        .select_from(t.kh_feature.join(t.feature, t.feature.c.ckh_Id == t.kh_feature.c.ck_IdCecha))
        .where(t.kh_feature.c.ck_IdKhnt == kh_id)
        .order_by(t.feature.c.ckh_Nazwa)
    )
