"""The state store's tables as SQLAlchemy Core objects, and the column types they share.

This is the schema the code reads and writes. The alembic migrations in
``syncd/migrations/versions`` create it; ``tests/integration/test_store.py`` checks that
the two never drift apart. Every table is prefixed ``syncd_`` so that the store may share a
database with other applications (or with the SQL portal in a demo).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import mysql
from sqlalchemy.engine.interfaces import Dialect

# Column sizes: MariaDB needs a length for every indexed VARCHAR, and a login is an e-mail
# address (RFC 5321 caps it at 320 characters; utf8mb4 makes that 1,280 index bytes).
KEY_LEN = 100
LOGIN_LEN = 320
SHORT_LEN = 32
NAME_LEN = 200


class UtcDateTime(sa.types.TypeDecorator[datetime]):
    """A timestamp that goes in and comes out as timezone-aware UTC on every backend.

    PostgreSQL stores ``timestamptz``; SQLite and MariaDB have no time zones, so the value
    is stored as naive UTC and marked UTC again on the way out. Microseconds are kept on
    MariaDB (``DATETIME(6)``) so that lease expiries compare exactly.
    """

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> sa.types.TypeEngine[Any]:
        if dialect.name in ("mysql", "mariadb"):
            return dialect.type_descriptor(mysql.DATETIME(fsp=6))
        return dialect.type_descriptor(sa.DateTime(timezone=True))

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            message = f"naive datetime {value!r} given to the state store; pass aware UTC times"
            raise ValueError(message)
        value = value.astimezone(UTC)
        return value if dialect.name == "postgresql" else value.replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


# JSON documents are stored as text: every backend reads them the same way, and the store
# decides the encoding (sorted keys, UTF-8). MEDIUMTEXT lifts MariaDB's 64 KiB TEXT cap.
JsonText = sa.Text().with_variant(mysql.MEDIUMTEXT(), "mysql", "mariadb")
# Autoincrement ids: SQLite only autoincrements an INTEGER PRIMARY KEY.
RowId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

metadata = sa.MetaData()

binding = sa.Table(
    "syncd_binding",
    metadata,
    sa.Column("contractor_key", sa.String(KEY_LEN), primary_key=True),
    sa.Column("account_id", sa.String(KEY_LEN), nullable=False),
    sa.Column("login", sa.String(LOGIN_LEN), nullable=False),
    sa.Column("fingerprint", sa.String(64), nullable=False),
    sa.Column("fields_json", JsonText, nullable=False),
    sa.Column("status", sa.String(SHORT_LEN), nullable=False),
    sa.Column("erp_blocked", sa.Boolean(), nullable=False),
    sa.Column("support_block_reason", sa.Text(), nullable=True),
    sa.Column("support_blocked_by", sa.String(NAME_LEN), nullable=True),
    sa.Column("activated", sa.Boolean(), nullable=False),
    sa.Column("created_at", UtcDateTime(), nullable=False),
    sa.Column("updated_at", UtcDateTime(), nullable=False),
    sa.Column("source_fingerprint", sa.String(64), nullable=True),
    sa.Index("ix_syncd_binding_login", "login", unique=True),
    sa.Index("ix_syncd_binding_account_id", "account_id"),
)

run = sa.Table(
    "syncd_run",
    metadata,
    sa.Column("id", RowId, primary_key=True, autoincrement=True),
    sa.Column("run_id", sa.String(64), nullable=False),
    sa.Column("kind", sa.String(SHORT_LEN), nullable=False),
    sa.Column("trigger", sa.String(SHORT_LEN), nullable=False),
    sa.Column("started_at", UtcDateTime(), nullable=False),
    sa.Column("finished_at", UtcDateTime(), nullable=True),
    sa.Column("status", sa.String(SHORT_LEN), nullable=False),
    sa.Column("summary_json", JsonText, nullable=True),
    sa.Column("error", sa.Text(), nullable=True),
    sa.Index("ix_syncd_run_run_id", "run_id", unique=True),
)

audit = sa.Table(
    "syncd_audit",
    metadata,
    sa.Column("id", RowId, primary_key=True, autoincrement=True),
    sa.Column("at", UtcDateTime(), nullable=False),
    sa.Column("run_id", sa.String(64), nullable=True),
    sa.Column("actor", sa.String(NAME_LEN), nullable=False),
    sa.Column("contractor_key", sa.String(KEY_LEN), nullable=False),
    sa.Column("login", sa.String(LOGIN_LEN), nullable=True),
    sa.Column("action", sa.String(SHORT_LEN), nullable=False),
    sa.Column("result", sa.String(SHORT_LEN), nullable=False),
    sa.Column("detail_json", JsonText, nullable=False),
    sa.Index("ix_syncd_audit_key", "contractor_key"),
    sa.Index("ix_syncd_audit_at", "at"),
)

outbox = sa.Table(
    "syncd_outbox",
    metadata,
    sa.Column("id", RowId, primary_key=True, autoincrement=True),
    sa.Column("created_at", UtcDateTime(), nullable=False),
    sa.Column("not_before", UtcDateTime(), nullable=False),
    sa.Column("contractor_key", sa.String(KEY_LEN), nullable=False),
    sa.Column("account_id", sa.String(KEY_LEN), nullable=False),
    sa.Column("recipient", sa.String(LOGIN_LEN), nullable=False),
    sa.Column("template", sa.String(SHORT_LEN), nullable=False),
    sa.Column("language", sa.String(8), nullable=False),
    sa.Column("status", sa.String(SHORT_LEN), nullable=False),
    sa.Column("attempts", sa.Integer(), nullable=False),
    sa.Column("last_error", sa.Text(), nullable=True),
    sa.Column("sent_at", UtcDateTime(), nullable=True),
    sa.Column("context_json", JsonText, nullable=False),
    sa.Index("ix_syncd_outbox_status_not_before", "status", "not_before"),
    sa.Index("ix_syncd_outbox_key_status", "contractor_key", "status"),
)

conflict = sa.Table(
    "syncd_conflict",
    metadata,
    sa.Column("contractor_key", sa.String(KEY_LEN), primary_key=True),
    sa.Column("symbol", sa.String(NAME_LEN), nullable=False),
    sa.Column("name", sa.Text(), nullable=False),
    sa.Column("login", sa.String(LOGIN_LEN), nullable=True),
    sa.Column("kind", sa.String(SHORT_LEN), nullable=False),
    sa.Column("reason", sa.Text(), nullable=False),
    sa.Column("first_seen", UtcDateTime(), nullable=False),
)

# A record the portal refused, with its backoff (see syncd.backoff); deleted on success.
record_backoff = sa.Table(
    "syncd_record_backoff",
    metadata,
    sa.Column("contractor_key", sa.String(KEY_LEN), primary_key=True),
    sa.Column("login", sa.String(LOGIN_LEN), nullable=True),
    sa.Column("action", sa.String(SHORT_LEN), nullable=False),
    sa.Column("failures", sa.Integer(), nullable=False),
    sa.Column("first_failed_at", UtcDateTime(), nullable=False),
    sa.Column("last_failed_at", UtcDateTime(), nullable=False),
    sa.Column("retry_after", UtcDateTime(), nullable=True),
    sa.Column("quarantined", sa.Boolean(), nullable=False),
    sa.Column("fingerprint", sa.String(64), nullable=True),
    sa.Column("last_error", sa.Text(), nullable=False),
)

lease = sa.Table(
    "syncd_lease",
    metadata,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("owner", sa.String(NAME_LEN), nullable=False),
    sa.Column("acquired_at", UtcDateTime(), nullable=False),
    sa.Column("expires_at", UtcDateTime(), nullable=False),
)
