"""A database shaped like Subiekt nexo's, for the demo, the tests and the benchmark.

Its tables come from ``tables.py`` (the names ``source.tables`` gives, defaults unless the
caller passes others), so the connector is always tested against the shape it reads, and
a test can build a nexo whose feature link is NOT where the defaults say. Every reference
column is indexed: without that the correlated ``EXISTS`` on the feature link turns
quadratic and a benchmark would measure the fixture, not syncd.

How a ``FakeContractor`` is kept, the way nexo's screens would leave it: a ``Podmioty`` row
(``Kontrahent`` 0 for a supplier only: nexo has no verified customer flag), its e-mail as
the primary e-mail row in ``Kontakty``, its main address in the three address tables, each
contact person as its own ``Podmioty`` row with ``Kontakty`` rows, each salesperson as a
``Uzytkownicy`` row whose person (``Osoba_Id``) holds the e-mail.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from decimal import Decimal
from typing import Any

import sqlalchemy as sa

from connectors._rows import join_words
from connectors._sql import make_engine
from connectors.fake import FakeContractor, FakeSalesperson
from connectors.subiekt_nexo.config import NexoTables
from connectors.subiekt_nexo.tables import fake_tables

_BATCH = 5000
# Ids of the Podmioty rows that are people, not contractors, kept clear of contractor keys.
PERSON_BASE = 1_000_000_000  # + key * 100 + n: the n-th contact person of contractor key
SALESPERSON_BASE = 2_000_000_000  # + n: the person behind the n-th ERP user
_MAX_CONTACTS = 100
# Podmioty.Typ/Podtyp the fake gives a company contractor and a person.
COMPANY, PERSON = (2, 7), (1, 0)
# The fake keeps contractor groups where the docs suggest naming them (``source.tables.groups``
# defaults to null on a real nexo), so the contract suite reads them on every kind.
SUGGESTED_GROUPS = "GrupyPodmiotow"
# The names the fake uses for what nexo may keep but no public source names (the roles of
# a contact person, the billing e-mail's kind, the groups); ``source_config`` repeats them.
FAKE_TABLES = NexoTables(
    groups=SUGGESTED_GROUPS,
    contact_person_receives_mail="OdbieraKorespondencje",
    contact_person_represents="Reprezentuje",
    billing_email_kind="E-mail do faktur",
)
_USERS = uuid.UUID("3f0a6c1e-2d7b-4c55-9a43-5b0f6f1d2e10")  # namespace of the users' ids


class NexoFake:
    """``connectors.fake.FakeErp`` for Subiekt nexo; each call is its own transaction.

    ``tables`` names the unverified tables as ``source.tables`` would (e.g.
    ``NexoTables(feature_link="CechyKontrahentow")``); ``source_config`` repeats them.
    """

    def __init__(
        self, url: str, *, schema: str | None = None, tables: NexoTables | None = None
    ) -> None:
        self.url = url
        self.schema = schema
        self.names = tables or FAKE_TABLES
        self.t = fake_tables(self.names, schema)
        self.engine = make_engine(url)

    def create(self) -> None:
        """Create the tables (with schema, when one is given) and the contact kinds."""
        with self.engine.begin() as conn:
            if self.schema is not None and conn.dialect.name == "postgresql":
                conn.execute(sa.schema.CreateSchema(self.schema, if_not_exists=True))
            self.t["contractor"].metadata.create_all(conn)
            kinds = [self.names.phone_kind, "Faks", self.names.email_kind, "WWW"]
            if self.names.billing_email_kind is not None:
                kinds.append(self.names.billing_email_kind)
            conn.execute(
                self.t["contact_kind"].insert(),
                [{"id": n, "name": name} for n, name in enumerate(kinds, start=1)],
            )

    def add(self, contractors: Iterable[FakeContractor]) -> int:
        """Insert contractors with executemany, ``_BATCH`` at a time; returns the count."""
        count = 0
        with self.engine.begin() as conn:
            refs = _Refs(conn, self.t, self.names)
            batch: list[FakeContractor] = []
            for contractor in contractors:
                batch.append(contractor)
                count += 1
                if len(batch) >= _BATCH:
                    self._write(conn, refs, batch)
                    batch = []
            self._write(conn, refs, batch)
        return count

    def replace(self, contractor: FakeContractor) -> None:
        """Rewrite every row of the contractor, as an edit in nexo would."""
        with self.engine.begin() as conn:
            self._delete(conn, contractor.key)
            self._write(conn, _Refs(conn, self.t, self.names), [contractor])

    def delete(self, key: int) -> None:
        """Delete a contractor with its addresses, contacts, persons and links."""
        with self.engine.begin() as conn:
            self._delete(conn, key)

    def set_features(self, key: int, features: Sequence[str]) -> None:
        """Give the contractor exactly these features (names as typed)."""
        link = self.t["feature_link"]
        with self.engine.begin() as conn:
            refs = _Refs(conn, self.t, self.names)
            conn.execute(link.delete().where(link.c.contractor == key))
            rows = [{"contractor": key, "feature": refs.feature(conn, f)} for f in features]
            if rows:
                conn.execute(link.insert(), rows)

    def source_config(self, feature: str) -> dict[str, Any]:
        """The YAML ``source`` section that reads this database."""
        config: dict[str, Any] = {
            "kind": "subiekt_nexo", "url": self.url, "feature": feature, "schema": self.schema,
        }  # fmt: skip
        tables = self.names.model_dump(exclude_defaults=True)
        if tables:
            config["tables"] = tables
        return config

    def update(self, key: int, **columns: Any) -> None:
        """Change the contractor's ``Podmioty`` columns by logical key, e.g. ``active=False``,
        ``kind=2, subkind=11`` (the own company) or ``is_contractor=False``."""
        p = self.t["contractor"]
        with self.engine.begin() as conn:
            conn.execute(p.update().where(p.c.id == key).values(**columns))

    def add_email(self, key: int, value: str, *, primary: bool = False) -> None:
        """Add one more e-mail row to the contractor's ``Kontakty``."""
        with self.engine.begin() as conn:
            kind = _Refs(conn, self.t, self.names).email
            row = {"owner": key, "kind": kind, "value": value, "primary": primary}
            conn.execute(self.t["contact"].insert(), [_only(self.t["contact"], row)])

    def close(self) -> None:
        """Release the fake's connections."""
        self.engine.dispose()

    def _write(self, conn: sa.Connection, refs: _Refs, batch: list[FakeContractor]) -> None:
        rows: dict[str, list[dict[str, Any]]] = {role: [] for role in self.t}
        for c in batch:
            _rows_of(c, refs, conn, rows)
        for table in self.t["contractor"].metadata.sorted_tables:
            role = next(r for r, t in self.t.items() if t is table)
            found = [_only(table, row) for row in rows[role]]
            for start in range(0, len(found), _BATCH):
                conn.execute(table.insert(), found[start : start + _BATCH])

    def _delete(self, conn: sa.Connection, key: int) -> None:
        t = self.t
        people: list[int] = []
        if "person_link" in t:
            link = t["person_link"]
            people = list(
                conn.execute(sa.select(link.c.person).where(link.c.contractor == key)).scalars()
            )
        addresses = list(
            conn.execute(
                sa.select(t["address_link"].c.id).where(t["address_link"].c.contractor == key)
            ).scalars()
        )
        for role in ("feature_link", "discount", "owner", "person_link", "address_link"):
            if role in t:
                conn.execute(t[role].delete().where(t[role].c.contractor == key))
        conn.execute(t["contact"].delete().where(t["contact"].c.owner.in_([key, *people])))
        conn.execute(
            t["address_detail"].delete().where(t["address_detail"].c.address.in_(addresses))
        )
        conn.execute(t["address"].delete().where(t["address"].c.id.in_(addresses)))
        conn.execute(t["contractor"].delete().where(t["contractor"].c.id.in_([key, *people])))


