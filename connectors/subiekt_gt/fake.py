"""A database shaped like Subiekt GT's, for the demo, the tests and the benchmark.

The tables come from ``tables.py``, the connector's own definitions, indexes included:
without them a correlated ``EXISTS`` on the feature table turns quadratic and a benchmark
would measure the fixture, not syncd.
``GtWriter`` writes contractors the way GT's own screens would leave them, so the connector
is tested against the shape of real data and never against its own idea of it.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import sqlalchemy as sa

from connectors.fake import FakeContractor
from connectors.subiekt_gt.tables import (
    ADDRESS_MAIN,
    KIND_BOTH,
    KIND_CUSTOMER,
    KIND_SUPPLIER,
    OPTIONAL_CONTACT_COLUMNS,
    gt_metadata,
)

__all__ = [
    "KIND_BOTH",
    "KIND_CUSTOMER",
    "KIND_SUPPLIER",
    "GtContact",
    "GtContractor",
    "GtFake",
    "GtWriter",
    "create_gt_schema",
]

_BATCH = 5000
# GT has no column for a contact person's roles: the fake adds these bit columns to
# kh_Pracownik, as an installation would, and names them in its source config.
ROLE_COLUMNS = {"receives_mail": "pk_syncd_Poczta", "represents": "pk_syncd_Reprezentuje"}


def create_gt_schema(
    engine: sa.Engine,
    *,
    optional_contact_columns: bool | Collection[str] = True,
    schema: str | None = None,
) -> sa.MetaData:
    """Create the GT tables in ``engine``'s database (``False`` mimics an older GT), with
    the fake's role columns (``ROLE_COLUMNS``)."""
    md = gt_metadata(
        optional_contact_columns=optional_contact_columns,
        schema=schema,
        contact_role_columns=ROLE_COLUMNS.values(),
    )
    md.create_all(engine)
    return md


@dataclass(frozen=True, slots=True)
class GtContact:
    """A contact person (``kh_Pracownik`` row) to write."""

    first_name: str | None = None
    last_name: str | None = None
    email: str | None = None
    phone: str | None = None
    mobile: str | None = None
    position: str | None = None
    primary: bool = False
    blocked: bool = False
    receives_mail: bool = False  # written to ROLE_COLUMNS where the table has them
    represents: bool = False


@dataclass(frozen=True, slots=True)
class GtContractor:
    """A contractor with its main address, features and contacts, as GT's screens save it.

    ``name`` is the full name (``adr_NazwaPelna``); ``short_name`` (``adr_Nazwa``, 53
    characters) defaults to its first 53 characters.
    """

    kh_id: int
    symbol: str
    name: str
    short_name: str | None = None
    email: str | None = None
    nip: str | None = None
    phone: str | None = None
    street: str | None = None
    house: str | None = None
    flat: str | None = None
    postcode: str | None = None
    city: str | None = None
    country_id: int | None = None
    price: int | None = None
    discount_id: int | None = None
    owner_id: int | None = None
    group_id: int | None = None
    blocked: bool = False
    kind: int = KIND_CUSTOMER
    person: bool = False
    first_name: str | None = None
    last_name: str | None = None
    features: Sequence[str] = ()
    contacts: Sequence[GtContact] = field(default=())
    billing_email: str | None = None  # an extra address of the main address (adr_Email)


