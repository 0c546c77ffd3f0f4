"""The SQL of the Subiekt nexo source: scope, the main read, contacts, dictionaries, describe.

SQLAlchemy Core over the shapes in ``tables.py``, so one statement compiles for SQL Server,
SQLite, PostgreSQL and MariaDB. String functions are limited to ``lower``, ``ltrim`` and
``rtrim``, which all four have. Values a contractor has several of (e-mails in
``Kontakty``, discount rows) are read with correlated scalar subqueries that pick one row
deterministically, so the main query keeps exactly one row per contractor.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa

from connectors.subiekt_nexo.tables import OWN_COMPANY, NexoSchema


def norm(value: sa.ColumnElement[Any]) -> sa.ColumnElement[str]:
    """``lower(ltrim(rtrim(x)))``: how names are compared, on both sides."""
    return sa.func.lower(sa.func.ltrim(sa.func.rtrim(value)))


def _same_name(column: sa.ColumnElement[Any], name: str) -> sa.ColumnElement[bool]:
    return norm(column) == norm(sa.literal(name, sa.String()))


def own_company(p: sa.Table | sa.Alias) -> sa.ColumnElement[bool]:
    """``Typ = 2 AND Podtyp = 11``: the own company's row in ``Podmioty``."""
    return sa.and_(p.c.kind == OWN_COMPANY[0], p.c.subkind == OWN_COMPANY[1])


def in_scope(t: NexoSchema, feature: str) -> sa.ColumnElement[bool]:
    """An active contractor, not the own company, carrying the feature.

    The correlated EXISTS probes the link table by its contractor index and the feature
    dictionary by primary key, so it costs O(log n) per contractor.
    """
    p, link, f = t.contractor, t.feature_link, t.feature
    has_feature = (
        sa.select(sa.literal(1))
        .select_from(link.join(f, f.c.id == link.c.feature))
        .where(link.c.contractor == p.c.id, _same_name(f.c.name, feature))
        .exists()
    )
    not_own = sa.or_(p.c.kind.is_(None), p.c.subkind.is_(None), sa.not_(own_company(p)))
    return sa.and_(p.c.is_contractor == sa.true(), p.c.active == sa.true(), not_own, has_feature)


def first_contact(
    t: NexoSchema, owner: sa.ColumnElement[Any], kinds: Sequence[int]
) -> sa.ScalarSelect[Any]:
    """The ``Kontakty.Wartosc`` of ``owner`` of one of ``kinds``: primary first, then
    the lowest ``Id``, so several e-mails always give the same one."""
    k = t.contact.alias()
    order: list[sa.ColumnElement[Any]] = []
    if "primary" in k.c:
        order.append(sa.case((k.c.primary == sa.true(), 0), else_=1))
    order.append(k.c.id)
    return (
        sa.select(k.c.value)
        .where(k.c.owner == owner, k.c.kind.in_(list(kinds)))
        .order_by(*order)
        .limit(1)
        .scalar_subquery()
    )


def kinds_query(t: NexoSchema) -> sa.Select[*tuple[Any, ...]]:
    """The contact kinds whose names are the configured e-mail and phone kinds."""
    ck, n = t.contact_kind, t.names
    names = [n.email_kind, n.phone_kind, *([n.billing_email_kind] if n.billing_email_kind else [])]
    return sa.select(ck.c.id.label("id"), ck.c.name.label("name")).where(
        sa.or_(*(_same_name(ck.c.name, name) for name in names))
    )


def main_query(
    t: NexoSchema,
    feature: str,
    ids: list[int] | None,
    emails: Sequence[int],
    billing: Sequence[int] = (),
) -> sa.Select[*tuple[Any, ...]]:
    """One row per in-scope contractor: main address, price level, discount, salesperson."""
    p, link, detail, adr, country = (
        t.contractor,
        t.address_link,
        t.address_detail,
        t.address,
        t.country,
    )
    level, owner, user = t.price_level, t.owner, t.user
    joined = (
        p.outerjoin(link, sa.and_(link.c.contractor == p.c.id, link.c.main.is_not(None)))
        .outerjoin(detail, detail.c.address == link.c.id)
        .outerjoin(adr, adr.c.id == link.c.id)
        .outerjoin(country, country.c.id == adr.c.country)
        .outerjoin(level, level.c.id == p.c.price_level)
        .outerjoin(owner, sa.and_(owner.c.contractor == p.c.id, owner.c.primary_of == p.c.id))
        .outerjoin(user, user.c.id == owner.c.user)
    )  # fmt: skip
    columns: list[sa.ColumnElement[Any]] = [
        *(p.c[k].label(k) for k in ("id", "symbol", "name", "tax_id", "phone")),
        first_contact(t, p.c.id, emails).label("email"),
        *(detail.c[k].label(k) for k in ("street", "house", "flat", "postcode", "city")),
        country.c.name.label("country"),
        level.c.name.label("price_level"),
        user.c.name.label("owner_name"),
        first_contact(t, user.c.person, emails).label("owner_email"),
    ]
    if billing:
        columns.append(first_contact(t, p.c.id, billing).label("billing_email"))
    if "blocked" in p.c:
        columns.append(p.c.blocked.label("blocked"))
    if t.group is not None:
        joined = joined.outerjoin(t.group, t.group.c.id == p.c.group)
        columns.append(t.group.c.name.label("customer_group"))
    if t.discount is not None:
        d = t.discount.alias()
        percent = sa.select(sa.func.max(d.c.percent)).where(d.c.contractor == p.c.id)
        columns.append(percent.scalar_subquery().label("discount"))
    query = sa.select(*columns).select_from(joined).where(in_scope(t, feature)).order_by(p.c.id)
    return query if ids is None else query.where(p.c.id.in_(ids))


