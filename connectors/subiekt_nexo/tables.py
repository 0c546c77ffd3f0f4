"""Subiekt nexo's tables: every table and column name syncd reads, written once.

``specs`` lists them: the verified ones as constants, the rest from ``source.tables``
(``NexoTables``), each column under the logical key the queries use (``t.contact.c.value``
is ``Kontakty.Wartosc``) and with the YAML key that names it, so ``doctor`` can say which
setting to fix. The connector's queries see them through ``NexoSchema``; the fake ERP
builds real tables from the same specs with ``fake_tables``, adding keys, foreign keys to
``Podmioty`` and an index on every reference column (as nexo's ORM does).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from connectors.subiekt_nexo.config import NexoTables

# Podmioty.Typ / Podtyp of the own company ("firma własna"), which is never a customer.
OWN_COMPANY = (2, 11)

_I = sa.Integer()
_S = sa.String(255)
_B = sa.Boolean()
_TINY = sa.SmallInteger()
_UUID = sa.String(36)  # uniqueidentifier on SQL Server; only ever joined, never bound
_PERCENT = sa.Numeric(19, 4)
# The fake lets the database number these rows; every other id is given by the writer.
_NUMBERED_BY_DATABASE = {"contact", "feature", "price_level", "country", "group"}


@dataclass(frozen=True, slots=True)
class Col:
    """One column: its name, type, the ``source.tables`` key naming it (None: verified),
    the role of the table whose ``Id`` it holds, and whether it is the fake's primary key."""

    name: str
    type: sa.types.TypeEngine[Any]
    setting: str | None = None
    refers: str | None = None
    key: bool = False
    foreign_key: bool = True  # False where nexo stores 0 for "none" (no row to point at)


@dataclass(frozen=True, slots=True)
class Spec:
    """One table: its role, name, the ``source.tables`` key naming it, its columns."""

    role: str
    name: str
    setting: str | None
    columns: dict[str, Col]


def _opt(
    logical: str, name: str | None, type_: sa.types.TypeEngine[Any], setting: str
) -> dict[str, Col]:
    """An optional column: present only when its setting is not null."""
    return {} if name is None else {logical: Col(name, type_, setting)}


def specs(n: NexoTables) -> list[Spec]:
    """Every table syncd reads, targets before the tables that refer to them."""
    groups: list[Spec] = []
    group_column: dict[str, Col] = {}
    if n.groups is not None:
        groups.append(Spec("group", n.groups, "groups", {
            "id": Col("Id", _I, key=True),
            "name": Col(n.group_name, _S, "group_name"),
        }))  # fmt: skip
        group_column["group"] = Col(
            n.contractor_group, _I, "contractor_group", refers="group", foreign_key=False
        )
    found = [
        *groups,
        Spec("price_level", n.price_levels, "price_levels", {
            "id": Col("Id", _I, key=True),
            "name": Col(n.price_level_name, _S, "price_level_name"),
        }),
        Spec("contact_kind", n.contact_kinds, "contact_kinds", {
            "id": Col("Id", _I, key=True),
            "name": Col(n.contact_kind_name, _S, "contact_kind_name"),
        }),
        Spec("feature", n.feature_dictionary, "feature_dictionary", {
            "id": Col("Id", _I, key=True),
            "name": Col(n.feature_name, _S, "feature_name"),
        }),
        Spec("country", "Panstwa", None, {"id": Col("Id", _I, key=True), "name": Col("Nazwa", _S)}),
        Spec("contractor", "Podmioty", None, {
            "id": Col("Id", _I, key=True),
            "symbol": Col("Sygnatura_PelnaSygnatura", sa.String(64)),
            "name": Col("NazwaSkrocona", _S),
            "tax_id": Col("NIP", sa.String(50)),
            "phone": Col("Telefon", _S),
            "is_contractor": Col("Kontrahent", _B),
            "active": Col("Aktywny", _B),
            "kind": Col("Typ", _TINY),
            "subkind": Col("Podtyp", _TINY),
            "price_level": Col("Podmiot_PoziomCen_Id", _I, refers="price_level", foreign_key=False),
            **_opt("blocked", n.blocked, _B, "blocked"),
            **group_column,
        }),
        Spec("contact", "Kontakty", None, {
            "id": Col("Id", _I, key=True),
            "owner": Col("Podmiot_Id", _I, refers="contractor"),
            "kind": Col("Rodzaj_Id", _I, refers="contact_kind"),
            "value": Col("Wartosc", _S),
            **_opt("primary", n.contact_primary, _B, "contact_primary"),
        }),
        Spec("user", "Uzytkownicy", None, {
            "id": Col("Id", _UUID, key=True),
            "name": Col("Nazwa", _S),
            "person": Col("Osoba_Id", _I, refers="contractor"),
        }),
        Spec("owner", "OpiekunowiePodmiotu", None, {
            "user": Col("UzytkownikId", _UUID, refers="user"),
            "contractor": Col("Podmiot_Id", _I, refers="contractor"),
            "primary_of": Col("PodmiotOpiekunaPodstawowego_Id", _I, refers="contractor"),
        }),
        Spec("address", "Adresy", None, {
            "id": Col("Id", _I, key=True),
            "country": Col("Panstwo_Id", _I, refers="country"),
        }),
        Spec("address_link", "Adresy_AdresPodmiotu", None, {
            "id": Col("Id", _I, refers="address", key=True),
            "contractor": Col("Podmiot_Id", _I, refers="contractor"),
            "main": Col("PodmiotAdresuPodstawowego_Id", _I, refers="contractor"),
        }),
        Spec("address_detail", "AdresySzczegoly", None, {
            "address": Col("Adres_Id", _I, refers="address", key=True),
            "street": Col("Ulica", _S),
            "house": Col("NrDomu", sa.String(50)),
            "flat": Col("NrLokalu", sa.String(50)),
            "postcode": Col("KodPocztowy", sa.String(50)),
            "city": Col("Miejscowosc", _S),
        }),
        Spec("feature_link", n.feature_link, "feature_link", {
            "feature": Col(n.feature_link_feature, _I, "feature_link_feature", refers="feature"),
            "contractor": Col(
                n.feature_link_contractor, _I, "feature_link_contractor", refers="contractor"
            ),
        }),
    ]  # fmt: skip
    if n.discounts is not None:
        found.append(Spec("discount", n.discounts, "discounts", {
            "contractor": Col(
                n.discount_contractor, _I, "discount_contractor", refers="contractor"
            ),
            "percent": Col(n.discount_percent, _PERCENT, "discount_percent"),
        }))  # fmt: skip
    if n.contact_persons is not None:
        found.append(Spec("person_link", n.contact_persons, "contact_persons", {
            "contractor": Col(
                n.contact_person_contractor, _I, "contact_person_contractor", refers="contractor"
            ),
            "person": Col(
                n.contact_person_person, _I, "contact_person_person", refers="contractor"
            ),
            **_opt("position", n.contact_person_position, _S, "contact_person_position"),
            **_opt("primary", n.contact_person_primary, _B, "contact_person_primary"),
            **_opt("receives_mail", n.contact_person_receives_mail, _B,
                   "contact_person_receives_mail"),
            **_opt("represents", n.contact_person_represents, _B, "contact_person_represents"),
        }))  # fmt: skip
    return found