class GtWriter:
    """Writes GT-shaped rows through ``conn``; the caller owns the transaction.

    Features are named by their dictionary text exactly (``"b2b"`` and ``" B2B "`` are two
    dictionary entries, as they would be in a messy GT); a name not yet in ``sl_CechaKh``
    is added on first use.
    """

    def __init__(self, conn: sa.Connection, *, schema: str | None = None) -> None:
        self.conn = conn
        self._billing: dict[int, str] = {}  # kh_Id -> billing e-mail, written with its address
        present = {c["name"] for c in sa.inspect(conn).get_columns("kh_Pracownik", schema)}
        optional = [name for name in OPTIONAL_CONTACT_COLUMNS if name in present]
        roles = [name for name in ROLE_COLUMNS.values() if name in present]
        md = gt_metadata(
            optional_contact_columns=optional, schema=schema, contact_role_columns=roles
        )
        self.t = {t.name: t for t in md.sorted_tables}
        features = self.t["sl_CechaKh"]
        self._features: dict[str, int] = {
            name: fid
            for fid, name in conn.execute(sa.select(features.c.ckh_Id, features.c.ckh_Nazwa))
        }

    def _insert(self, table: str, **values: Any) -> int:
        result = self.conn.execute(self.t[table].insert().values(**values))
        key = result.inserted_primary_key
        assert key is not None  # every GT table has a single integer primary key
        return int(key[0])

    # -- dictionaries -------------------------------------------------------------------
    def add_feature(self, name: str) -> int:
        """Add ``name`` to the feature dictionary (or return its id if already there)."""
        if name not in self._features:
            self._features[name] = self._insert("sl_CechaKh", ckh_Nazwa=name)
        return self._features[name]

    def add_discount(self, name: str, percent: Decimal | int | str) -> int:
        """Add a discount definition; returns its ``rt_id``."""
        return self._insert("sl_Rabat", rt_Nazwa=name, rt_Procent=Decimal(percent))

    def add_salesperson(
        self, first_name: str, last_name: str, email: str | None, *, code: str = "", login: str = ""
    ) -> int:
        """Add an ERP user (a salesperson); returns its ``uz_Id``. Sets a dummy password."""
        return self._insert(
            "pd_Uzytkownik",
            uz_Imie=first_name,
            uz_Nazwisko=last_name,
            uz_EMail=email,
            uz_Identyfikator=code or (first_name[:1] + last_name[:2]).upper(),
            uz_Login=login or last_name.lower(),
            uz_Haslo="never-read-by-syncd",
        )

    def add_group(self, name: str) -> int:
        """Add a contractor group to ``sl_GrupaKh``; returns its ``grk_Id``."""
        return self._insert("sl_GrupaKh", grk_Nazwa=name)

    def set_group(self, kh_id: int, group_id: int | None) -> None:
        """Move the contractor to another group (or none)."""
        self.update_contractor(kh_id, kh_IdGrupa=group_id)

    def add_country(self, name: str, iso: str) -> int:
        """Add a country; returns its ``pa_Id``."""
        return self._insert("sl_Panstwo", pa_Nazwa=name, pa_KodPanstwaISO=iso)

    def set_price_names(self, names: Sequence[str | None]) -> None:
        """Name price levels 1..len(names) in the single ``tw_Parametr`` row."""
        table = self.t["tw_Parametr"]
        values = {f"twp_NazwaCeny{n}": name for n, name in enumerate(names, start=1)}
        if self.conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one():
            self.conn.execute(table.update().values(**values))
        else:
            self.conn.execute(table.insert().values(twp_Id=1, **values))

    # -- contractors --------------------------------------------------------------------
    def add_contractor(self, kh_id: int, symbol: str, name: str, **kw: Any) -> int:
        """Add one contractor (see ``GtContractor`` for the keywords); returns ``kh_id``."""
        self.add_many([GtContractor(kh_id, symbol, name, **kw)])
        return kh_id

    def add_many(self, contractors: Iterable[GtContractor]) -> int:
        """Bulk-insert contractors with executemany, ``_BATCH`` at a time; returns the count."""
        rows: dict[str, list[dict[str, Any]]] = {
            "kh__Kontrahent": [], "adr__Ewid": [], "kh_CechaKh": [], "kh_Pracownik": []
        }  # fmt: skip
        count = 0
        for c in contractors:
            count += 1
            if c.billing_email is not None:
                self._billing[c.kh_id] = c.billing_email
            rows["kh__Kontrahent"].append(_contractor_row(c))
            rows["adr__Ewid"].append(_address_row(c))
            rows["kh_CechaKh"].extend(
                {"ck_IdKhnt": c.kh_id, "ck_IdCecha": self.add_feature(f)} for f in c.features
            )
            rows["kh_Pracownik"].extend(self._contact_row(c.kh_id, p) for p in c.contacts)
            if len(rows["kh__Kontrahent"]) >= _BATCH:
                self._flush(rows)
        self._flush(rows)
        return count

    def _flush(self, rows: dict[str, list[dict[str, Any]]]) -> None:
        for name, batch in rows.items():
            if batch:
                self.conn.execute(self.t[name].insert(), batch)
                batch.clear()
        if self._billing:
            address = self.t["adr__Ewid"]
            main = sa.select(address.c.adr_Id, address.c.adr_IdObiektu).where(
                address.c.adr_TypAdresu == ADDRESS_MAIN,
                address.c.adr_IdObiektu.in_(sorted(self._billing)),
            )
            emails = [
                {"am_IdAdres": adr_id, "am_Email": self._billing[kh_id], "am_Podstawowy": True}
                for adr_id, kh_id in self.conn.execute(main)
            ]
            self.conn.execute(self.t["adr_Email"].insert(), emails)
            self._billing.clear()

    def _contact_row(self, kh_id: int, p: GtContact) -> dict[str, Any]:
        row: dict[str, Any] = {
            "pk_IdKh": kh_id, "pk_Imie": p.first_name, "pk_Nazwisko": p.last_name,
            "pk_Stanowisko": p.position, "pk_Telefon": p.phone, "pk_Podstaw": p.primary,
            "pk_EMail": p.email, "pk_TelKomorka": p.mobile, "pk_Zablokowany": p.blocked,
            ROLE_COLUMNS["receives_mail"]: p.receives_mail,
            ROLE_COLUMNS["represents"]: p.represents,
        }  # fmt: skip
        columns = self.t["kh_Pracownik"].c
        return {k: v for k, v in row.items() if k in columns}

    def add_contact(self, kh_id: int, contact: GtContact) -> int:
        """Add a contact person to contractor ``kh_id``; returns its ``pk_Id``."""
        return self._insert("kh_Pracownik", **self._contact_row(kh_id, contact))

    def update_contact(self, pk_id: int, **columns: Any) -> None:
        """Change a contact person's GT columns, e.g. ``pk_Telefon="..."``."""
        table = self.t["kh_Pracownik"]
        self.conn.execute(table.update().where(table.c.pk_Id == pk_id).values(**columns))

    def delete_contact(self, pk_id: int) -> None:
        """Delete a contact person."""
        table = self.t["kh_Pracownik"]
        self.conn.execute(table.delete().where(table.c.pk_Id == pk_id))

    def set_feature(self, kh_id: int, name: str, present: bool) -> None:
        """Give contractor ``kh_id`` feature ``name``, or take it away."""
        table, fid = self.t["kh_CechaKh"], self.add_feature(name)
        where = (table.c.ck_IdKhnt == kh_id) & (table.c.ck_IdCecha == fid)
        self.conn.execute(table.delete().where(where))
        if present:
            self.conn.execute(table.insert().values(ck_IdKhnt=kh_id, ck_IdCecha=fid))

    def update_contractor(self, kh_id: int, **columns: Any) -> None:
        """Change ``kh__Kontrahent`` columns, e.g. ``kh_EMail``, ``kh_Cena``, ``kh_Rodzaj``."""
        table = self.t["kh__Kontrahent"]
        self.conn.execute(table.update().where(table.c.kh_Id == kh_id).values(**columns))

    def update_address(self, kh_id: int, **columns: Any) -> None:
        """Change the main address row's columns, e.g. ``adr_NazwaPelna``, ``adr_NIP``."""
        table = self.t["adr__Ewid"]
        where = (table.c.adr_IdObiektu == kh_id) & (table.c.adr_TypAdresu == ADDRESS_MAIN)
        self.conn.execute(table.update().where(where).values(**columns))

    def set_billing_email(self, kh_id: int, email: str | None) -> None:
        """Make ``email`` the only extra address (``adr_Email``) of the main address."""
        address, emails = self.t["adr__Ewid"], self.t["adr_Email"]
        main = sa.select(address.c.adr_Id).where(
            address.c.adr_IdObiektu == kh_id, address.c.adr_TypAdresu == ADDRESS_MAIN
        )
        adr_id = self.conn.execute(main).scalar_one()
        self.conn.execute(emails.delete().where(emails.c.am_IdAdres == adr_id))
        if email is not None:
            self._insert("adr_Email", am_IdAdres=adr_id, am_Email=email, am_Podstawowy=True)

    def set_email(self, kh_id: int, email: str | None) -> None:
        """Change the contractor's main e-mail."""
        self.update_contractor(kh_id, kh_EMail=email)

    def set_price(self, kh_id: int, level: int | None) -> None:
        """Change the contractor's price level number (1..10, or None)."""
        self.update_contractor(kh_id, kh_Cena=level)

    def set_discount(self, kh_id: int, discount_id: int | None) -> None:
        """Point the contractor at another discount definition (or none)."""
        self.update_contractor(kh_id, kh_IdRabat=discount_id)

    def set_owner(self, kh_id: int, owner_id: int | None) -> None:
        """Change the contractor's salesperson (or remove it)."""
        self.update_contractor(kh_id, kh_IdOpiekun=owner_id)

    def set_blocked(self, kh_id: int, blocked: bool) -> None:
        """Block or unblock the contractor in the ERP."""
        self.update_contractor(kh_id, kh_Zablokowany=blocked)

    def set_discount_percent(self, rt_id: int, percent: Decimal | int | str) -> None:
        """Change a discount definition's percentage (affects every contractor using it)."""
        table = self.t["sl_Rabat"]
        self.conn.execute(
            table.update().where(table.c.rt_id == rt_id).values(rt_Procent=Decimal(percent))
        )

    def delete_contractor(self, kh_id: int) -> None:
        """Delete a contractor with its addresses, features and contacts, as GT does."""
        t = self.t
        self.conn.execute(t["kh_CechaKh"].delete().where(t["kh_CechaKh"].c.ck_IdKhnt == kh_id))
        self.conn.execute(t["kh_Pracownik"].delete().where(t["kh_Pracownik"].c.pk_IdKh == kh_id))
        address, emails = t["adr__Ewid"], t["adr_Email"]
        mine = sa.select(address.c.adr_Id).where(address.c.adr_IdObiektu == kh_id)
        self.conn.execute(emails.delete().where(emails.c.am_IdAdres.in_(mine.scalar_subquery())))
        self.conn.execute(address.delete().where(address.c.adr_IdObiektu == kh_id))
        self.conn.execute(t["kh__Kontrahent"].delete().where(t["kh__Kontrahent"].c.kh_Id == kh_id))