# The optional person-link columns a contact row carries, under these labels.
ROLE_KEYS = ("position", "primary", "receives_mail", "represents")


def contacts_query(
    t: NexoSchema, feature: str, ids: list[int] | None, emails: Sequence[int], phones: Sequence[int]
) -> sa.Select[*tuple[Any, ...]]:
    """The contact persons of every in-scope contractor, in contractor-id order."""
    assert t.person_link is not None  # the caller reads no contacts when it is not configured
    link, p = t.person_link, t.contractor
    person = t.contractor.alias("osoba")
    columns: list[sa.ColumnElement[Any]] = [
        link.c.contractor.label("contractor_id"),
        person.c.id.label("person_id"),
        person.c.name.label("name"),
        person.c.phone.label("own_phone"),
        first_contact(t, person.c.id, emails).label("email"),
        first_contact(t, person.c.id, phones).label("phone"),
        *(link.c[k].label(k) for k in ROLE_KEYS if k in link.c),
    ]
    query = (
        sa.select(*columns)
        .select_from(
            link.join(p, p.c.id == link.c.contractor).join(person, person.c.id == link.c.person)
        )
        .where(in_scope(t, feature))
        .order_by(link.c.contractor, person.c.id)
    )
    return query if ids is None else query.where(link.c.contractor.in_(ids))


def count_query(t: NexoSchema, feature: str) -> sa.Select[int]:
    """How many contractors are in scope."""
    return sa.select(sa.func.count()).select_from(t.contractor).where(in_scope(t, feature))


def feature_names_query(t: NexoSchema, feature: str) -> sa.Select[str]:
    """The dictionary entries that match the feature (``b2b``, ``B2B `` ...)."""
    return sa.select(t.feature.c.name).where(_same_name(t.feature.c.name, feature))


def features_of_query(t: NexoSchema, contractor_id: int) -> sa.Select[str]:
    """The names of every feature one contractor carries (for ``explain``)."""
    link, f = t.feature_link, t.feature
    return (
        sa.select(f.c.name)
        .select_from(link.join(f, f.c.id == link.c.feature))
        .where(link.c.contractor == contractor_id)
        .order_by(f.c.name)
    )


def directory_query(
    t: NexoSchema, feature: str, emails: Sequence[int]
) -> sa.Select[*tuple[Any, ...]]:
    """Every contractor (``Kontrahent = 1``), in scope or not, with what a person searches
    by and ``in_scope`` (1 or 0). Other ``Podmioty`` rows are people (contact persons,
    salespeople), not contractors."""
    p = t.contractor
    return (
        sa.select(
            *(p.c[k].label(k) for k in ("id", "symbol", "name", "tax_id")),
            first_contact(t, p.c.id, emails).label("email"),
            sa.case((in_scope(t, feature), 1), else_=0).label("in_scope"),
        )
        .where(p.c.is_contractor == sa.true())
        .order_by(p.c.id)
    )


def describe_query(t: NexoSchema, ident: str, emails: Sequence[int]) -> sa.Select[*tuple[Any, ...]]:
    """The one ``Podmioty`` row with this id or symbol (the id wins), scope columns included."""
    p = t.contractor
    symbol = sa.func.ltrim(sa.func.rtrim(p.c.symbol)) == ident
    where = symbol
    first: list[sa.ColumnElement[Any]] = [p.c.id]
    if ident.isdigit():
        where = sa.or_(p.c.id == int(ident), symbol)
        first = [sa.case((p.c.id == int(ident), 0), else_=1), p.c.id]
    keys = ["id", "symbol", "name", "is_contractor", "active", "kind", "subkind"]
    columns = [p.c[k].label(k) for k in keys + (["blocked"] if "blocked" in p.c else [])]
    email = first_contact(t, p.c.id, emails).label("email")
    return sa.select(*columns, email).where(where).order_by(*first).limit(1)