def _only(table: sa.Table, row: dict[str, Any]) -> dict[str, Any]:
    """The row without the optional columns this layout does not have."""
    return {k: v for k, v in row.items() if k in table.c}


def _person(person: int, name: str | None) -> dict[str, Any]:
    """The ``Podmioty`` row of a person (a contact person, a salesperson): not a contractor."""
    return {
        "id": person, "symbol": None, "name": name, "tax_id": None, "phone": None,
        "is_contractor": False, "active": True, "kind": PERSON[0], "subkind": PERSON[1],
        "price_level": None, "blocked": False, "group": None,
    }  # fmt: skip


def _rows_of(
    c: FakeContractor, refs: _Refs, conn: sa.Connection, rows: dict[str, list[dict[str, Any]]]
) -> None:
    """Every row that keeps contractor ``c``, appended to ``rows`` by role."""
    kind, subkind = COMPANY
    rows["contractor"].append({
        "id": c.key, "symbol": c.symbol, "name": c.name, "tax_id": c.tax_id, "phone": c.phone,
        "is_contractor": c.customer, "active": True, "kind": kind, "subkind": subkind,
        "price_level": refs.level(conn, c.price_level), "blocked": c.blocked,
        "group": refs.group(conn, c.group),
    })  # fmt: skip
    rows["address"].append({"id": c.key, "country": refs.country(conn, c.country)})
    rows["address_link"].append({"id": c.key, "contractor": c.key, "main": c.key})
    rows["address_detail"].append({
        "address": c.key, "street": c.street, "house": c.house, "flat": c.flat,
        "postcode": c.postcode, "city": c.city,
    })  # fmt: skip
    if c.email is not None:
        rows["contact"].append(refs.contact(c.key, refs.email, c.email))
    if c.billing_email is not None and refs.billing is not None:
        rows["contact"].append(refs.contact(c.key, refs.billing, c.billing_email))
    rows["feature_link"].extend(
        {"contractor": c.key, "feature": refs.feature(conn, f)} for f in c.features
    )
    if c.discount and "discount" in rows:
        percent = Decimal(c.discount).quantize(Decimal("0.0001"))
        rows["discount"].append({"contractor": c.key, "percent": percent})
    if c.salesperson is not None:
        user = refs.user(conn, c.salesperson)
        rows["owner"].append({"user": user, "contractor": c.key, "primary_of": c.key})
    if "person_link" not in rows:
        return
    if len(c.contacts) >= _MAX_CONTACTS:
        raise ValueError(f"the fake keeps at most {_MAX_CONTACTS - 1} contacts per contractor")
    for n, p in enumerate(c.contacts):
        person = PERSON_BASE + c.key * _MAX_CONTACTS + n
        rows["contractor"].append(_person(person, join_words(p.first_name, p.last_name) or ""))
        for kind_id, value in ((refs.email, p.email), (refs.phone, p.phone)):
            if value is not None:
                rows["contact"].append(refs.contact(person, kind_id, value))
        rows["person_link"].append({
            "contractor": c.key, "person": person, "position": p.position, "primary": p.primary,
            "receives_mail": p.receives_mail, "represents": p.represents,
        })  # fmt: skip


