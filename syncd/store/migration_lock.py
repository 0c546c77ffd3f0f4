"""The lock that serialises schema migrations of two processes starting at once.

Shared by the state store's and the SQL portal's migrations. The lock is a session lock
taken on a connection outside any transaction and released only after the migration's
transaction has committed: released before the commit, the second process would find the
tables made but the version row not yet visible (MariaDB's DDL commits implicitly, the
version row does not) and create them again. PostgreSQL takes an advisory session lock,
MariaDB a named lock (server-wide, so the name is scoped to the database); SQLite
serialises writers itself (the store begins its write transactions IMMEDIATE).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import sqlalchemy as sa

from syncd.errors import SyncdError


@contextmanager
def migration_lock(
    connection: sa.Connection,
    *,
    pg_key: int,
    name: str,
    wait_s: int,
    error: type[SyncdError],
    what: str,
) -> Iterator[None]:
    """Hold the backend's migration lock around the block; ``error`` if it never comes.

    ``connection`` must not be in a transaction: the block begins and commits its own, so
    that the lock outlives the commit."""
    backend = connection.dialect.name
    if backend == "postgresql":
        connection.execute(sa.select(sa.func.pg_advisory_lock(pg_key)))
        connection.commit()
        try:
            yield
        finally:
            _release(connection, sa.select(sa.func.pg_advisory_unlock(pg_key)))
        return
    if backend not in ("mysql", "mariadb"):
        yield
        return
    scoped = f"{name}:{connection.engine.url.database or ''}"[:64]
    got = connection.execute(sa.select(sa.func.get_lock(scoped, wait_s))).scalar()
    connection.commit()
    if got != 1:
        message = (
            f"another process has been {what} for over {wait_s}s; check for a stuck syncd "
            "process and try again"
        )
        raise error(message)
    try:
        yield
    finally:
        _release(connection, sa.select(sa.func.release_lock(scoped)))


def _release(connection: sa.Connection, statement: sa.Select[tuple[object]]) -> None:
    # The block's transaction has ended (committed, or rolled back on an error).
    if connection.in_transaction():
        connection.rollback()
    connection.execute(statement)
    connection.commit()
