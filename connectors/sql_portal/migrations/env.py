"""Alembic's entry point for the SQL portal's tables: runs migrations on the given connection.

syncd never runs these migrations from the command line. ``SqlPortal.ensure_ready`` opens a
connection, takes the backend's migration lock and passes the connection in
``config.attributes``. The version table is ``syncd_portal_version`` so that it never
collides with the portal application's own ``alembic_version`` in the same database.
"""

from __future__ import annotations

from alembic import context

VERSION_TABLE = "syncd_portal_version"

connection = context.config.attributes.get("connection")
if connection is None:
    message = "portal migrations run only through SqlPortal.ensure_ready(), which passes one"
    raise RuntimeError(message)

context.configure(
    connection=connection,
    target_metadata=None,
    version_table=VERSION_TABLE,
    render_as_batch=True,  # SQLite can only ALTER through batch (copy-and-move) operations
)
with context.begin_transaction():
    context.run_migrations()
