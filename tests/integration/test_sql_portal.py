"""The Portal contract suite, run against the SQL portal on SQLite, PostgreSQL and MariaDB.

The contract tests speak only through ``connectors.base.Portal`` (plus, for the SQL
portal, a look at the raw rows), so a REST or SCIM connector can run the same checks.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config as AlembicConfig
from alembic.runtime.migration import MigrationContext
from structlog.testing import capture_logs

from connectors.base import (
    CreateAccount,
    DeleteAccount,
    OpOutcome,
    PortalOp,
    SetPassword,
    UpdateAccount,
)
from connectors.sql_portal._migrate import MIGRATIONS_DIR
from connectors.sql_portal.config import SqlPortalConfig
from connectors.sql_portal.portal import SqlPortal
from connectors.sql_portal.schema import account, contact, metadata
from syncd.errors import AccountGone, LoginTaken, PortalUnavailable, RecordError
from syncd.model import SYNCED_FIELDS, Contact, DesiredAccount
from syncd.passwords import verify_password

T0 = datetime(2025, 3, 1, 12, 0, 0, 123456, tzinfo=UTC)
HASH = "$2b$12$SECRETSECRETSECRETSECRETuQ2yWm0V3iQpZsN6d1n6b1QGmJm9e"
PLAIN = "Plant3d-Secret-Kx7"
CONTACT_ROLE_COLUMNS = ("receives_mail", "represents")  # added by migration 0002


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


HEAD = "0003"  # the newest portal migration


@pytest.fixture
def clock() -> Clock:
    """The portal's clock, starting at T0."""
    return Clock()


@pytest.fixture
def portal(db_url: str, clock: Clock) -> Iterator[SqlPortal]:
    """A ready SQL portal on a fresh database; no connection may be left checked out."""
    portal = SqlPortal(db_url, clock=clock)
    portal.ensure_ready()
    yield portal
    assert portal._engine.pool.checkedout() == 0  # type: ignore[attr-defined]
    portal.close()


@pytest.fixture
def db(db_url: str) -> Iterator[sa.Engine]:
    """A separate engine to look at the raw rows the portal wrote."""
    engine = sa.create_engine(db_url)
    yield engine
    assert engine.pool.checkedout() == 0  # type: ignore[attr-defined]
    engine.dispose()


def desired(key: str, **changes: Any) -> DesiredAccount:
    """A complete desired account for contractor ``key``."""
    values: dict[str, Any] = {
        "key": key,
        "login": f"{key.lower()}@example.com",
        "symbol": f"S-{key}",
        "name": f"Firma {key} Sp. z o.o. – Łódź",
        "email": f"{key.lower()}@example.com",
        "tax_id": "5260250274",
        "phone": "+48 22 123 45 67",
        "address": "ul. Żółta 1, 00-001 Warszawa",
        "price_level": "Hurtowa",
        "discount": Decimal("12.5"),
        "owner_name": "Jan Kowalski",
        "owner_email": "jan@example.com",
        "contacts": (
            Contact("Anna Nowak", "anna@example.com", "600100200", "Zakupy", is_primary=True),
            Contact("Piotr Wiśniewski", None, None, "Księgowość"),
        ),
    }
    values.update(changes)
    return DesiredAccount(**values)


def create(account: DesiredAccount, status: str = "pending") -> CreateAccount:
    return CreateAccount(account.key, account.fields(), status)


def ok_ids(outcomes: list[OpOutcome]) -> list[str]:
    assert [o.error for o in outcomes] == [None] * len(outcomes)
    return [str(o.account_id) for o in outcomes]


def raw(db: sa.Engine, login: str) -> sa.RowMapping:
    with db.connect() as conn:
        return conn.execute(sa.select(account).where(account.c.login == login)).mappings().one()


def raw_contacts(db: sa.Engine, account_id: str) -> list[str]:
    query = sa.select(contact.c.name).where(contact.c.account_id == int(account_id))
    with db.connect() as conn:
        return list(conn.execute(query.order_by(contact.c.id)).scalars())