def _contractor_row(c: GtContractor) -> dict[str, Any]:
    return {
        "kh_Id": c.kh_id, "kh_Symbol": c.symbol, "kh_EMail": c.email, "kh_Cena": c.price,
        "kh_IdRabat": c.discount_id, "kh_IdOpiekun": c.owner_id, "kh_IdGrupa": c.group_id,
        "kh_Zablokowany": c.blocked,
        "kh_Rodzaj": c.kind, "kh_Osoba": c.person, "kh_Imie": c.first_name,
        "kh_Nazwisko": c.last_name, "kh_DataZmiany": None,
    }  # fmt: skip


def _address_row(c: GtContractor) -> dict[str, Any]:
    return {
        "adr_IdObiektu": c.kh_id, "adr_TypAdresu": ADDRESS_MAIN,
        "adr_Nazwa": c.short_name if c.short_name is not None else c.name[:53],
        "adr_NazwaPelna": c.name, "adr_NIP": c.nip, "adr_Telefon": c.phone,
        "adr_Ulica": c.street, "adr_NrDomu": c.house, "adr_NrLokalu": c.flat,
        "adr_Kod": c.postcode, "adr_Miejscowosc": c.city, "adr_IdPanstwo": c.country_id,
        "adr_DataZmiany": None,
    }  # fmt: skip


