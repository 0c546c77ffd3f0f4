"""The lock that serialises schema migrations of two processes starting at once.

Shared by the state store's and the SQL portal's migrations. PostgreSQL DDL is
transactional, so a transaction-level advisory lock is enough: the second process waits,
then finds the schema at head. MariaDB DDL commits implicitly, so only a named session
lock serialises it; named locks are server-wide, so the name is scoped to the database.
SQLite serialises writers itself (the store begins its write transactions IMMEDIATE).
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
    """Hold the backend's migration lock around the block; ``error`` if it never comes."""
    backend = connection.dialect.name
    if backend == "postgresql":
        # Held until the surrounding transaction ends.
        connection.execute(sa.select(sa.func.pg_advisory_xact_lock(pg_key)))
        yield
        return
    if backend not in ("mysql", "mariadb"):
        yield
        return
    scoped = f"{name}:{connection.engine.url.database or ''}"[:64]
    got = connection.execute(sa.select(sa.func.get_lock(scoped, wait_s))).scalar()
    if got != 1:
        message = (
            f"another process has been {what} for over {wait_s}s; check for a stuck syncd "
            "process and try again"
        )
        raise error(message)
    try:
        yield
    finally:
        connection.execute(sa.select(sa.func.release_lock(scoped)))
