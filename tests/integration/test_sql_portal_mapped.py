"""The SQL portal on an existing PHP shop's ``users`` table (``portal.table`` + ``columns``).

The table is created here the way a shop would have it (a unique ``username``, a ``$2y$``
``password`` column, a tinyint ``status`` with the shop's own values, a NOT NULL ``role``)
on SQLite, PostgreSQL and MariaDB; syncd only checks and writes it.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from structlog.testing import capture_logs

from connectors.base import CreateAccount, DeleteAccount, Portal, SetPassword, UpdateAccount
from connectors.sql_portal.config import MAPPABLE, SqlPortalConfig
from connectors.sql_portal.mapped import MappedSqlPortal
from connectors.sql_portal.portal import SqlPortal
from syncd.errors import ConfigError, LoginTaken, PortalUnavailable
from syncd.model import SYNCED_FIELDS
from syncd.passwords import verify_password
from tests.contract.portal_sql import SHOP_COLUMNS, SHOP_STATUS_VALUES, shop_section, shop_users

PASSWORD = "Plant3d-Secret-Kx7"  # noqa: S105 - the planted password the test greps for
COLUMNS = SHOP_COLUMNS
STATUS_VALUES = SHOP_STATUS_VALUES
section = shop_section


def make_portal(url: str, **changes: Any) -> Portal:
    """The portal ``SqlPortal.from_config`` builds from ``section(url, **changes)``."""
    return SqlPortal.from_config(SqlPortalConfig.model_validate(section(url, **changes)))


@pytest.fixture
def users(db_url: str) -> Iterator[sa.Engine]:
    """An engine on a fresh database holding the shop's (empty) users table."""
    engine = sa.create_engine(db_url)
    shop_users(sa.MetaData()).create(engine)
    yield engine
    assert engine.pool.checkedout() == 0  # type: ignore[attr-defined]
    engine.dispose()


@pytest.fixture
def portal(db_url: str, users: sa.Engine) -> Iterator[Portal]:
    """A ready portal on the shop's table; no connection may be left checked out."""
    portal = make_portal(db_url)
    portal.ensure_ready()
    yield portal
    assert portal._engine.pool.checkedout() == 0  # type: ignore[attr-defined]
    portal.close()


def fields(key: str, **changes: Any) -> dict[str, Any]:
    """Every synced field of contractor ``key``, as the core sends them."""
    values: dict[str, Any] = {
        "login": f"{key.lower()}@example.com",
        "symbol": f"S-{key}",
        "name": f"Firma {key} – Łódź",
        "tax_id": "5260250274",
        "email": f"{key.lower()}@example.com",
        "phone": "+48 22 123 45 67",
        "address": "ul. Żółta 1",
        "price_level": "Hurtowa",
        "discount": "12.50",
        "owner_name": "Jan Kowalski",
        "owner_email": "jan@example.com",
        "contacts": [{"name": "Anna", "email": None, "phone": None, "position": None}],
    }
    values.update(changes)
    return values


def row(users: sa.Engine, account_id: str) -> dict[str, Any]:
    """The shop's raw row of an account."""
    table = shop_users(sa.MetaData())
    with users.connect() as conn:
        query = sa.select(table).where(table.c.id == int(account_id))
        return dict(conn.execute(query).mappings().one())


def create(portal: Portal, key: str, **changes: Any) -> str:
    """Create contractor ``key``'s account (pending) and return its id."""
    (outcome,) = portal.apply([CreateAccount(key, fields(key, **changes), "pending")])
    assert outcome.error is None
    return str(outcome.account_id)


def php_verifies(password: str, hashed: str) -> bool:
    """Whether PHP's own password_verify accepts ``password`` for ``hashed``."""
    php = shutil.which("php")
    if php is None:
        pytest.skip("php is not installed")
    code = "echo password_verify(stream_get_contents(STDIN), $argv[1]) ? 'yes' : 'no';"
    done = subprocess.run(  # noqa: S603 - a fixed program and code, the hash as an argument
        [php, "-r", code, hashed], input=password, capture_output=True, text=True, check=True
    )
    return done.stdout == "yes"


def test_mappable_names_are_the_synced_fields_and_the_account_state() -> None:
    """The config's list of mappable names is SYNCED_FIELDS (but contacts) plus the state."""
    state = {"id", "contractor_key", "status", "block_reason", "password_hash"}
    assert set(MAPPABLE) == set(SYNCED_FIELDS) - {"contacts"} | state | {"created_at", "updated_at"}


def test_stored_fields_are_the_mapped_ones(portal: Portal) -> None:
    """A mapped table stores exactly the synced fields its columns map, never contacts."""
    assert portal.stored_fields == {
        "login", "email", "name", "price_level", "discount", "tax_id", "customer_group"
    }  # fmt: skip