class GtFake:
    """``connectors.fake.FakeErp`` for Subiekt GT: writes ``FakeContractor`` records as GT
    keeps them (price level numbers named in ``tw_Parametr``, discounts in ``sl_Rabat``,
    salespeople in ``pd_Uzytkownik``), each call in its own transaction."""

    def __init__(self, url: str, *, schema: str | None = None) -> None:
        from connectors._sql import make_engine

        self.url = url
        self.schema = schema
        self.engine = make_engine(url)

    def create(self) -> None:
        create_gt_schema(self.engine, schema=self.schema)

    def add(self, contractors: Iterable[FakeContractor]) -> int:
        with self.engine.begin() as conn:
            writer, refs = GtWriter(conn, schema=self.schema), _Refs.load(conn, self.schema)
            count = writer.add_many(refs.gt(writer, c) for c in contractors)
            refs.save_price_names(writer)
        return count

    def replace(self, contractor: FakeContractor) -> None:
        self.delete(contractor.key)
        self.add([contractor])

    def delete(self, key: int) -> None:
        with self.engine.begin() as conn:
            GtWriter(conn, schema=self.schema).delete_contractor(key)

    def set_features(self, key: int, features: Sequence[str]) -> None:
        with self.engine.begin() as conn:
            writer = GtWriter(conn, schema=self.schema)
            link = writer.t["kh_CechaKh"]
            conn.execute(link.delete().where(link.c.ck_IdKhnt == key))
            for name in features:
                writer.set_feature(key, name, True)

    def source_config(self, feature: str) -> dict[str, Any]:
        return {
            "kind": "subiekt_gt",
            "url": self.url,
            "feature": feature,
            "schema": self.schema,
            "contact_receives_mail": ROLE_COLUMNS["receives_mail"],
            "contact_represents": ROLE_COLUMNS["represents"],
        }

    def close(self) -> None:
        self.engine.dispose()


