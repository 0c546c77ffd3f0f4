"""The state store's compact reads for a quiet cycle, against SQLite, PostgreSQL, MariaDB."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from syncd.store import INACTIVE, UNDIGESTED, StateStore
from tests.integration.test_store import make_binding


@pytest.fixture
def store(db_url: str) -> Iterator[StateStore]:
    """A migrated store on each backend; asserts no connection is left checked out."""
    state = StateStore.open(db_url)
    state.migrate()
    yield state
    assert state.engine.pool.checkedout() == 0
    state.close()


def test_index_holds_digests_and_marks_inactive_and_undigested(store: StateStore) -> None:
    """binding_entries gives key and digest; inactive and digest-less bindings never match one."""
    store.commit_batch(
        upserts=[
            make_binding("1", source_fingerprint="r2:aa"),
            make_binding("2", status="inactive", source_fingerprint="r2:bb"),
            make_binding("3"),
        ]
    )
    assert sorted(store.binding_entries()) == [("1", "r2:aa"), ("2", INACTIVE), ("3", UNDIGESTED)]


def test_bindings_by_keys_and_by_logins_in_chunks(store: StateStore) -> None:
    """Bindings are found by key and by login, however many are asked for (chunked IN)."""
    store.commit_batch(inserts=[make_binding(str(k)) for k in range(2500)])
    keys = [str(k) for k in range(0, 2500, 2)] + ["missing"]
    assert sorted(store.load_bindings(keys)) == sorted(keys[:-1])
    found = store.bindings_with_logins([f"k{k}@example.com" for k in (7, 1999, 2499)])
    assert sorted(found) == ["1999", "2499", "7"]
    assert store.load_bindings([]) == {}
