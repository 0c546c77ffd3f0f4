"""Add ``b2b_account.customer_group``: the ERP's contractor group, by name (issue 11, item 6).

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01

Nullable and without a default, so adding it is a metadata-only change on every backend
(no table rewrite of a large portal); syncd fills it on the next cycle.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Add the column (batch mode: SQLite alters a table by copying it), unless tables made
    by hand from the spec (stamped at 0001 as an older install) already have it."""
    present = {c["name"] for c in sa.inspect(op.get_bind()).get_columns("b2b_account")}
    if "customer_group" in present:
        return
    with op.batch_alter_table("b2b_account") as batch:
        batch.add_column(sa.Column("customer_group", sa.String(100), nullable=True))


def downgrade() -> None:
    """Drop the column."""
    with op.batch_alter_table("b2b_account") as batch:
        batch.drop_column("customer_group")
