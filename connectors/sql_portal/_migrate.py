"""Create or upgrade the SQL portal's tables with syncd's own alembic migrations.

The portal application may run alembic itself in the same database, so syncd keeps its
version in ``syncd_portal_version`` (see ``sql_portal/migrations/env.py``). An install made
before syncd recorded a version has the tables but no version row: it is stamped at the
first revision instead of failing on ``CREATE TABLE``.

Every cycle calls ``ensure_ready``, so this runs once a cycle in the daemon. Alembic builds
its version table anew on every run, and SQLAlchemy caches a compiled statement by the
identity of its ``Table``: on the engine's cache, each run added an entry that no later run
could hit (about 17 KiB each; the LRU of 500 lets 750 pile up before it prunes). The
migration's statements are therefore run without the compiled cache.
"""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config

from connectors.sql_portal.schema import metadata
from syncd.errors import PortalUnavailable
from syncd.store.migration_lock import migration_lock

MIGRATIONS_DIR = Path(__file__).with_name("migrations")
VERSION_TABLE = "syncd_portal_version"
FIRST_REVISION = "0001"  # the revision that creates the tables an older install already has
PG_MIGRATION_LOCK = 0x5359_4E43_5054  # "SYNCPT": any constant unique to this purpose
MYSQL_MIGRATION_LOCK = "syncd_portal_migration"
MIGRATION_LOCK_WAIT_S = 60


def migrate(engine: sa.Engine) -> None:
    """Bring the portal tables to the newest revision, holding the backend's migration lock.

    Raises ``PortalUnavailable`` when the lock cannot be had or an existing table lacks a
    column syncd needs; driver errors are left to the caller to translate.
    """
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    with engine.connect() as connection:
        connection.execution_options(compiled_cache=None)  # see the module's docstring
        with (
            migration_lock(
                connection,
                pg_key=PG_MIGRATION_LOCK,
                name=MYSQL_MIGRATION_LOCK,
                wait_s=MIGRATION_LOCK_WAIT_S,
                error=PortalUnavailable,
                what="creating the portal's tables",
            ),
            connection.begin(),
        ):
            config.attributes["connection"] = connection
            if _unversioned_install(connection):
                command.stamp(config, FIRST_REVISION)
            command.upgrade(config, "head")
            _check_columns(connection)


def _unversioned_install(connection: sa.Connection) -> bool:
    inspector = sa.inspect(connection)
    if not inspector.has_table("b2b_account"):
        return False
    if not inspector.has_table(VERSION_TABLE):
        return True
    version = sa.table(VERSION_TABLE, sa.column("version_num"))
    return connection.execute(sa.select(sa.func.count()).select_from(version)).scalar() == 0


def _check_columns(connection: sa.Connection) -> None:
    # Tables made by hand (or by an older portal) must still have every column syncd writes.
    inspector = sa.inspect(connection)
    missing: list[str] = []
    for table in metadata.sorted_tables:
        if not inspector.has_table(table.name):
            missing.append(table.name)
            continue
        present = {column["name"] for column in inspector.get_columns(table.name)}
        missing += [f"{table.name}.{c.name}" for c in table.columns if c.name not in present]
    if missing:
        message = (
            f"the portal's database lacks {', '.join(missing)}: create them (see spec "
            f"section 5) or point portal.url at the right database"
        )
        raise PortalUnavailable(message)
