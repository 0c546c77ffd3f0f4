"""The state store's alembic migrations; ``syncd.store.StateStore.migrate`` runs them."""
