"""Create the portal's account and contact tables (spec section 5).

Revision ID: 0001
Revises:
Create Date: 2025-01-01

The column types are spelled out here rather than imported from
``connectors.sql_portal.schema``: a migration must keep creating the same tables after the
code's schema moves on.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def _ts() -> sa.types.TypeEngine[datetime]:
    return sa.DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")


def upgrade() -> None:
    """Create ``b2b_account`` and ``b2b_contact`` with their indexes."""
    op.create_table(
        "b2b_account",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("login", sa.String(254), nullable=False),
        sa.Column("contractor_key", sa.String(64), nullable=True),
        sa.Column("symbol", sa.String(64), nullable=True),
        sa.Column("name", sa.String(255), nullable=True),
        sa.Column("tax_id", sa.String(32), nullable=True),
        sa.Column("email", sa.String(254), nullable=True),
        sa.Column("phone", sa.String(64), nullable=True),
        sa.Column("address", sa.String(500), nullable=True),
        sa.Column("price_level", sa.String(64), nullable=True),
        sa.Column("discount", sa.Numeric(5, 2), nullable=False, server_default="0"),
        sa.Column("owner_name", sa.String(255), nullable=True),
        sa.Column("owner_email", sa.String(254), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("block_reason", sa.String(500), nullable=True),
        sa.Column("password_hash", sa.String(255), nullable=True),
        sa.Column("created_at", _ts(), nullable=False),
        sa.Column("updated_at", _ts(), nullable=False),
        sa.UniqueConstraint("login", name="uq_b2b_account_login"),
        sqlite_autoincrement=True,  # never reuse a deleted account's id (spec section 5)
    )
    op.create_index("ix_b2b_account_contractor_key", "b2b_account", ["contractor_key"])
    op.create_table(
        "b2b_contact",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column(
            "account_id",
            sa.Integer,
            sa.ForeignKey("b2b_account.id", ondelete="CASCADE", name="fk_b2b_contact_account_id"),
            nullable=False,
        ),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("email", sa.String(254), nullable=True),
        sa.Column("phone", sa.String(64), nullable=True),
        sa.Column("position", sa.String(128), nullable=True),
        sa.Column("is_primary", sa.Boolean, nullable=False, server_default=sa.false()),
        sqlite_autoincrement=True,
    )
    # MariaDB drops the index it made implicitly for the foreign key once this one exists.
    op.create_index("ix_b2b_contact_account_id", "b2b_contact", ["account_id"])


def downgrade() -> None:
    """Drop both tables (contacts first, for the foreign key)."""
    op.drop_table("b2b_contact")
    op.drop_table("b2b_account")
