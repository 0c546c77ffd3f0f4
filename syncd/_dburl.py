"""Naming a database and quoting its driver without ever showing a password.

Shared by the state store (``syncd.store._db``) and the SQL connectors
(``connectors._sql``); it lives in ``syncd`` because the store must not import the
``connectors`` package, whose ``__init__`` loads every connector.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import sqlalchemy as sa


def create_owner_only(url: sa.URL) -> None:
    """Create a SQLite database file that does not exist yet readable by its owner only.

    The state store holds the outbox and the portal holds password hashes; SQLite would
    create them with the umask's mode (often 0644), and gives its ``-wal`` and ``-shm``
    files the main file's mode, so the first file decides. Other backends: nothing to do.
    A directory that does not exist is left for SQLite to report.
    """
    if url.get_backend_name() != "sqlite":
        return
    database = url.database or ""
    if not database or database == ":memory:" or database.startswith("file:"):
        return
    with contextlib.suppress(FileExistsError, FileNotFoundError, NotADirectoryError):
        os.close(os.open(Path(database), os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))


def describe(url: str | sa.URL) -> str:
    """A short, password-free name for a database: ``postgresql server db:5432, database x``."""
    try:
        parsed = sa.make_url(url)
    except sa.exc.ArgumentError:
        return "a database with an unparseable url"
    if parsed.get_backend_name() == "sqlite":
        return f"SQLite database {parsed.database or ':memory:'}"
    query_dsn = parsed.query.get("odbc_connect")
    if parsed.host is None and query_dsn is not None:
        return f"{parsed.get_backend_name()} server via an ODBC connection string"
    where = parsed.host or "localhost"
    if parsed.port:
        where += f":{parsed.port}"
    text = f"{parsed.get_backend_name()} server {where}"
    if parsed.database:
        text += f", database {parsed.database}"
    return text


def driver_message(error: BaseException, *, secrets: tuple[str | None, ...] = ()) -> str:
    """The driver's own words, first line only, without SQL text, bound values or secrets."""
    original = error.orig if isinstance(error, sa.exc.DBAPIError) else error
    lines = str(original).strip().splitlines()
    text = lines[0] if lines else type(original).__name__
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return text[:300]