def shape(spec: Spec, schema: str | None) -> sa.Table:
    """The table as a query sees it: columns under their logical keys, nothing else.

    Each shape has its own ``MetaData``, so two settings may name one table (a discount
    column kept on ``Podmioty`` itself) without a clash.
    """
    columns = (sa.Column(c.name, c.type, key=key) for key, c in spec.columns.items())
    return sa.Table(spec.name, sa.MetaData(), *columns, schema=schema)


class NexoSchema:
    """The tables the connector reads, by role: ``t.contractor.c.id`` is ``Podmioty.Id``.

    ``discount``, ``person_link`` and ``group`` are None when ``source.tables`` sets them
    to null.
    """

    def __init__(self, names: NexoTables, schema: str | None) -> None:
        self.names = names
        self.schema = schema
        self.specs = specs(names)
        shapes = {spec.role: shape(spec, schema) for spec in self.specs}
        self.price_level = shapes["price_level"]
        self.contact_kind = shapes["contact_kind"]
        self.feature = shapes["feature"]
        self.country = shapes["country"]
        self.contractor = shapes["contractor"]
        self.contact = shapes["contact"]
        self.user = shapes["user"]
        self.owner = shapes["owner"]
        self.address = shapes["address"]
        self.address_link = shapes["address_link"]
        self.address_detail = shapes["address_detail"]
        self.feature_link = shapes["feature_link"]
        self.discount = shapes.get("discount")
        self.person_link = shapes.get("person_link")
        self.group = shapes.get("group")


def fake_tables(names: NexoTables, schema: str | None = None) -> dict[str, sa.Table]:
    """Real tables for the fake ERP, by role, in one ``MetaData``: primary keys, foreign keys
    and an index on every reference column.

    Without the indexes the correlated ``EXISTS`` on the feature link turns quadratic and a
    benchmark measures the fixture. Raises ``ValueError`` when two settings name one table,
    a layout the fake does not build.
    """
    md = sa.MetaData(schema=schema)
    tables: dict[str, sa.Table] = {}
    for spec in specs(names):
        if spec.name in {t.name for t in tables.values()}:
            message = f"the fake cannot build two roles in one table {spec.name!r}"
            raise ValueError(message)
        columns = []
        for key, col in spec.columns.items():
            extra: list[Any] = []
            if col.refers is not None and col.foreign_key:
                extra.append(sa.ForeignKey(tables[col.refers].c.id))
            columns.append(
                sa.Column(
                    col.name, col.type, *extra, key=key, primary_key=col.key,
                    autoincrement=col.key and spec.role in _NUMBERED_BY_DATABASE,
                    index=col.refers is not None and not col.key,
                )
            )  # fmt: skip
        tables[spec.role] = sa.Table(spec.name, md, *columns)
    return tables
