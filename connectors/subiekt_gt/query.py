"""The SQL that Subiekt GT's source connector sends: scope filter, main read, contacts read.

Written in SQLAlchemy Core against lightweight ``sa.table`` shapes of GT's tables (only the
columns syncd reads; ``uz_Haslo`` is deliberately absent) so that the same statements
compile for SQL Server, SQLite, PostgreSQL and MariaDB. String functions are limited to
``lower``, ``ltrim`` and ``rtrim``, which all four have (``TRIM`` arrived only in SQL Server
2017, and many GT installations run on older ones).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

import sqlalchemy as sa

from connectors.subiekt_gt.tables import (
    ADDRESS_MAIN,
    CUSTOMER_KINDS,
    PRICE_LEVELS,
    gt_metadata,
)

_S = sa.String


class GtTables:
    """The GT tables the connector reads, from ``tables.gt_metadata`` (in ``schema``, GT's
    default ``dbo``), with only the optional contact columns this GT version has."""

    def __init__(
        self,
        schema: str | None,
        contact_columns: Collection[str],
        *,
        roles: Mapping[str, str] | None = None,
        billing: bool = False,
    ) -> None:
        self.roles = dict(roles or {})  # Contact role -> the kh_Pracownik column holding it
        self.billing = billing  # whether this GT has adr_Email (the billing e-mail's home)
        md = gt_metadata(
            optional_contact_columns=contact_columns,
            schema=schema,
            contact_role_columns=self.roles.values(),
        )
        t = {table.name: table for table in md.sorted_tables}
        self.kh, self.adr, self.country = t["kh__Kontrahent"], t["adr__Ewid"], t["sl_Panstwo"]
        self.feature, self.kh_feature = t["sl_CechaKh"], t["kh_CechaKh"]
        self.discount, self.user, self.params = t["sl_Rabat"], t["pd_Uzytkownik"], t["tw_Parametr"]
        self.contact = t["kh_Pracownik"]
        self.group = t["sl_GrupaKh"]
        self.email = t["adr_Email"]


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
    """One row per in-scope contractor with its main address, discount, salesperson and
    group."""
    k, a, p, r, u, g = t.kh, t.adr, t.country, t.discount, t.user, t.group
    joined = (
        k.outerjoin(a, (a.c.adr_IdObiektu == k.c.kh_Id) & (a.c.adr_TypAdresu == ADDRESS_MAIN))
        .outerjoin(p, p.c.pa_Id == a.c.adr_IdPanstwo)
        .outerjoin(r, r.c.rt_id == k.c.kh_IdRabat)
        .outerjoin(u, u.c.uz_Id == k.c.kh_IdOpiekun)
        .outerjoin(g, g.c.grk_Id == k.c.kh_IdGrupa)
    )
    columns = [
        *k.c["kh_Id", "kh_Symbol", "kh_EMail", "kh_Cena", "kh_Zablokowany", "kh_Osoba"],
        *k.c["kh_Imie", "kh_Nazwisko"],
        *a.c["adr_Nazwa", "adr_NazwaPelna", "adr_NIP", "adr_Telefon", "adr_Ulica", "adr_NrDomu"],
        *a.c["adr_NrLokalu", "adr_Kod", "adr_Miejscowosc"],
        *p.c["pa_Nazwa", "pa_KodPanstwaISO"],
        r.c.rt_Procent,
        *u.c["uz_Imie", "uz_Nazwisko", "uz_EMail"],
        g.c.grk_Nazwa,
    ]
    if t.billing:
        columns.append(billing_email(t).label("billing_email"))
    query = sa.select(*columns).select_from(joined).where(in_scope(t, feature)).order_by(k.c.kh_Id)
    if ids is not None:
        query = query.where(k.c.kh_Id.in_(ids))
    return query


def billing_email(t: GtTables) -> sa.ScalarSelect[Any]:
    """The billing e-mail: the first extra address of the main address in ``adr_Email``
    (its primary one first, then the order of entry). Probed by ``am_IdAdres``'s index."""
    e = t.email
    return (
        sa.select(e.c.am_Email)
        .where(e.c.am_IdAdres == t.adr.c.adr_Id, e.c.am_Email.is_not(None))
        .order_by(e.c.am_Podstawowy.desc(), e.c.am_Id)
        .limit(1)
        .scalar_subquery()
    )


def contacts_query(t: GtTables, feature: str, ids: list[int] | None) -> sa.Select[*tuple[Any, ...]]:
    """The valid contact persons of every in-scope contractor, in contractor-id order."""
    c, k = t.contact, t.kh
    query = (
        sa.select(*(column for column in c.c if column.name != "pk_DataZmiany"))
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


def directory_query(t: GtTables, feature: str) -> sa.Select[*tuple[Any, ...]]:
    """Every contractor, in scope or not, with what a person searches by (main address)
    and ``in_scope`` (1 or 0)."""
    k, a = t.kh, t.adr
    main = (a.c.adr_IdObiektu == k.c.kh_Id) & (a.c.adr_TypAdresu == ADDRESS_MAIN)
    scope = sa.case((in_scope(t, feature), 1), else_=0).label("in_scope")
    columns = [
        *k.c["kh_Id", "kh_Symbol", "kh_EMail"],
        *a.c["adr_NazwaPelna", "adr_Nazwa", "adr_NIP"],
    ]
    return sa.select(*columns, scope).select_from(k.outerjoin(a, main)).order_by(k.c.kh_Id)


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
