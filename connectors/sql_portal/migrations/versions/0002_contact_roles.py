"""Contact persons' roles: authorised to receive mail, authorised to represent (issue 11).

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01

Both columns are booleans defaulting to false, so existing contact rows need no backfill:
the next cycle writes the roles the ERP holds (the contacts are synced fields).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

ROLES = ("receives_mail", "represents")


def upgrade() -> None:
    """Add the two role columns to ``b2b_contact``. A hand-made install without the table
    is left for ``_migrate``'s column check to name what is missing; one made from the
    current spec (stamped at 0001 as an older install) may have them already."""
    inspector = sa.inspect(op.get_bind())
    if not inspector.has_table("b2b_contact"):
        return
    present = {c["name"] for c in inspector.get_columns("b2b_contact")}
    missing = [name for name in ROLES if name not in present]
    if not missing:
        return
    with op.batch_alter_table("b2b_contact") as batch:
        for name in missing:
            batch.add_column(sa.Column(name, sa.Boolean, nullable=False, server_default=sa.false()))


def downgrade() -> None:
    """Drop the role columns again."""
    with op.batch_alter_table("b2b_contact") as batch:
        for name in reversed(ROLES):
            batch.drop_column(name)
