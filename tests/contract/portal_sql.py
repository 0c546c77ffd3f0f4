"""Contract factories for the SQL portal: syncd's own schema, and a PHP shop's mapped table.

Each factory takes its backend (``sqlite``, ``postgres``, ``mariadb``) from
``request.param`` when the request is parametrised with one, else from ``backend``; the
database is the matching fresh-database fixture of ``tests/conftest.py``. Both return the
ready portal, the YAML ``portal`` section that reaches the same tables, and a
``verify(login, password)`` that checks the stored hash the way the portal's login page
would (PHP's ``password_verify`` accepts ``$2y$`` bcrypt and argon2id alike).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.dialects import mysql

from connectors.base import Portal
from connectors.sql_portal.config import SqlPortalConfig
from connectors.sql_portal.portal import SqlPortal
from connectors.sql_portal.schema import account
from syncd.passwords import verify_password

URL_FIXTURES = {"sqlite": "sqlite_url", "postgres": "pg_url", "mariadb": "mariadb_url"}
TinyInt = sa.SmallInteger().with_variant(mysql.TINYINT(), "mysql", "mariadb")

# The shop's table and how the YAML maps syncd's fields onto it.
SHOP_COLUMNS = {
    "id": "id",
    "login": "username",
    "email": "email",
    "name": "company",
    "contractor_key": "erp_id",
    "price_level": "b2b_price",
    "discount": "discount",
    "tax_id": "nip",
    "customer_group": "b2b_group",
    "status": "status",
    "block_reason": "ban_reason",
    "password_hash": "password",
}
SHOP_STATUS_VALUES = {"pending": 0, "active": 1, "blocked": 2, "inactive": 3}

Verify = Callable[[str, str], bool]


def shop_users(metadata: sa.MetaData) -> sa.Table:
    """A PHP shop's ``users`` table, as the shop's own migrations would have made it."""
    return sa.Table(
        "users",
        metadata,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("username", sa.String(191), nullable=False, unique=True),
        sa.Column("email", sa.String(255)),
        sa.Column("password", sa.String(255)),
        sa.Column("status", TinyInt, nullable=False, server_default="0"),
        sa.Column("role", sa.String(32), nullable=False),
        sa.Column("company", sa.String(255)),
        sa.Column("b2b_price", sa.String(64)),
        sa.Column("b2b_group", sa.String(100)),
        sa.Column("discount", sa.Numeric(5, 2)),
        sa.Column("erp_id", sa.String(64)),
        sa.Column("nip", sa.String(32)),
        sa.Column("ban_reason", sa.String(255)),
        sa.Column("last_login", sa.DateTime),
    )


def shop_section(url: str, **changes: Any) -> dict[str, Any]:
    """The YAML ``portal`` section for the shop's ``users`` table at ``url``."""
    values: dict[str, Any] = {
        "kind": "sql",
        "url": url,
        "table": "users",
        "columns": SHOP_COLUMNS,
        "status_values": SHOP_STATUS_VALUES,
        "constants": {"role": "customer"},
        "password_scheme": "bcrypt_2y",
        "password_cost": 4,
    }
    values.update(changes)
    return values


def make_sql_portal(
    request: pytest.FixtureRequest, tmp_path: Path, backend: str = "sqlite"
) -> tuple[Portal, dict[str, Any], Verify]:
    """syncd's own schema (spec section 5) on a fresh database of ``backend``."""
    url = _url(request, backend)
    section = {"kind": "sql", "url": url, "password_cost": 4}
    return _ready(request, section), section, _verifier(url, account, "login", "password_hash")


def make_sql_mapped_portal(
    request: pytest.FixtureRequest, tmp_path: Path, backend: str = "sqlite"
) -> tuple[Portal, dict[str, Any], Verify]:
    """A PHP shop's ``users`` table (``$2y$`` hashes, tinyint statuses, a NOT NULL role)."""
    url = _url(request, backend)
    engine = sa.create_engine(url)
    try:
        table = shop_users(sa.MetaData())
        table.create(engine)
    finally:
        engine.dispose()
    section = shop_section(url)
    return _ready(request, section), section, _verifier(url, table, "username", "password")


def _url(request: pytest.FixtureRequest, backend: str) -> str:
    param = getattr(request, "param", None)
    if isinstance(param, str) and param in URL_FIXTURES:
        backend = param
    return str(request.getfixturevalue(URL_FIXTURES[backend]))


def _ready(request: pytest.FixtureRequest, section: dict[str, Any]) -> Portal:
    portal: Portal = SqlPortal.from_config(SqlPortalConfig.model_validate(section))
    request.addfinalizer(portal.close)
    portal.ensure_ready()
    return portal


def _verifier(url: str, table: sa.Table, login: str, hashed: str) -> Verify:
    """Check ``password`` against the stored hash of ``login``, as the shop's PHP would."""

    def verify(value: str, password: str) -> bool:
        engine = sa.create_engine(url)
        try:
            with engine.connect() as conn:
                query = sa.select(table.c[hashed]).where(table.c[login] == value)
                stored = conn.execute(query).scalar_one()
        finally:
            engine.dispose()
        return stored is not None and verify_password(password, stored)

    return verify
