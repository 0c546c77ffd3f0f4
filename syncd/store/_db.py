"""How the state store talks to its database: engine set-up, transactions, errors, migrations.

- SQLite gets WAL (readers never wait for the writer), a busy timeout, foreign keys, and
  real transactions: pysqlite's own implicit BEGIN is switched off and syncd emits
  ``BEGIN`` (reads) or ``BEGIN IMMEDIATE`` (writes) itself, so a write transaction holds
  the write lock from its first statement and DDL is transactional too.
- Driver errors become ``UnavailableError`` (cannot reach or lock the store: retry later) or
  ``FatalError`` (the store refused a write: a bug or a corrupt store), with a message that
  names the store, password hidden, and says what to do.
- Migrations run under a lock so that two processes starting at once on PostgreSQL or
  MariaDB never both create the tables (SQLite's write lock does the same job). A store
  already at the newest revision is recognised by reading its version row, without
  importing alembic (a fifth of a second of every ``syncd status``): alembic runs only
  for a new, older or unknown (newer) schema, exactly as it did on every start before.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from syncd._dburl import create_owner_only, describe, driver_message
from syncd.errors import FatalError, UnavailableError
from syncd.store.migration_lock import migration_lock

# The execution option that makes a SQLite transaction start with BEGIN IMMEDIATE.
WRITE_OPTION = "syncd_write"
# pg_advisory_xact_lock key for migrations: "syncd" in ASCII, as a number.
PG_MIGRATION_LOCK = 0x73796E6364
MYSQL_MIGRATION_LOCK = "syncd_state_migrate"
MIGRATION_LOCK_WAIT_S = 120
# Where alembic keeps the store's revision (``migrations/env.py``), and the revision files:
# each is named after its revision id (``0004_record_backoff.py`` is revision "0004").
VERSION_TABLE = "syncd_alembic_version"
VERSIONS_DIR = Path(__file__).with_name("migrations") / "versions"
# Seconds to wait for a server connection, and for SQLite's write lock.
CONNECT_TIMEOUT_S = 10
SQLITE_BUSY_TIMEOUT_S = 30
WAL_SWITCH_ATTEMPTS = 20
# PRAGMAs take no bound parameters: the statement is a constant, checked against the
# setting at import so the two cannot drift apart.
_BUSY_TIMEOUT_PRAGMA = "PRAGMA busy_timeout=30000"
assert SQLITE_BUSY_TIMEOUT_S * 1000 == 30000


def create_store_engine(url: str) -> sa.Engine:
    """An engine for the state store; creates a SQLite file's directory when missing."""
    parsed = sa.make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return sa.create_engine(
            parsed, pool_pre_ping=True, connect_args={"connect_timeout": CONNECT_TIMEOUT_S}
        )
    database = parsed.database or ""
    if database and database != ":memory:" and not database.startswith("file:"):
        try:
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            message = (
                f"cannot create the directory of the state store ({describe(parsed)}): "
                f"{error.strerror}; create it or point state.url elsewhere"
            )
            raise UnavailableError(message) from error
    create_owner_only(parsed)
    engine = sa.create_engine(parsed, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_S})
    sa.event.listen(engine, "connect", _sqlite_on_connect)
    sa.event.listen(engine, "begin", _sqlite_on_begin)
    return engine


def _sqlite_on_connect(dbapi_connection: Any, _record: Any) -> None:
    dbapi_connection.isolation_level = None  # syncd emits BEGIN itself, see _sqlite_on_begin
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute(_BUSY_TIMEOUT_PRAGMA)
        cursor.execute("PRAGMA foreign_keys=ON")
        if cursor.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
            _switch_to_wal(cursor)
    finally:
        cursor.close()


def _switch_to_wal(cursor: Any) -> None:
    # WAL is a property of the file, set once. The switch does not wait on the busy
    # timeout, so two processes opening a new file at once retry here for a short while.
    for attempt in range(WAL_SWITCH_ATTEMPTS):
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
        except sqlite3.OperationalError as error:
            if "locked" not in str(error) or attempt == WAL_SWITCH_ATTEMPTS - 1:
                raise
            time.sleep(0.05 * (attempt + 1))
        else:
            return