def naive(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(tzinfo=None)


@contextmanager
def statements() -> Iterator[list[str]]:
    """Collect every statement sent to any database while the block runs."""
    seen: list[str] = []

    def record(*args: Any) -> None:
        seen.append(args[2])

    sa.event.listen(sa.Engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        sa.event.remove(sa.Engine, "before_cursor_execute", record)


def test_ensure_ready_twice_creates_the_tables_once(portal: SqlPortal, db: sa.Engine) -> None:
    """A second ensure_ready finds the tables at head and changes nothing."""
    portal.ensure_ready()
    inspector = sa.inspect(db)
    assert {"b2b_account", "b2b_contact", "syncd_portal_version"} <= set(
        inspector.get_table_names()
    )
    with db.connect() as conn:
        versions = conn.execute(sa.text("SELECT version_num FROM syncd_portal_version")).all()
    assert versions == [(HEAD,)]


def test_migration_matches_the_schema_the_code_queries(portal: SqlPortal, db: sa.Engine) -> None:
    """The tables the migration creates are exactly the ones the connector's queries assume."""

    def ours(_obj: object, name: str | None, type_: str, *_rest: object) -> bool:
        return not (type_ == "table" and name == "syncd_portal_version")

    with db.connect() as conn:
        context = MigrationContext.configure(
            conn, opts={"compare_type": True, "include_object": ours}
        )
        assert compare_metadata(context, metadata) == []


def test_create_returns_ids_and_round_trips_every_field(portal: SqlPortal, db: sa.Engine) -> None:
    """Created accounts get distinct ids and read back with the desired fields and contacts."""
    first, second = desired("K1"), desired("K2", contacts=(), discount=Decimal(0), phone=None)
    ids = ok_ids(portal.apply([create(first), create(second, status="active")]))

    assert len(set(ids)) == 2
    found = portal.find_by_logins([first.login, second.login])
    assert found[first.login].id == ids[0]
    assert found[first.login].fields == first.fields()
    assert found[first.login].contractor_key == "K1"
    assert found[first.login].status == "pending"
    assert found[second.login].fields == second.fields()
    assert found[second.login].status == "active"
    row = raw(db, first.login)
    assert row["password_hash"] is None
    assert row["created_at"] == row["updated_at"] == naive(T0)


def test_update_changes_only_the_given_fields(
    portal: SqlPortal, db: sa.Engine, clock: Clock
) -> None:
    """An update writes only its fields; untouched and no-op updates keep their updated_at."""
    a, b, c = desired("KA"), desired("KB"), desired("KC")
    id_a, id_b, id_c = ok_ids(portal.apply([create(a), create(b), create(c)]))
    before_a = raw(db, a.login)
    clock.now = T0 + timedelta(hours=1)

    outcomes = portal.apply(
        [
            UpdateAccount("KA", id_a, {"phone": "+48 600 000 000", "discount": "3.00"}),
            UpdateAccount("KB", id_b, {}),
            UpdateAccount("KC", id_c, {"phone": c.phone, "discount": "12.50"}),  # same values
        ]
    )

    assert ok_ids(outcomes) == [id_a, id_b, id_c]
    after_a = raw(db, a.login)
    changed = {k for k in before_a if before_a[k] != after_a[k]}
    assert changed == {"phone", "discount", "updated_at"}
    assert after_a["updated_at"] == naive(clock.now)
    assert after_a["created_at"] == naive(T0)
    assert raw(db, b.login)["updated_at"] == naive(T0)
    assert raw(db, c.login)["updated_at"] == naive(T0)
    assert portal.find_by_logins([a.login])[a.login].fields["discount"] == "3.00"


def test_update_sets_status_block_reason_and_login(portal: SqlPortal) -> None:
    """Status, block reason and the login itself are updatable fields."""
    (account_id,) = ok_ids(portal.apply([create(desired("K1"))]))
    changes = {"status": "blocked", "block_reason": "Zaległe płatności", "login": "new@x.pl"}

    ok_ids(portal.apply([UpdateAccount("K1", account_id, changes)]))

    found = portal.find_by_logins(["new@x.pl", "k1@example.com"])
    assert list(found) == ["new@x.pl"]
    assert found["new@x.pl"].status == "blocked"
    assert found["new@x.pl"].block_reason == "Zaległe płatności"
    assert found["new@x.pl"].id == account_id


def test_contacts_are_replaced_in_order(portal: SqlPortal, db: sa.Engine) -> None:
    """New contacts replace the old ones, in the given order; other accounts keep theirs."""
    a, b = desired("KA"), desired("KB")
    id_a, id_b = ok_ids(portal.apply([create(a), create(b)]))
    new = [Contact("Zofia Kamińska", is_primary=True).as_dict(), Contact("Adam Mały").as_dict()]

    ok_ids(portal.apply([UpdateAccount("KA", id_a, {"contacts": new})]))

    assert portal.find_by_logins([a.login])[a.login].fields["contacts"] == new
    assert raw_contacts(db, id_a) == ["Zofia Kamińska", "Adam Mały"]
    assert raw_contacts(db, id_b) == ["Anna Nowak", "Piotr Wiśniewski"]
    ok_ids(portal.apply([UpdateAccount("KA", id_a, {"contacts": []})]))
    assert raw_contacts(db, id_a) == []


def test_delete_removes_account_and_contacts_and_recreate_gets_a_new_id(
    portal: SqlPortal, db: sa.Engine
) -> None:
    """A deleted account is gone with its contacts; deleting again is a no-op; a re-create
    gets a new id."""
    a = desired("KA")
    (old_id,) = ok_ids(portal.apply([create(a)]))

    assert ok_ids(portal.apply([DeleteAccount("KA", old_id)])) == [old_id]
    assert portal.find_by_logins([a.login]) == {}
    assert raw_contacts(db, old_id) == []
    assert ok_ids(portal.apply([DeleteAccount("KA", old_id), DeleteAccount("KX", "nope")]))
    (new_id,) = ok_ids(portal.apply([create(a)]))
    assert new_id != old_id


def test_updating_a_missing_account_is_a_record_error(portal: SqlPortal) -> None:
    """An update of an account the portal no longer has says how to get it back."""
    (account_id,) = ok_ids(portal.apply([create(desired("K1"))]))
    ok_ids(portal.apply([DeleteAccount("K1", account_id)]))

    (outcome,) = portal.apply([UpdateAccount("K1", account_id, {"phone": "1"})])

    assert isinstance(outcome.error, RecordError)
    assert f"account {account_id} no longer exists" in str(outcome.error)
    assert "syncd sync --full" in str(outcome.error)


def test_a_duplicate_login_fails_only_its_own_op(portal: SqlPortal) -> None:
    """In a batch of 5 creates, the one whose login is taken gets LoginTaken with the owner's
    key, and the other 4 are applied."""
    ok_ids(portal.apply([create(desired("OWNER", login="taken@example.com"))]))
    batch = [create(desired(f"K{n}")) for n in range(5)]
    batch[2] = create(desired("K2", login="taken@example.com"))

    outcomes = portal.apply(batch)

    error = outcomes[2].error
    assert isinstance(error, LoginTaken)
    assert (error.key, error.login, error.owner_key) == ("K2", "taken@example.com", "OWNER")
    assert [o.ok for o in outcomes] == [True, True, False, True, True]
    found = portal.find_by_logins([f"k{n}@example.com" for n in range(5)])
    assert sorted(found) == ["k0@example.com", "k1@example.com", "k3@example.com", "k4@example.com"]
    assert found["k3@example.com"].fields["contacts"] == desired("K3").fields()["contacts"]


def test_two_creates_with_one_login_in_a_batch(portal: SqlPortal) -> None:
    """Of two creates sharing a login in one batch, the first wins and the second is told who
    owns it."""
    outcomes = portal.apply(
        [create(desired("K1", login="same@x.pl")), create(desired("K2", login="same@x.pl"))]
    )

    assert outcomes[0].ok
    assert isinstance(outcomes[1].error, LoginTaken)
    assert outcomes[1].error.owner_key == "K1"


def test_a_too_long_value_is_reported_and_the_rest_applied(portal: SqlPortal) -> None:
    """A value longer than its column is a RecordError naming the field and the limit, on every
    backend (SQLite included), and the other ops of the batch are applied."""
    outcomes = portal.apply([create(desired("K1", name="x" * 300)), create(desired("K2"))])

    assert isinstance(outcomes[0].error, RecordError)
    message = str(outcomes[0].error)
    assert "name is 300 characters long" in message
    assert "at most 255" in message
    assert outcomes[1].ok
    assert list(portal.find_by_logins(["k1@example.com", "k2@example.com"])) == ["k2@example.com"]


def test_password_hash_is_written_but_never_read_back(portal: SqlPortal, db: sa.Engine) -> None:
    """password_hash can be set by an update, is never listed, and never reaches an error
    message or a log line."""
    (account_id,) = ok_ids(portal.apply([create(desired("K1"))]))
    ok_ids(portal.apply([UpdateAccount("K1", account_id, {"password_hash": HASH})]))
    assert raw(db, "k1@example.com")["password_hash"] == HASH
    assert "password_hash" not in portal.find_by_logins(["k1@example.com"])["k1@example.com"].fields
    assert all("password_hash" not in a.fields for a in portal.accounts())

    with capture_logs() as logs:
        outcomes = portal.apply(
            [
                UpdateAccount("K1", account_id, {"password_hash": HASH + "x" * 300}),
                CreateAccount(
                    "K2",
                    {**desired("K2", login="k1@example.com").fields(), "password_hash": HASH},
                    "pending",
                ),
                create(desired("K3")),
            ]
        )

    assert [type(o.error) for o in outcomes] == [RecordError, LoginTaken, type(None)]
    assert all(HASH not in str(o.error) and "SECRET" not in str(o.error) for o in outcomes)
    assert "SECRET" not in repr(logs)


@pytest.mark.parametrize(
    ("scheme", "cost", "prefix"),
    [
        ("bcrypt", 4, "$2b$04$"),
        ("bcrypt_2y", 5, "$2y$05$"),
        ("argon2id", 1, "$argon2id$v=19$m=65536,t=1,p=4$"),
    ],
)
def test_set_password_hashes_with_the_configured_scheme(
    db_url: str, db: sa.Engine, scheme: str, cost: int, prefix: str
) -> None:
    """SetPassword stores a hash of the configured scheme and cost that verifies; the
    plaintext reaches no row, log line, outcome or (SQLite) the database file."""
    config = {"url": db_url, "password_scheme": scheme, "password_cost": cost}
    portal = SqlPortal.from_config(SqlPortalConfig.model_validate(config))
    portal.ensure_ready()
    assert portal.stored_fields == frozenset(SYNCED_FIELDS)
    (account_id,) = ok_ids(portal.apply([create(desired("K1"))]))
    with capture_logs() as logs:
        outcomes = portal.apply([SetPassword("K1", account_id, PLAIN)])
    ok_ids(outcomes)
    portal.close()
    hashed = raw(db, "k1@example.com")["password_hash"]
    assert hashed.startswith(prefix)
    assert verify_password(PLAIN, hashed)
    assert not verify_password(PLAIN + "x", hashed)
    assert PLAIN not in repr(logs) + repr(outcomes)
    if db_url.startswith("sqlite"):
        assert PLAIN.encode() not in Path(db_url.removeprefix("sqlite:///")).read_bytes()


@pytest.mark.usefixtures("quick_bcrypt")
def test_set_password_errors_never_quote_the_password(portal: SqlPortal) -> None:
    """A password bcrypt cannot take and a password for a missing account are record errors
    of their own ops, the others are applied, and no error or log line holds a password."""
    (account_id,) = ok_ids(portal.apply([create(desired("K1"))]))
    too_long = "Żółć-" * 20
    with capture_logs() as logs:
        outcomes = portal.apply(
            [
                SetPassword("K1", account_id, too_long),
                SetPassword("K2", "999999", PLAIN),
                SetPassword("K1", account_id, PLAIN + "2"),
            ]
        )
    assert [type(o.error) for o in outcomes] == [RecordError, AccountGone, type(None)]
    assert "72 bytes" in str(outcomes[0].error)
    assert "no longer exists" in str(outcomes[1].error)
    text = repr(logs) + repr(outcomes) + "".join(str(o.error) for o in outcomes)
    assert PLAIN not in text
    assert "Żółć" not in text
    assert repr(SetPassword("K1", account_id, PLAIN)).count(PLAIN) == 0


def test_statements_per_batch_do_not_grow_with_the_batch(portal: SqlPortal) -> None:
    """10 and 200 creates (with contacts), then 10 and 200 updates, take as many statements."""
    counts = []
    for size, prefix in ((10, "S"), (200, "L")):
        ops: list[PortalOp] = [create(desired(f"{prefix}{n}")) for n in range(size)]
        with statements() as seen:
            ids = ok_ids(portal.apply(ops))
        counts.append(len(seen))
        updates: list[PortalOp] = [
            UpdateAccount(f"{prefix}{n}", i, {"phone": str(n), "contacts": []})
            for n, i in enumerate(ids)
        ]
        with statements() as seen:
            ok_ids(portal.apply(updates))
        counts.append(len(seen))

    assert counts[0] == counts[2] == 3  # accounts insert, their ids read, contacts insert
    assert counts[1] == counts[3] <= 5  # read rows, read contacts, update, delete contacts


def test_find_by_logins_queries_in_chunks_of_1000(portal: SqlPortal) -> None:
    """2,500 logins take three chunks of two queries and find the accounts in every chunk."""
    ids = ok_ids(portal.apply([create(desired(k)) for k in ("K1", "K2", "K3")]))
    logins = [f"nobody{n}@example.com" for n in range(2500)]
    logins[0], logins[1500], logins[2499] = "k1@example.com", "k2@example.com", "k3@example.com"

    with statements() as seen:
        found = portal.find_by_logins(logins)

    assert {login: a.id for login, a in found.items()} == {
        "k1@example.com": ids[0],
        "k2@example.com": ids[1],
        "k3@example.com": ids[2],
    }
    assert len(seen) == 6
    assert portal.find_by_logins([]) == {}


def test_find_by_logins_follows_the_backend_collation(portal: SqlPortal, db: sa.Engine) -> None:
    """A portal-made login differing in case is found only where the collation ignores case
    (MariaDB), and then under the spelling asked for."""
    with db.begin() as conn:
        conn.execute(
            sa.insert(account).values(
                login="Jan@X.pl", status="active", created_at=naive(T0), updated_at=naive(T0)
            )
        )

    found = portal.find_by_logins(["jan@x.pl"])

    if db.dialect.name == "mysql":
        assert list(found) == ["jan@x.pl"]
        assert found["jan@x.pl"].login == "Jan@X.pl"
        assert found["jan@x.pl"].contractor_key is None
    else:
        assert found == {}


def test_accounts_lists_every_account_with_its_contacts(portal: SqlPortal) -> None:
    """The listing streams all accounts in id order with their own contacts and fields."""
    wanted = [desired("K1"), desired("K2", contacts=()), desired("K3"), desired("K4")]
    ids = ok_ids(portal.apply([create(d) for d in wanted]))
    ok_ids(portal.apply([DeleteAccount("K3", ids[2])]))

    listed = list(portal.accounts())

    assert [a.id for a in listed] == [ids[0], ids[1], ids[3]]
    assert [a.fields for a in listed] == [
        wanted[0].fields(),
        wanted[1].fields(),
        wanted[3].fields(),
    ]
    assert [a.contractor_key for a in listed] == ["K1", "K2", "K4"]


def test_losing_the_portal_midway_keeps_what_was_applied(db_url: str, clock: Clock) -> None:
    """When the portal fails in the second batch, the first batch keeps its ids and every
    later op gets PortalUnavailable; a failure before anything was applied raises."""
    portal = SqlPortal(db_url, clock=clock, batch_size=2)
    portal.ensure_ready()
    inserts: list[str] = []

    def fail_second_insert(conn: sa.Connection, *args: Any) -> None:
        if args[1].startswith("INSERT INTO b2b_account"):
            inserts.append(args[1])
            if len(inserts) >= 2:
                message = "server closed the connection unexpectedly"
                raise conn.dialect.loaded_dbapi.OperationalError(message)

    sa.event.listen(sa.Engine, "before_cursor_execute", fail_second_insert)
    try:
        outcomes = portal.apply([create(desired(f"K{n}")) for n in range(5)])
        with pytest.raises(PortalUnavailable):
            portal.apply([create(desired("K9"))])
    finally:
        sa.event.remove(sa.Engine, "before_cursor_execute", fail_second_insert)
    try:
        assert [o.ok for o in outcomes] == [True, True, False, False, False]
        assert all(isinstance(o.error, PortalUnavailable) for o in outcomes[2:])
        assert sorted(portal.find_by_logins([f"k{n}@example.com" for n in range(5)])) == [
            "k0@example.com",
            "k1@example.com",
        ]
        assert portal._engine.pool.checkedout() == 0  # type: ignore[attr-defined]
    finally:
        portal.close()


def test_an_older_install_is_stamped_and_check_failures_are_record_errors(
    db_url: str, db: sa.Engine, clock: Clock
) -> None:
    """Tables made before syncd versioned them are stamped, not re-created; a row the database
    refuses (a CHECK the portal added) is that op's RecordError, without the password hash."""
    older = sa.MetaData()
    table = account.to_metadata(older)
    kept = [c for c in contact.c if c.name not in {"id", "account_id", *CONTACT_ROLE_COLUMNS}]
    sa.Table(  # b2b_contact before migration 0002
        "b2b_contact",
        older,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("account_id", sa.Integer, sa.ForeignKey("b2b_account.id"), nullable=False),
        *(sa.Column(c.name, c.type, nullable=c.nullable) for c in kept),
    )
    table.append_constraint(sa.CheckConstraint("phone <> '000'", name="ck_b2b_account_phone"))
    older.create_all(db)
    portal = SqlPortal(db_url, clock=clock)
    try:
        portal.ensure_ready()
        refused = {**desired("K1", phone="000").fields(), "password_hash": HASH}
        outcomes = portal.apply([CreateAccount("K1", refused, "pending"), create(desired("K2"))])
        assert portal._engine.pool.checkedout() == 0  # type: ignore[attr-defined]
    finally:
        portal.close()

    with db.connect() as conn:
        versions = conn.execute(sa.text("SELECT version_num FROM syncd_portal_version")).all()
    assert versions == [(HEAD,)]
    error = outcomes[0].error
    assert type(error) is RecordError
    assert "ck_b2b_account_phone" in str(error)
    assert "SECRET" not in str(error)
    assert outcomes[1].ok


def test_an_install_at_the_first_revision_gains_the_customer_group_keeping_its_rows(
    db_url: str, db: sa.Engine, clock: Clock
) -> None:
    """A portal migrated before customer_group existed is upgraded in place: its accounts
    stay, with an empty group, and a group can then be written."""
    from alembic import command
    from alembic.config import Config

    from connectors.sql_portal._migrate import MIGRATIONS_DIR

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    with db.begin() as conn:
        config.attributes["connection"] = conn
        command.upgrade(config, "0001")
    with db.begin() as conn:
        columns = {c["name"] for c in sa.inspect(conn).get_columns("b2b_account")}
        assert "customer_group" not in columns
        now = datetime(2026, 1, 1)
        conn.execute(
            sa.text(
                "INSERT INTO b2b_account (login, contractor_key, status, discount, created_at, "
                "updated_at) VALUES ('stary@example.com', 'K9', 'active', 0, :now, :now)"
            ),
            {"now": now},
        )
    portal = SqlPortal(db_url, clock=clock)
    try:
        portal.ensure_ready()
        old = portal.find_by_logins(["stary@example.com"])["stary@example.com"]
        assert old.fields["customer_group"] is None
        update = UpdateAccount("K9", old.id, {"customer_group": "Hurtownie"})
        assert portal.apply([update])[0].ok
        again = portal.find_by_logins(["stary@example.com"])["stary@example.com"]
        assert again.fields["customer_group"] == "Hurtownie"
    finally:
        portal.close()
    with db.connect() as conn:
        versions = conn.execute(sa.text("SELECT version_num FROM syncd_portal_version")).all()
    assert versions == [(HEAD,)]


def test_a_0001_portal_gains_the_contact_role_columns_and_keeps_its_contacts(
    db_url: str, db: sa.Engine, clock: Clock
) -> None:
    """Migration 0002 adds the contact roles to a portal made by 0001: its contact rows stay,
    read back with both roles false, and the roles are then written like any field."""
    config = AlembicConfig()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    with db.connect() as conn, conn.begin():
        config.attributes["connection"] = conn
        command.upgrade(config, "0001")
        tables = sa.MetaData()
        tables.reflect(conn, only=["b2b_account", "b2b_contact"])
        now = T0.replace(tzinfo=None)
        row = {"login": "old@example.com", "contractor_key": "K9", "status": "active"}
        inserted = conn.execute(
            sa.insert(tables.tables["b2b_account"]).values(**row, created_at=now, updated_at=now)
        )
        (account_id,) = inserted.inserted_primary_key or (None,)
        contact_row = {"account_id": account_id, "name": "Ewa Stara", "is_primary": True}
        conn.execute(sa.insert(tables.tables["b2b_contact"]).values(**contact_row))
    portal = SqlPortal(db_url, clock=clock)
    try:
        portal.ensure_ready()
        old = portal.find_by_logins(["old@example.com"])["old@example.com"]
        assert old.fields["contacts"] == [
            {
                "name": "Ewa Stara",
                "email": None,
                "phone": None,
                "position": None,
                "is_primary": True,
                "receives_mail": False,
                "represents": False,
            }
        ]
        roles = [{**old.fields["contacts"][0], "receives_mail": True, "represents": True}]
        [outcome] = portal.apply([UpdateAccount("K9", old.id, {"contacts": roles})])
        assert outcome.ok
        again = portal.find_by_logins(["old@example.com"])["old@example.com"]
        assert again.fields["contacts"] == roles
    finally:
        portal.close()
    with db.connect() as conn:
        versions = conn.execute(sa.text("SELECT version_num FROM syncd_portal_version")).all()
    assert versions == [(HEAD,)]


@pytest.mark.parametrize(
    "url",
    [
        "postgresql+psycopg://syncd:In-Url-Secret@127.0.0.1:1/portal",
        "mysql+pymysql://syncd@127.0.0.1:1/portal",
    ],
)
def test_an_unreachable_portal_is_unavailable_without_the_password(url: str) -> None:
    """Every call against a portal that cannot be reached raises PortalUnavailable, naming the
    server but never the password."""
    portal = SqlPortal(url, password="Tajne-Hasło-123")  # noqa: S106 - proven never to leak
    try:
        calls: list[Callable[[], object]] = [
            portal.ensure_ready,
            lambda: portal.find_by_logins(["a@x.pl"]),
            lambda: list(portal.accounts()),
            lambda: portal.apply([create(desired("K1"))]),
        ]
        for call in calls:
            with pytest.raises(PortalUnavailable) as info:
                call()
            message = str(info.value)
            assert "127.0.0.1:1" in message
            assert "Tajne" not in message
            assert "In-Url-Secret" not in message
        assert "Tajne" not in repr(portal)
    finally:
        portal.close()


def test_tables_made_by_hand_from_the_current_spec_are_stamped_and_kept(
    db_url: str, db: sa.Engine
) -> None:
    """Unversioned tables that already have the contact roles (made from spec section 5 as
    it is now) pass every migration without error and keep their columns."""
    metadata.create_all(db)
    portal = SqlPortal(db_url)
    try:
        portal.ensure_ready()
    finally:
        portal.close()
    with db.connect() as conn:
        versions = conn.execute(sa.text("SELECT version_num FROM syncd_portal_version")).all()
    assert versions == [(HEAD,)]
    columns = {c["name"] for c in sa.inspect(db).get_columns("b2b_contact")}
    assert set(CONTACT_ROLE_COLUMNS) <= columns


def test_an_older_install_missing_a_table_says_what_is_missing(db_url: str, db: sa.Engine) -> None:
    """An unversioned install without b2b_contact is refused with a message naming it."""
    older = sa.MetaData()
    account.to_metadata(older).create(db)
    portal = SqlPortal(db_url)
    try:
        with pytest.raises(PortalUnavailable, match="lacks b2b_contact"):
            portal.ensure_ready()
    finally:
        portal.close()
