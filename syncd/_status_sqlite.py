"""``syncd status`` on a SQLite state store, read through the stdlib ``sqlite3``.

Importing SQLAlchemy takes longer than the rest of ``syncd status`` together, and a status
only reads six things. So when ``state.url`` names an existing SQLite file whose schema is
at the newest revision, this reader sends the very statements ``StateStore`` sends (the
constants below are SQLAlchemy's own compilation of them for SQLite) and builds the same
rows with the same functions (``syncd.rows``). Anything else (PostgreSQL, MariaDB, a new
or older store that needs migrating, a URL with options) is ``None`` from ``open`` and
goes through ``StateStore``, paying the import. ``tests/integration/test_status_sqlite.py``
checks that the statements are ``StateStore``'s, word for word, and that both readers give
the same status document.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import syncd
from syncd.config._url import UrlError, parse_database_url
from syncd.rows import (
    ConflictRow,
    MailRow,
    RecordFailure,
    RunRow,
    conflict_from_row,
    failure_from_row,
    mail_from_row,
    run_from_row,
)

# syncd/store/_db.py: where alembic keeps the revision, and the revision files.
VERSION_TABLE = "syncd_alembic_version"
VERSIONS_DIR = Path(syncd.__file__).parent / "store" / "migrations" / "versions"
# The drivers whose URL is a plain file for the stdlib module (pysqlite is sqlite3).
DRIVERS = frozenset({"sqlite", "sqlite+pysqlite"})
VERSIONS = "SELECT version_num FROM syncd_alembic_version"  # of VERSION_TABLE
BUSY_TIMEOUT_S = 30  # as the state store's engine waits for SQLite's write lock

# ``StateStore``'s queries as SQLAlchemy compiles them for SQLite, with their parameters.
LAST_RUNS = (
    'SELECT syncd_run.id, syncd_run.run_id, syncd_run.kind, syncd_run."trigger", '
    "syncd_run.started_at, syncd_run.finished_at, syncd_run.status, syncd_run.summary_json, "
    "syncd_run.error \nFROM syncd_run ORDER BY syncd_run.id DESC\n LIMIT ? OFFSET ?"
)
MAIL_COUNTS = (
    "SELECT syncd_outbox.status, count(*) AS count_1 \nFROM syncd_outbox "
    "GROUP BY syncd_outbox.status"
)
RECORD_FAILURES = (
    "SELECT syncd_record_backoff.contractor_key, syncd_record_backoff.login, "
    "syncd_record_backoff.action, syncd_record_backoff.failures, "
    "syncd_record_backoff.first_failed_at, syncd_record_backoff.last_failed_at, "
    "syncd_record_backoff.retry_after, syncd_record_backoff.quarantined, "
    "syncd_record_backoff.fingerprint, syncd_record_backoff.last_error \n"
    "FROM syncd_record_backoff"
)
COUNTS_BY_STATUS = (
    "SELECT syncd_binding.status, count(*) AS count_1 \nFROM syncd_binding "
    "GROUP BY syncd_binding.status"
)
CONFLICTS = (
    "SELECT syncd_conflict.contractor_key, syncd_conflict.symbol, syncd_conflict.name, "
    "syncd_conflict.login, syncd_conflict.kind, syncd_conflict.reason, "
    "syncd_conflict.first_seen \nFROM syncd_conflict ORDER BY syncd_conflict.contractor_key"
)
MAILS_WITH_STATUS = (
    "SELECT syncd_outbox.id, syncd_outbox.created_at, syncd_outbox.not_before, "
    "syncd_outbox.contractor_key, syncd_outbox.account_id, syncd_outbox.recipient, "
    "syncd_outbox.template, syncd_outbox.language, syncd_outbox.status, "
    "syncd_outbox.attempts, syncd_outbox.last_error, syncd_outbox.sent_at, "
    "syncd_outbox.context_json \nFROM syncd_outbox \nWHERE syncd_outbox.status = ? "
    "ORDER BY syncd_outbox.id DESC\n LIMIT ? OFFSET ?"
)
# The columns these queries read that are ``UtcDateTime``: SQLite keeps them as naive UTC
# text, SQLAlchemy gives them back as aware UTC datetimes (``syncd.store.schema``).
TIMES = frozenset(
    {
        "started_at", "finished_at", "first_failed_at", "last_failed_at", "retry_after",
        "first_seen", "created_at", "not_before", "sent_at",
    }
)  # fmt: skip


def head_revision() -> str:
    """The newest schema revision this code knows (``syncd.store._db.head_revision``)."""
    files = VERSIONS_DIR.glob("[0-9]*_*.py")
    return max((path.name.partition("_")[0] for path in files), default="")


def sqlite_file(url: str) -> Path | None:
    """The existing file a plain SQLite ``url`` names; None for anything else (another
    backend, memory, options in the query string, a file not created yet)."""
    try:
        parsed = parse_database_url(url)
    except (UrlError, ValueError):
        return None
    if parsed.drivername not in DRIVERS or parsed.query or not parsed.database:
        return None
    if parsed.database == ":memory:" or parsed.database.startswith("file:"):
        return None
    path = Path(parsed.database)
    return path if path.is_file() else None


class SqliteStatusReader:
    """The read side ``syncd.status.collect`` uses, over one read transaction (so the six
    answers come from one snapshot of the store)."""

    def __init__(self, connection: sqlite3.Connection) -> None:
        self._connection = connection

    @classmethod
    def open(cls, url: str) -> SqliteStatusReader | None:
        """A reader of the store at ``url``, or None when ``StateStore`` must read it: not
        a plain SQLite file, or a schema that is not at the newest revision (it migrates).

        Raises ``sqlite3.Error`` when the file cannot be read."""
        path = sqlite_file(url)
        if path is None:
            return None
        connection = sqlite3.connect(path, timeout=BUSY_TIMEOUT_S, isolation_level=None)
        try:
            connection.execute("BEGIN")
            if not _is_current(connection):
                connection.close()
                return None
        except BaseException:
            connection.close()
            raise
        return cls(connection)

    def close(self) -> None:
        """End the read transaction and close the file."""
        try:
            self._connection.execute("COMMIT")
        finally:
            self._connection.close()

    def last_runs(self, limit: int = 10) -> list[RunRow]:
        """``StateStore.last_runs``."""
        return [run_from_row(row) for row in self._rows(LAST_RUNS, (limit, 0))]

    def mail_counts(self) -> dict[str, int]:
        """``StateStore.mail_counts``."""
        return {status: int(count) for status, count in self._tuples(MAIL_COUNTS)}

    def record_failures(self) -> dict[str, RecordFailure]:
        """``StateStore.record_failures`` (of every key)."""
        return {row["contractor_key"]: failure_from_row(row) for row in self._rows(RECORD_FAILURES)}

    def counts_by_status(self) -> dict[str, int]:
        """``StateStore.counts_by_status``."""
        return {status: int(count) for status, count in self._tuples(COUNTS_BY_STATUS)}

    def conflicts(self) -> list[ConflictRow]:
        """``StateStore.conflicts``."""
        return [conflict_from_row(row) for row in self._rows(CONFLICTS)]

    def mails(self, *, status: str, limit: int = 100) -> list[MailRow]:
        """``StateStore.mails`` of one status."""
        return [mail_from_row(row) for row in self._rows(MAILS_WITH_STATUS, (status, limit, 0))]

    def _tuples(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        return self._connection.execute(sql, params).fetchall()

    def _rows(self, sql: str, params: Sequence[Any] = ()) -> list[Mapping[str, Any]]:
        cursor = self._connection.execute(sql, params)
        names = [column[0] for column in cursor.description]
        return [
            {
                name: _utc(value) if name in TIMES else value
                for name, value in zip(names, row, strict=True)
            }
            for row in cursor.fetchall()
        ]


def _is_current(connection: sqlite3.Connection) -> bool:
    # ``syncd.store._db.is_current``: no version table (a new store), or another revision.
    found = connection.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name = ?", (VERSION_TABLE,)
    ).fetchall()
    if not found:
        return False
    versions = connection.execute(VERSIONS).fetchall()
    return [version for (version,) in versions] == [head_revision()]


def _utc(value: str | None) -> datetime | None:
    # What SQLAlchemy's SQLite DATETIME (``datetime.fromisoformat``) and ``UtcDateTime``
    # make of the stored text: an aware UTC datetime.
    if value is None:
        return None
    parsed = datetime.fromisoformat(value)
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