class _Refs:
    """Dictionary rows already in the fake (features, price levels, countries, users), so
    equal values share one row; a new one is inserted on first use."""

    def __init__(self, conn: sa.Connection, t: dict[str, sa.Table], names: NexoTables) -> None:
        self.t = t
        ck = t["contact_kind"]
        kinds = {name: i for i, name in conn.execute(sa.select(ck.c.id, ck.c.name))}
        self.email, self.phone = kinds[names.email_kind], kinds[names.phone_kind]
        self.billing = kinds.get(names.billing_email_kind) if names.billing_email_kind else None
        self._named: dict[str, dict[str, int]] = {
            role: {name: i for i, name in conn.execute(sa.select(t[role].c.id, t[role].c.name))}
            for role in ("feature", "price_level", "country", "group")
            if role in t
        }
        self._users = set(conn.execute(sa.select(t["user"].c.id)).scalars())

    def _id(self, conn: sa.Connection, role: str, name: str | None) -> int | None:
        if name is None:
            return None
        known = self._named[role]
        if name not in known:
            result = conn.execute(self.t[role].insert().values(name=name))
            assert result.inserted_primary_key is not None
            known[name] = int(result.inserted_primary_key[0])
        return known[name]

    def feature(self, conn: sa.Connection, name: str) -> int:
        found = self._id(conn, "feature", name)
        assert found is not None
        return found

    def level(self, conn: sa.Connection, name: str | None) -> int | None:
        return self._id(conn, "price_level", name)

    def country(self, conn: sa.Connection, name: str | None) -> int | None:
        return self._id(conn, "country", name)

    def group(self, conn: sa.Connection, name: str | None) -> int | None:
        """The group's Id, or None when this layout reads no groups (``groups: null``)."""
        return self._id(conn, "group", name) if "group" in self._named else None

    def contact(self, owner: int, kind: int, value: str, *, primary: bool = True) -> dict[str, Any]:
        return {"owner": owner, "kind": kind, "value": value, "primary": primary}

    def user(self, conn: sa.Connection, s: FakeSalesperson) -> str:
        """The ``Uzytkownicy.Id`` of salesperson ``s``, with its person and e-mail."""
        user = str(uuid.uuid5(_USERS, f"{s.first_name}|{s.last_name}|{s.email}"))
        if user not in self._users:
            person = SALESPERSON_BASE + len(self._users) + 1
            name = join_words(s.first_name, s.last_name)
            p = self.t["contractor"]
            conn.execute(p.insert(), [_only(p, _person(person, name))])
            if s.email is not None:
                row = self.contact(person, self.email, s.email)
                conn.execute(self.t["contact"].insert(), [_only(self.t["contact"], row)])
            conn.execute(self.t["user"].insert().values(id=user, name=name, person=person))
            self._users.add(user)
        return user
