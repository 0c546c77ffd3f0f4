"""Create the state store: bindings, runs, audit trail, mail outbox, conflicts and lease.

Revision ID: 0001
Revises:
Create Date: 2025-01-01

The column types are spelled out here rather than imported from ``syncd.store.schema``:
a migration must keep creating the same tables after the code's schema moves on.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def _ts() -> sa.types.TypeEngine[Any]:
    return sa.DateTime(timezone=True).with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")


def _json() -> sa.types.TypeEngine[Any]:
    return sa.Text().with_variant(mysql.MEDIUMTEXT(), "mysql", "mariadb")


def _row_id() -> sa.types.TypeEngine[Any]:
    return sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    """Create every table and index of the first schema."""
    op.create_table(
        "syncd_binding",
        sa.Column("contractor_key", sa.String(100), primary_key=True),
        sa.Column("account_id", sa.String(100), nullable=False),
        sa.Column("login", sa.String(320), nullable=False),
        sa.Column("fingerprint", sa.String(64), nullable=False),
        sa.Column("fields_json", _json(), nullable=False),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("erp_blocked", sa.Boolean(), nullable=False),
        sa.Column("support_block_reason", sa.Text(), nullable=True),
        sa.Column("support_blocked_by", sa.String(200), nullable=True),
        sa.Column("activated", sa.Boolean(), nullable=False),
        sa.Column("created_at", _ts(), nullable=False),
        sa.Column("updated_at", _ts(), nullable=False),
    )
    op.create_index("ix_syncd_binding_login", "syncd_binding", ["login"], unique=True)
    op.create_index("ix_syncd_binding_account_id", "syncd_binding", ["account_id"])

    op.create_table(
        "syncd_run",
        sa.Column("id", _row_id(), primary_key=True, autoincrement=True),
        sa.Column("run_id", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("trigger", sa.String(32), nullable=False),
        sa.Column("started_at", _ts(), nullable=False),
        sa.Column("finished_at", _ts(), nullable=True),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("summary_json", _json(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
    )
    op.create_index("ix_syncd_run_run_id", "syncd_run", ["run_id"], unique=True)

    op.create_table(
        "syncd_audit",
        sa.Column("id", _row_id(), primary_key=True, autoincrement=True),
        sa.Column("at", _ts(), nullable=False),
        sa.Column("run_id", sa.String(64), nullable=True),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("contractor_key", sa.String(100), nullable=False),
        sa.Column("login", sa.String(320), nullable=True),
        sa.Column("action", sa.String(32), nullable=False),
        sa.Column("result", sa.String(32), nullable=False),
        sa.Column("detail_json", _json(), nullable=False),
    )
    op.create_index("ix_syncd_audit_key", "syncd_audit", ["contractor_key"])
    op.create_index("ix_syncd_audit_at", "syncd_audit", ["at"])

    op.create_table(
        "syncd_outbox",
        sa.Column("id", _row_id(), primary_key=True, autoincrement=True),
        sa.Column("created_at", _ts(), nullable=False),
        sa.Column("not_before", _ts(), nullable=False),
        sa.Column("contractor_key", sa.String(100), nullable=False),
        sa.Column("account_id", sa.String(100), nullable=False),
        sa.Column("recipient", sa.String(320), nullable=False),
        sa.Column("template", sa.String(32), nullable=False),
        sa.Column("language", sa.String(8), nullable=False),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("sent_at", _ts(), nullable=True),
        sa.Column("context_json", _json(), nullable=False),
    )
    op.create_index("ix_syncd_outbox_status_not_before", "syncd_outbox", ["status", "not_before"])
    op.create_index("ix_syncd_outbox_key", "syncd_outbox", ["contractor_key"])

    op.create_table(
        "syncd_conflict",
        sa.Column("contractor_key", sa.String(100), primary_key=True),
        sa.Column("symbol", sa.String(200), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("login", sa.String(320), nullable=True),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("first_seen", _ts(), nullable=False),
    )

    op.create_table(
        "syncd_lease",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("owner", sa.String(200), nullable=False),
        sa.Column("acquired_at", _ts(), nullable=False),
        sa.Column("expires_at", _ts(), nullable=False),
    )


def downgrade() -> None:
    """Drop everything (only for development: the state store is syncd's memory)."""
    for table in (
        "syncd_lease",
        "syncd_conflict",
        "syncd_outbox",
        "syncd_audit",
        "syncd_run",
        "syncd_binding",
    ):
        op.drop_table(table)