def _sqlite_on_begin(connection: sa.Connection) -> None:
    # Sent on the DBAPI connection, not through SQLAlchemy, so statement-counting listeners
    # see only the store's own queries.
    write = connection.get_execution_options().get(WRITE_OPTION, False)
    dbapi_connection = connection.connection.driver_connection
    assert dbapi_connection is not None
    dbapi_connection.execute("BEGIN IMMEDIATE" if write else "BEGIN")


@contextmanager
def guard(url: str, doing: str) -> Iterator[None]:
    """Translate driver errors met while ``doing`` something into ``syncd.errors``."""
    try:
        yield
    except (sa.exc.DBAPIError, sa.exc.TimeoutError) as error:
        detail = driver_message(error, secrets=(sa.make_url(url).password,))
        where = describe(url)
        if _is_connection_problem(error):
            message = (
                f"cannot use the state store ({where}) while {doing}: {detail}; check "
                f"state.url, that the database is running and that syncd may write to it; "
                f"syncd will retry on the next cycle"
            )
            raise UnavailableError(message) from error
        message = (
            f"the state store ({where}) refused {doing}: {detail}; nothing of it was "
            f"written; this is a bug or a damaged store, report it with this message"
        )
        raise FatalError(message) from error


@contextmanager
def transaction(engine: sa.Engine, *, write: bool) -> Iterator[sa.Connection]:
    """A connection in a transaction that commits when the block ends and rolls back on error."""
    with engine.connect() as connection:
        if write:
            connection.execution_options(**{WRITE_OPTION: True})
        with connection.begin():
            yield connection


def head_revision() -> str:
    """The newest revision this code knows, from the revision files' names (no alembic).

    The ids are zero-padded numbers in a straight line, so the newest is the largest;
    ``tests/unit/test_startup.py`` checks that it is alembic's own head. No file found
    (an install without the sources) gives "", which no store has: alembic decides."""
    files = VERSIONS_DIR.glob("[0-9]*_*.py")
    return max((path.name.partition("_")[0] for path in files), default="")


def is_current(engine: sa.Engine) -> bool:
    """Whether the store's schema is at ``head_revision()``: a table check and one read, no lock.

    A new store (no version table), an older one and one newer than this code all answer
    False and go through alembic, which migrates the first two and refuses the third."""
    version = sa.table(VERSION_TABLE, sa.column("version_num"))
    with transaction(engine, write=False) as connection:
        if not sa.inspect(connection).has_table(VERSION_TABLE):
            return False
        found = connection.execute(sa.select(version.c.version_num)).scalars().all()
    return found == [head_revision()]


def migrate(engine: sa.Engine) -> None:
    """Upgrade the schema to the newest revision, holding the backend's migration lock."""
    if is_current(engine):
        return
    # Imported here: alembic and every dialect it registers cost more than the rest of
    # ``syncd status`` together, and a store at the newest revision never needs them.
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", "syncd.store:migrations")
    with engine.connect() as connection:
        connection.execution_options(**{WRITE_OPTION: True})
        with (
            migration_lock(
                connection,
                pg_key=PG_MIGRATION_LOCK,
                name=MYSQL_MIGRATION_LOCK,
                wait_s=MIGRATION_LOCK_WAIT_S,
                error=UnavailableError,
                what="migrating the state store",
            ),
            connection.begin(),
        ):
            config.attributes["connection"] = connection
            command.upgrade(config, "head")


def _is_connection_problem(error: BaseException) -> bool:
    # OperationalError also covers SQLite's "database is locked" and "unable to open".
    if isinstance(error, sa.exc.TimeoutError):
        return True
    return isinstance(error, sa.exc.OperationalError | sa.exc.InterfaceError) or (
        isinstance(error, sa.exc.DBAPIError) and bool(error.connection_invalidated)
    )
