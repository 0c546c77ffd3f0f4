"""Index the outbox by (contractor key, status).

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22

Cancelling a removed contractor's pending mail filters on both columns. With only the
single-column key index SQLite preferred the (status, not_before) index and scanned every
pending mail once per removed contractor: 93 s for 1,774 removals among 177,000 pending
mails in the benchmark, 0.17 s with this index.
"""

from __future__ import annotations

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Replace the key index by a (key, status) index that also serves lookups by key."""
    op.create_index("ix_syncd_outbox_key_status", "syncd_outbox", ["contractor_key", "status"])
    op.drop_index("ix_syncd_outbox_key", table_name="syncd_outbox")


def downgrade() -> None:
    """Restore the single-column key index."""
    op.create_index("ix_syncd_outbox_key", "syncd_outbox", ["contractor_key"])
    op.drop_index("ix_syncd_outbox_key_status", table_name="syncd_outbox")
