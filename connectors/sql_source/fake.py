"""A plain in-house ERP database, read by ``source.kind: sql``, for the tests, demo and benchmark.

The schema is what a small firm's own system tends to have: ``customers`` with the address
inline, dictionaries ``price_levels``, ``salespeople`` and ``customer_groups``, and child
tables ``customer_features`` and ``contacts``, every foreign key indexed. ``source_config`` gives
the YAML section an admin would write for it; its queries run unchanged on SQLite,
PostgreSQL and MariaDB, and show the two idioms: scope by ``source.feature`` over a
``features`` column (``explain`` can then say why a contractor is out of scope), or scope
in the WHERE clause with bound ``:feature`` and ``:customer`` parameters.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import sqlalchemy as sa

from connectors.fake import FakeContractor, FakeSalesperson

_BATCH = 5000
_S, _I, _B = sa.String, sa.Integer, sa.Boolean

metadata = sa.MetaData()
price_levels = sa.Table(
    "price_levels", metadata,
    sa.Column("id", _I, primary_key=True, autoincrement=False),
    sa.Column("name", _S(60), nullable=False),
)  # fmt: skip
salespeople = sa.Table(
    "salespeople", metadata,
    sa.Column("id", _I, primary_key=True, autoincrement=False),
    sa.Column("first_name", _S(60)), sa.Column("last_name", _S(60)), sa.Column("email", _S(120)),
)  # fmt: skip
customer_groups = sa.Table(
    "customer_groups", metadata,
    sa.Column("id", _I, primary_key=True, autoincrement=False),
    sa.Column("name", _S(60), nullable=False),
)  # fmt: skip
customers = sa.Table(
    "customers", metadata,
    sa.Column("id", _I, primary_key=True, autoincrement=False),
    sa.Column("code", _S(40), nullable=False), sa.Column("name", _S(250), nullable=False),
    sa.Column("email", _S(250)), sa.Column("nip", _S(30)), sa.Column("phone", _S(60)),
    sa.Column("street", _S(120)), sa.Column("house_no", _S(20)), sa.Column("flat_no", _S(20)),
    sa.Column("postcode", _S(12)), sa.Column("city", _S(80)), sa.Column("country", _S(80)),
    sa.Column("price_level_id", _I, sa.ForeignKey("price_levels.id"), index=True),
    sa.Column("discount_pct", sa.Numeric(5, 2)),
    sa.Column("salesperson_id", _I, sa.ForeignKey("salespeople.id"), index=True),
    sa.Column("blocked", _B, nullable=False), sa.Column("is_customer", _B, nullable=False),
    sa.Column("group_id", _I, sa.ForeignKey("customer_groups.id"), index=True),
    sa.Column("invoice_email", _S(250)),
)  # fmt: skip
customer_features = sa.Table(
    "customer_features", metadata,
    sa.Column("id", _I, primary_key=True),
    sa.Column("customer_id", _I, sa.ForeignKey("customers.id"), nullable=False, index=True),
    sa.Column("name", _S(60), nullable=False),
)  # fmt: skip
contacts = sa.Table(
    "contacts", metadata,
    sa.Column("id", _I, primary_key=True),
    sa.Column("customer_id", _I, sa.ForeignKey("customers.id"), nullable=False, index=True),
    sa.Column("first_name", _S(60)), sa.Column("last_name", _S(60)),
    sa.Column("email", _S(250)), sa.Column("phone", _S(60)), sa.Column("job_title", _S(80)),
    sa.Column("is_main", _B, nullable=False),
    sa.Column("gets_mail", _B, nullable=False, default=False),
    sa.Column("may_sign", _B, nullable=False, default=False),
)  # fmt: skip

# The admin's SQL: constant text, every value bound as a :parameter.
_FIELDS = """\
SELECT
    c.id            AS "key",
    c.code          AS symbol,
    c.name          AS name,
    c.email         AS email,
    c.nip           AS tax_id,
    c.phone         AS phone,
    c.street        AS street,
    c.house_no      AS house,
    c.flat_no       AS flat,
    c.postcode      AS postcode,
    c.city          AS city,
    c.country       AS country,
    p.name          AS price_level,
    c.discount_pct  AS discount,
    s.first_name    AS owner_first_name,
    s.last_name     AS owner_last_name,
    s.email         AS owner_email,
    g.name          AS "group",
    c.blocked       AS blocked,
    c.invoice_email AS billing_email"""
_FROM = """
FROM customers c
LEFT JOIN price_levels p ON p.id = c.price_level_id
LEFT JOIN salespeople s ON s.id = c.salesperson_id
LEFT JOIN customer_groups g ON g.id = c.group_id"""
# Scope by source.feature: one row per feature, united by syncd.
QUERY_BY_FEATURE = (
    _FIELDS
    + """,
    c.is_customer   AS is_customer,
    f.name          AS features"""
    + _FROM
    + """
LEFT JOIN customer_features f ON f.customer_id = c.id
"""
)
# Scope in the WHERE clause: no features column, source.feature left out.
QUERY_BY_WHERE = (
    _FIELDS  # noqa: S608 - constant text joined; every value is a bound :param
    + _FROM
    + """
WHERE c.is_customer = :customer
  AND EXISTS (
      SELECT 1 FROM customer_features f
      WHERE f.customer_id = c.id
        AND lower(trim(f.name)) = lower(trim(:feature))
  )
"""
)
CONTACTS_QUERY = """\
SELECT
    p.customer_id   AS contractor_key,
    p.id            AS id,
    p.first_name    AS first_name,
    p.last_name     AS last_name,
    p.email         AS email,
    p.phone         AS phone,
    p.job_title     AS position,
    p.is_main       AS is_primary,
    p.gets_mail     AS receives_mail,
    p.may_sign      AS represents
