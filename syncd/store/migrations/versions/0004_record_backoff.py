"""Remember the records the portal keeps refusing: their backoff and quarantine.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-29

One row per contractor whose last portal write failed: how many times in a row, the last
error, when it may be tried again and the ERP row (its digest) that failed. A cycle reads
the whole table in one query to skip the records that are not due; a success deletes the
row. After ``safety.quarantine_after`` failures the record is quarantined: tried again only
when its ERP row changes or support asks for it (``syncd sync --contractor K``).
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def _ts() -> sa.types.TypeEngine[Any]:
    return sa.DateTime(timezone=True).with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")


def upgrade() -> None:
    """Create ``syncd_record_backoff``."""
    op.create_table(
        "syncd_record_backoff",
        sa.Column("contractor_key", sa.String(100), primary_key=True),
        sa.Column("login", sa.String(320), nullable=True),
        sa.Column("action", sa.String(32), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("first_failed_at", _ts(), nullable=False),
        sa.Column("last_failed_at", _ts(), nullable=False),
        sa.Column("retry_after", _ts(), nullable=True),
        sa.Column("quarantined", sa.Boolean(), nullable=False),
        sa.Column("fingerprint", sa.String(64), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=False),
    )


def downgrade() -> None:
    """Drop it again (records are then retried every cycle, as before)."""
    op.drop_table("syncd_record_backoff")
