"""The state store's compact reads for a quiet cycle, against SQLite, PostgreSQL, MariaDB."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from syncd._binding_index import ABSENT, DIFFERENT, SAME, BindingIndex
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


def test_compact_index_over_the_store_finds_changes_and_removals(store: StateStore) -> None:
    """Built from the streamed rows (more than one chunk), the index answers by key and
    names the bindings the ERP did not return by reading the rows again."""
    digests = {str(k): "r3:" + f"{k:032x}" for k in range(2500)}
    store.commit_batch(inserts=[make_binding(k, source_fingerprint=d) for k, d in digests.items()])
    index = BindingIndex(store.binding_entries, watch={"7", "nope"})
    assert (len(index), index.managed, index.bound) == (2500, 2500, {"7"})
    assert index.compare("7", digests["7"]) == SAME
    assert index.compare("8", digests["7"]) == DIFFERENT
    assert index.compare("nope", digests["7"]) == ABSENT
    assert sorted(index.gone(loaded={"8"})) == sorted(set(digests) - {"7", "8"})