FROM contacts p
"""


class PlainSqlFake:
    """``connectors.fake.FakeErp`` for ``source.kind: sql``, each call in its own transaction."""

    def __init__(self, url: str) -> None:
        from connectors._sql import make_engine

        self.url = url
        self.engine = make_engine(url)

    def create(self) -> None:
        metadata.create_all(self.engine)

    def add(self, contractors: Iterable[FakeContractor]) -> int:
        with self.engine.begin() as conn:
            return _Writer(conn).add(contractors)

    def replace(self, contractor: FakeContractor) -> None:
        with self.engine.begin() as conn:
            _delete(conn, contractor.key)
            _Writer(conn).add([contractor])

    def delete(self, key: int) -> None:
        with self.engine.begin() as conn:
            _delete(conn, key)

    def set_features(self, key: int, features: Sequence[str]) -> None:
        with self.engine.begin() as conn:
            conn.execute(customer_features.delete().where(customer_features.c.customer_id == key))
            if features:
                rows = [{"customer_id": key, "name": name} for name in features]
                conn.execute(customer_features.insert(), rows)

    def source_config(self, feature: str, *, scope_in_where: bool = False) -> dict[str, Any]:
        """The ``source`` section; ``scope_in_where`` shows the bound-parameter idiom."""
        if scope_in_where:
            return {
                "kind": "sql", "url": self.url, "query": QUERY_BY_WHERE,
                "contacts_query": CONTACTS_QUERY,
                "params": {"feature": feature, "customer": True},
            }  # fmt: skip
        return {
            "kind": "sql", "url": self.url, "query": QUERY_BY_FEATURE,
            "contacts_query": CONTACTS_QUERY, "feature": feature,
        }  # fmt: skip

    def close(self) -> None:
        self.engine.dispose()


def _delete(conn: sa.Connection, key: int) -> None:
    """Delete a customer and its child rows, children first (the foreign keys hold)."""
    for child in (customer_features, contacts):
        conn.execute(child.delete().where(child.c.customer_id == key))
    conn.execute(customers.delete().where(customers.c.id == key))


class _Writer:
    """Bulk inserts in batches of ``_BATCH`` customers; dictionary rows are added on first
    use and shared by every customer that names the same level or salesperson."""

    def __init__(self, conn: sa.Connection) -> None:
        self.conn = conn
        self.levels: dict[str, int] = {
            n: i for i, n in conn.execute(sa.select(price_levels.c.id, price_levels.c.name))
        }
        self.groups: dict[str, int] = {
            n: i for i, n in conn.execute(sa.select(customer_groups.c.id, customer_groups.c.name))
        }
        people = conn.execute(sa.select(salespeople))
        self.people: dict[tuple[str, str, str | None], int] = {
            (r.first_name, r.last_name, r.email): r.id for r in people
        }

    def add(self, contractors: Iterable[FakeContractor]) -> int:
        count = 0
        batch: dict[sa.Table, list[dict[str, Any]]] = {
            customers: [],
            customer_features: [],
            contacts: [],
        }
        for c in contractors:
            batch[customers].append(self._customer(c))
            batch[customer_features] += [{"customer_id": c.key, "name": n} for n in c.features]
            batch[contacts] += [
                {"customer_id": c.key, "first_name": p.first_name, "last_name": p.last_name,
                 "email": p.email, "phone": p.phone, "job_title": p.position,
                 "is_main": p.primary, "gets_mail": p.receives_mail,
                 "may_sign": p.represents}
                for p in c.contacts
            ]  # fmt: skip
            count += 1
            if len(batch[customers]) >= _BATCH:
                self._flush(batch)
        self._flush(batch)
        return count

    def _flush(self, batch: dict[sa.Table, list[dict[str, Any]]]) -> None:
        for table, rows in batch.items():  # customers first: the children refer to them
            if rows:
                self.conn.execute(table.insert(), rows)
                rows.clear()

    def _customer(self, c: FakeContractor) -> dict[str, Any]:
        return {
            "id": c.key, "code": c.symbol, "name": c.name, "email": c.email, "nip": c.tax_id,
            "phone": c.phone, "street": c.street, "house_no": c.house, "flat_no": c.flat,
            "postcode": c.postcode, "city": c.city, "country": c.country,
            "price_level_id": self._level(c.price_level),
            "discount_pct": c.discount or None,  # no discount is NULL, as in most ERPs
            "salesperson_id": self._salesperson(c.salesperson),
            "blocked": c.blocked, "is_customer": c.customer, "group_id": self._group(c.group),
            "invoice_email": c.billing_email,
        }  # fmt: skip

    def _level(self, name: str | None) -> int | None:
        if name is None:
            return None
        if name not in self.levels:
            self.levels[name] = max(self.levels.values(), default=0) + 1
            self.conn.execute(price_levels.insert(), {"id": self.levels[name], "name": name})
        return self.levels[name]

    def _group(self, name: str | None) -> int | None:
        if name is None:
            return None
        if name not in self.groups:
            self.groups[name] = max(self.groups.values(), default=0) + 1
            self.conn.execute(customer_groups.insert(), {"id": self.groups[name], "name": name})
        return self.groups[name]

    def _salesperson(self, s: FakeSalesperson | None) -> int | None:
        if s is None:
            return None
        who = (s.first_name, s.last_name, s.email)
        if who not in self.people:
            self.people[who] = max(self.people.values(), default=0) + 1
            row = {"id": self.people[who], "first_name": s.first_name,
                   "last_name": s.last_name, "email": s.email}  # fmt: skip
            self.conn.execute(salespeople.insert(), row)
        return self.people[who]