def test_create_writes_the_shops_row_and_reads_it_back(portal: Portal, users: sa.Engine) -> None:
    """A create fills the mapped columns, the constant role and the shop's pending value, and
    the account reads back with the mapped fields only."""
    account_id = create(portal, "K1")
    raw = row(users, account_id)
    assert raw["username"] == "k1@example.com"
    assert (raw["status"], raw["role"], raw["erp_id"]) == (0, "customer", "K1")
    assert raw["discount"] == Decimal("12.50")
    assert raw["password"] is None
    found = portal.find_by_logins(["k1@example.com"])["k1@example.com"]
    assert (found.id, found.status, found.contractor_key) == (account_id, "pending", "K1")
    assert found.fields == {
        "login": "k1@example.com",
        "email": "k1@example.com",
        "name": "Firma K1 – Łódź",
        "tax_id": "5260250274",
        "price_level": "Hurtowa",
        "discount": "12.50",
        "customer_group": None,
    }


def test_update_changes_one_field(portal: Portal, users: sa.Engine) -> None:
    """An update of the price level writes that column and leaves the others alone."""
    account_id = create(portal, "K1")
    outcomes = portal.apply([UpdateAccount("K1", account_id, {"price_level": "Detal"})])
    assert outcomes[0].error is None
    raw = row(users, account_id)
    assert (raw["b2b_price"], raw["company"], raw["status"]) == ("Detal", "Firma K1 – Łódź", 0)


def test_block_and_deactivate_use_the_shops_status_values(portal: Portal, users: sa.Engine) -> None:
    """Blocking writes the shop's blocked value and the reason; deactivating its inactive
    value; both read back as syncd's statuses."""
    account_id = create(portal, "K1")
    block = {"status": "blocked", "block_reason": "Zaległe płatności"}
    assert portal.apply([UpdateAccount("K1", account_id, block)])[0].error is None
    raw = row(users, account_id)
    assert (raw["status"], raw["ban_reason"]) == (2, "Zaległe płatności")
    account = portal.find_by_logins(["k1@example.com"])["k1@example.com"]
    assert (account.status, account.block_reason) == ("blocked", "Zaległe płatności")
    off = {"status": "inactive", "block_reason": None}
    assert portal.apply([UpdateAccount("K1", account_id, off)])[0].error is None
    assert row(users, account_id)["status"] == 3
    assert [a.status for a in portal.accounts()] == ["inactive"]


def test_delete_removes_the_row_and_deleting_again_is_a_no_op(
    portal: Portal, users: sa.Engine
) -> None:
    """A deleted account's row is gone; a second delete succeeds without doing anything."""
    account_id = create(portal, "K1")
    keep = create(portal, "K2")
    for _ in range(2):
        assert portal.apply([DeleteAccount("K1", account_id)])[0].error is None
    assert [a.id for a in portal.accounts()] == [keep]


def test_find_by_login_ignores_case_and_lists_every_account(
    portal: Portal, users: sa.Engine
) -> None:
    """An account the shop made as Shop.User@Example.COM is found by its lower-case login,
    under that spelling; the listing holds it with syncd's accounts, in id order."""
    table = shop_users(sa.MetaData())
    with users.begin() as conn:
        shop_row = {"username": "Shop.User@Example.COM", "role": "admin", "status": 7}
        conn.execute(sa.insert(table), shop_row)
    mine = create(portal, "K1")
    found = portal.find_by_logins(["shop.user@example.com", "k1@example.com", "nobody@x.pl"])
    assert sorted(found) == ["k1@example.com", "shop.user@example.com"]
    shops = found["shop.user@example.com"]
    assert (shops.contractor_key, shops.status) == (None, "blocked")  # 7: the shop's own state
    assert [a.login for a in portal.accounts()] == ["Shop.User@Example.COM", "k1@example.com"]
    assert found["k1@example.com"].id == mine


def test_creating_again_is_login_taken(portal: Portal) -> None:
    """Creating an existing login again is LoginTaken naming the owner, and the other creates
    of the batch are applied."""
    create(portal, "K1")
    again = CreateAccount("K9", fields("K9", login="k1@example.com"), "pending")
    outcomes = portal.apply([again, CreateAccount("K2", fields("K2"), "pending")])
    error = outcomes[0].error
    assert isinstance(error, LoginTaken)
    assert error.owner_key == "K1"
    assert outcomes[1].error is None


