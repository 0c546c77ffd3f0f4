"""Alembic's entry point for the state store: runs migrations on the connection it is given.

syncd never runs alembic from the command line. ``StateStore.migrate`` opens a connection,
takes the backend's migration lock and passes the connection in ``config.attributes``;
this script only configures the context around it. Offline (SQL script) mode is not
supported because the store always migrates itself on start.
"""

from __future__ import annotations

from alembic import context

from syncd.store.schema import metadata

VERSION_TABLE = "syncd_alembic_version"

connection = context.config.attributes.get("connection")
if connection is None:
    message = "syncd migrations run only through StateStore.migrate(), which passes a connection"
    raise RuntimeError(message)

context.configure(
    connection=connection,
    target_metadata=metadata,
    version_table=VERSION_TABLE,
    render_as_batch=True,  # SQLite can only ALTER through batch (copy-and-move) operations
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
