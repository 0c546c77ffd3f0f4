"""Remember the digest of the raw ERP row each binding was applied from.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22

A light cycle skips mapping (e-mail and NIP validation, most of its CPU) for contractors
whose raw ERP row is unchanged. Existing bindings start with NULL and are filled by the
next cycle, once, without touching the portal.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Add the nullable ``source_fingerprint`` column."""
    op.add_column("syncd_binding", sa.Column("source_fingerprint", sa.String(64), nullable=True))


def downgrade() -> None:
    """Drop it again."""
    with op.batch_alter_table("syncd_binding") as batch:
        batch.drop_column("source_fingerprint")