def test_password_is_set_as_php_would_verify_it(
    portal: Portal, users: sa.Engine, db_url: str
) -> None:
    """SetPassword writes a $2y$ bcrypt hash that PHP's password_verify accepts; the
    plaintext is in no log line, no row and (SQLite) nowhere in the database file."""
    account_id = create(portal, "K1")
    with capture_logs() as logs:
        outcomes = portal.apply([SetPassword("K1", account_id, PASSWORD)])
    assert outcomes[0].error is None
    hashed = row(users, account_id)["password"]
    assert hashed.startswith("$2y$04$")
    assert verify_password(PASSWORD, hashed)
    assert php_verifies(PASSWORD, hashed)
    assert not php_verifies(PASSWORD + "x", hashed)
    assert PASSWORD not in repr(logs) + repr(outcomes)
    assert "password_hash" not in portal.find_by_logins(["k1@example.com"])["k1@example.com"].fields
    if db_url.startswith("sqlite"):
        assert PASSWORD.encode() not in Path(db_url.removeprefix("sqlite:///")).read_bytes()


def test_set_password_of_a_missing_account_says_so_without_the_password(portal: Portal) -> None:
    """A password for an account the shop no longer has is a record error, plaintext-free."""
    (outcome,) = portal.apply([SetPassword("K1", "4242", PASSWORD)])
    assert outcome.error is not None
    assert "no longer exists" in str(outcome.error)
    assert PASSWORD not in str(outcome.error) + repr(outcome)


def test_ensure_ready_again_keeps_an_unchanged_table(portal: Portal, users: sa.Engine) -> None:
    """Every cycle checks the table again, but an unchanged one keeps its reflected Table
    (SQLAlchemy's compiled statements are keyed by it: a new one each cycle filled the
    engine's cache); a mapped column changed in between is reflected anew."""
    assert isinstance(portal, MappedSqlPortal)
    table = portal._layout().table
    portal.ensure_ready()
    portal.ensure_ready()
    assert portal._layout().table is table
    wider = shop_users(sa.MetaData())
    wider.c.company.type = sa.String(300)
    wider.drop(users)
    wider.create(users)
    portal.ensure_ready()
    assert portal._layout().table is not table
    assert portal.limits().lengths["name"] == 300


def test_a_missing_mapped_column_is_a_config_error_naming_the_key(
    db_url: str, users: sa.Engine
) -> None:
    """A mapped column the table lacks is a ConfigError naming the YAML key and the column;
    so is a NOT NULL column without a default that gets no constant, and a missing table."""
    portal = make_portal(db_url, columns={**COLUMNS, "price_level": "b2b_price_level"})
    with pytest.raises(ConfigError) as caught:
        portal.ensure_ready()
    assert caught.value.problems == [
        "portal.columns.price_level: column users.b2b_price_level does not exist; the table "
        "has b2b_group, b2b_price, ban_reason, company, discount, email, erp_id, id, "
        "last_login, nip, password, role, status, username"
    ]
    portal.close()
    portal = make_portal(db_url, constants={})
    with pytest.raises(ConfigError, match=r"portal\.constants: column users\.role is NOT NULL"):
        portal.ensure_ready()
    portal.close()
    portal = make_portal(db_url, table="customers")
    with pytest.raises(ConfigError, match=r"portal\.table: table customers does not exist"):
        portal.ensure_ready()
    portal.close()


def test_an_unreachable_database_is_unavailable(tmp_path: Path) -> None:
    """A portal database that cannot be reached is PortalUnavailable, not a config error."""
    url = "postgresql+psycopg://syncd:Db-Secret-9@127.0.0.1:1/shop"
    portal = make_portal(url)
    with pytest.raises(PortalUnavailable) as caught:
        portal.ensure_ready()
    assert "Db-Secret-9" not in str(caught.value)
    portal.close()


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"columns": {"id": "id", "login": "username"}}, "portal.columns.status: is required"),
        ({"status_values": {"active": 1}}, "portal.status_values.pending: is required"),
        ({"status_values": {**STATUS_VALUES, "inactive": 0}}, "has the same value as pending"),
        ({"columns": {**COLUMNS, "email": "username"}}, "already mapped from login"),
        ({"table": None}, "portal.columns: is only for an existing table"),
        (
            {"columns": {k: v for k, v in COLUMNS.items() if k != "password_hash"}},
            "portal.columns.password_hash: is required while portal.passwords is set",
        ),
        ({"password_cost": 40}, "portal.password_cost: bcrypt_2y takes 4 to 31 rounds"),
    ],
)
def test_config_problems_name_their_key(changes: dict[str, Any], expected: str) -> None:
    """An incomplete or contradictory mapping is refused before anything connects."""
    from syncd.config import parse_config
    from tests.unit.test_config import minimal

    with pytest.raises(ConfigError) as caught:
        parse_config(minimal(portal=section("sqlite:////tmp/shop.db", **changes)), environ={})
    assert any(expected in line for line in caught.value.problems), caught.value.problems