@dataclass(slots=True)
class _Refs:
    """Dictionary rows already in the fake, so that equal values share one row."""

    prices: list[str | None]
    discounts: dict[Decimal, int]
    people: dict[tuple[str, str, str | None], int]
    countries: dict[str, int]
    groups: dict[str, int]

    @classmethod
    def load(cls, conn: sa.Connection, schema: str | None) -> _Refs:
        t = {table.name: table for table in gt_metadata(schema=schema).sorted_tables}
        params = conn.execute(sa.select(t["tw_Parametr"]).limit(1)).first()
        prices = list(params[1:]) if params is not None else []
        while prices and prices[-1] is None:
            prices.pop()
        rabat, users, countries = t["sl_Rabat"], t["pd_Uzytkownik"], t["sl_Panstwo"]
        groups = t["sl_GrupaKh"]
        return cls(
            prices=prices,
            discounts={
                Decimal(p).quantize(Decimal("0.0001")): i
                for i, p in conn.execute(sa.select(rabat.c.rt_id, rabat.c.rt_Procent))
            },
            people={
                (f, n, e): i
                for i, f, n, e in conn.execute(
                    sa.select(users.c.uz_Id, users.c.uz_Imie, users.c.uz_Nazwisko, users.c.uz_EMail)
                )
            },
            countries={
                n: i for i, n in conn.execute(sa.select(countries.c.pa_Id, countries.c.pa_Nazwa))
            },
            groups={n: i for i, n in conn.execute(sa.select(groups.c.grk_Id, groups.c.grk_Nazwa))},
        )

    def gt(self, writer: GtWriter, c: FakeContractor) -> GtContractor:
        price = None
        if c.price_level is not None:
            if c.price_level not in self.prices:
                self.prices.append(c.price_level)
            price = self.prices.index(c.price_level) + 1
        discount_id = None
        if c.discount:
            pct = Decimal(c.discount).quantize(Decimal("0.0001"))
            if pct not in self.discounts:
                self.discounts[pct] = writer.add_discount(f"Rabat {pct} %", pct)
            discount_id = self.discounts[pct]
        owner_id = None
        if (s := c.salesperson) is not None:
            who = (s.first_name, s.last_name, s.email)
            if who not in self.people:
                self.people[who] = writer.add_salesperson(s.first_name, s.last_name, s.email)
            owner_id = self.people[who]
        country_id = None
        if c.country is not None:
            if c.country not in self.countries:
                iso = "PL" if c.country.strip().lower() == "polska" else None
                self.countries[c.country] = writer.add_country(c.country, iso or "")
            country_id = self.countries[c.country]
        group_id = None
        if c.group is not None:
            if c.group not in self.groups:
                self.groups[c.group] = writer.add_group(c.group)
            group_id = self.groups[c.group]
        return GtContractor(
            kh_id=c.key, symbol=c.symbol, name=c.name, email=c.email, nip=c.tax_id,
            phone=c.phone, street=c.street, house=c.house, flat=c.flat, postcode=c.postcode,
            city=c.city, country_id=country_id, price=price, discount_id=discount_id,
            owner_id=owner_id, group_id=group_id, blocked=c.blocked,
            kind=KIND_CUSTOMER if c.customer else KIND_SUPPLIER, features=c.features,
            contacts=[
                GtContact(p.first_name, p.last_name, email=p.email, phone=p.phone,
                          position=p.position, primary=p.primary,
                          receives_mail=p.receives_mail, represents=p.represents)
                for p in c.contacts
            ],
            billing_email=c.billing_email,
        )  # fmt: skip

    def save_price_names(self, writer: GtWriter) -> None:
        if self.prices:
            writer.set_price_names(self.prices)
