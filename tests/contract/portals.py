"""The portal contract's parts: one factory per portal kind (and backend), and the accounts
every portal is asked to hold.

A factory takes the pytest request and a temporary directory and returns a ``Built``: a
ready portal, the YAML ``portal`` section that reaches the same store (so ``syncd sync``
can be pointed at it), and, when the kind can check one, a way to verify a password the
way the portal itself would at login. A new portal kind joins the contract by one line in
``FACTORIES``; the factory may start servers and registers their cleanup with
``request.addfinalizer``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from connectors import PORTALS
from connectors.base import Portal
from syncd.model import Contact, DesiredAccount
from tests.contract.portal_rest import make_rest_portal, make_wordpress_portal
from tests.contract.portal_scim import make_scim_portal
from tests.contract.portal_sql import make_sql_mapped_portal

# (portal, section, verify(login, password) -> bool or None)
Factory = Callable[[pytest.FixtureRequest, Path], Any]


@dataclass
class Built:
    """A ready portal and how to reach it again."""

    portal: Portal
    section: dict[str, Any]
    verify_password: Callable[[str, str], bool] | None = None


def built(value: Any) -> Built:
    """Accept a factory's ``Built`` or its ``(portal, section[, verify])`` tuple."""
    if isinstance(value, Built):
        return value
    return Built(*value)


def desired(key: str, **changes: Any) -> DesiredAccount:
    """A complete desired account for contractor ``key`` (Polish text, contacts, discount)."""
    values: dict[str, Any] = {
        "key": key,
        "login": f"k{key}@example.com",
        "symbol": f"S-{key}",
        "name": f"Firma {key} Sp. z o.o. – Łódź",
        "email": f"k{key}@example.com",
        "tax_id": "5260250274",
        "phone": "+48 22 123 45 67",
        "address": "ul. Żółta 1, 00-001 Warszawa",
        "price_level": "Hurtowa",
        "discount": Decimal("12.5"),
        "owner_name": "Jan Kowalski",
        "owner_email": "jan@example.com",
        "contacts": (
            Contact(
                "Anna Nowak",
                "anna@example.com",
                "600100200",
                "Zakupy",
                is_primary=True,
                receives_mail=True,
            ),
            Contact("Piotr Zieliński", "piotr@example.com", None, "Prezes", represents=True),
        ),
        "customer_group": "Hurtownie",
    }
    values.update(changes)
    return DesiredAccount(**values)


def _sql_own(backend: str) -> Factory:
    def build(request: pytest.FixtureRequest, tmp_path: Path) -> Built:
        fixture = {"sqlite": "sqlite_url", "postgres": "pg_url", "mariadb": "mariadb_url"}
        url = str(request.getfixturevalue(fixture[backend]))
        section = {"kind": "sql", "url": url}
        kind = PORTALS["sql"]
        config = kind.load_config().model_validate(section)
        portal: Portal = kind.load_connector().from_config(config)
        portal.ensure_ready()
        request.addfinalizer(portal.close)
        return Built(portal, section, _bcrypt_in(url))

    return build


def _bcrypt_in(url: str) -> Callable[[str, str], bool]:
    """Verify against b2b_account.password_hash as a PHP or Python login page would."""

    def verify(login: str, password: str) -> bool:
        import bcrypt
        import sqlalchemy as sa

        from connectors.sql_portal.schema import account

        engine = sa.create_engine(url)
        try:
            with engine.connect() as conn:
                hashed = conn.execute(
                    sa.select(account.c.password_hash).where(account.c.login == login)
                ).scalar_one()
        finally:
            engine.dispose()
        if hashed is None:
            return False
        return bcrypt.checkpw(password.encode(), hashed.replace("$2y$", "$2b$", 1).encode())

    return verify


_DB = {"postgres": [pytest.mark.postgres], "mariadb": [pytest.mark.mariadb]}
# id -> (marks, factory). A new portal kind is one more line here.
FACTORIES: dict[str, tuple[list[pytest.MarkDecorator], Factory]] = {
    "sql-sqlite": ([], _sql_own("sqlite")),
    "sql-postgres": (_DB["postgres"], _sql_own("postgres")),
    "sql-mariadb": (_DB["mariadb"], _sql_own("mariadb")),
    "scim": ([], make_scim_portal),
    "rest": ([], make_rest_portal),
    "wordpress": (_DB["mariadb"], make_wordpress_portal),
    "sql-mapped-sqlite": ([], make_sql_mapped_portal),
    "sql-mapped-postgres": (_DB["postgres"], partial(make_sql_mapped_portal, backend="postgres")),
    "sql-mapped-mariadb": (_DB["mariadb"], partial(make_sql_mapped_portal, backend="mariadb")),
}
