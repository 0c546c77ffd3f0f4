"""Shared fixtures: one real database per backend, created fresh for each test session.

PostgreSQL (127.0.0.1:5432, trust auth) and MariaDB (127.0.0.1:3306, root, no password)
are real servers. When one cannot be reached its tests are skipped, unless
``SYNCD_REQUIRE_DB=1`` (set by ``.ci/run``), in which case the skip becomes a failure.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from tests.smtp_server import Recorder, Server, running

PG_ADMIN_URL = os.environ.get(
    "SYNCD_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
MARIADB_ADMIN_URL = os.environ.get("SYNCD_TEST_MARIADB", "mysql+pymysql://root@127.0.0.1:3306/")
REQUIRE_DB = os.environ.get("SYNCD_REQUIRE_DB") == "1"


def unavailable(what: str, error: Exception) -> None:
    """Skip (or, under SYNCD_REQUIRE_DB=1, fail) a test whose database is not there."""
    message = f"{what} is not reachable ({type(error).__name__}: {error})"
    if REQUIRE_DB:
        pytest.fail(message + "; SYNCD_REQUIRE_DB=1 makes this a failure", pytrace=False)
    pytest.skip(message)


def _fresh_database(admin_url: str, what: str, *, mysql: bool) -> Iterator[str]:
    name = f"syncd_test_{uuid.uuid4().hex[:12]}"
    try:
        admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            if mysql:
                conn.exec_driver_sql(
                    f"CREATE DATABASE {name} CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"
                )
            else:
                conn.exec_driver_sql(f"CREATE DATABASE {name}")
    except Exception as error:
        unavailable(what, error)
    url = sa.make_url(admin_url).set(database=name)
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            if mysql:
                conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {name}")
            else:
                conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        admin.dispose()


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A URL of a new, empty PostgreSQL database, dropped after the test."""
    yield from _fresh_database(PG_ADMIN_URL, "PostgreSQL on 127.0.0.1:5432", mysql=False)


@pytest.fixture
def mariadb_url() -> Iterator[str]:
    """A URL of a new, empty MariaDB database, dropped after the test."""
    yield from _fresh_database(MARIADB_ADMIN_URL, "MariaDB on 127.0.0.1:3306", mysql=True)


@pytest.fixture
def sqlite_url(tmp_path: object) -> str:
    """A URL of a new SQLite database file in the test's temporary directory."""
    return f"sqlite:///{tmp_path}/test.db"


BACKENDS = [
    pytest.param("sqlite", id="sqlite"),
    pytest.param("postgres", id="postgres", marks=pytest.mark.postgres),
    pytest.param("mariadb", id="mariadb", marks=pytest.mark.mariadb),
]


@pytest.fixture(params=BACKENDS)
def db_url(request: pytest.FixtureRequest) -> str:
    """A fresh database on each backend in turn: the contract-suite fixture."""
    name = {"sqlite": "sqlite_url", "postgres": "pg_url", "mariadb": "mariadb_url"}[request.param]
    return str(request.getfixturevalue(name))


@pytest.fixture
def quick_bcrypt(monkeypatch: pytest.MonkeyPatch) -> None:
    """Real bcrypt hashes at the lowest cost (4 rounds, not 12), to keep the suite fast."""
    monkeypatch.setattr("syncd.passwords.BCRYPT_ROUNDS", 4)


@pytest.fixture
def smtp() -> Iterator[Server]:
    """A real SMTP server (aiosmtpd, AUTH offered without TLS) on a free loopback port."""
    with running(Recorder()) as server:
        yield server
