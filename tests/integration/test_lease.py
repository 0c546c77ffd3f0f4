"""The cycle lease on real SQLite, PostgreSQL and MariaDB: two owners never hold it at once."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from syncd.errors import LockUnavailable
from syncd.lease import Lease, default_owner
from syncd.store import StateStore

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
TTL = timedelta(seconds=60)
REPO = Path(__file__).resolve().parents[2]


class Clock:
    """A settable clock shared by both "processes"; ``sleep`` moves it instead of waiting."""

    def __init__(self) -> None:
        self.now = T0
        self.slept: list[float] = []

    def __call__(self) -> datetime:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += timedelta(seconds=seconds)


@pytest.fixture
def clock() -> Clock:
    """A clock fixed at T0."""
    return Clock()


@pytest.fixture
def stores(db_url: str, clock: Clock) -> Iterator[tuple[StateStore, StateStore]]:
    """Two StateStore objects on one database: what two syncd processes see."""
    first = StateStore.open(db_url, clock=clock)
    first.migrate()
    second = StateStore.open(db_url, clock=clock)
    yield first, second
    for state in (first, second):
        assert state.engine.pool.checkedout() == 0
        state.close()


def lease(store: StateStore, owner: str, clock: Clock) -> Lease:
    return Lease(store, owner=owner, ttl=TTL, sleep=clock.sleep)


def test_two_owners_exclude_each_other(stores: tuple[StateStore, StateStore], clock: Clock) -> None:
    """While A holds the lease, B is refused with a message naming A and its expiry."""
    a, b = lease(stores[0], "host-a:1:aa", clock), lease(stores[1], "host-b:2:bb", clock)
    a.acquire()
    with pytest.raises(LockUnavailable, match="host-a:1:aa") as caught:
        b.acquire()
    assert "2025-03-01T12:01:00" in str(caught.value)
    assert b.holder() == ("host-a:1:aa", T0 + TTL)
    a.acquire()  # the owner may take it again: that is a renewal


def test_release_lets_the_other_in(stores: tuple[StateStore, StateStore], clock: Clock) -> None:
    """After A releases, B acquires at once and nobody is left holding A's claim."""
    a, b = lease(stores[0], "a", clock), lease(stores[1], "b", clock)
    a.acquire()
    a.release()
    assert b.holder() is None
    b.acquire()
    assert a.holder() == ("b", T0 + TTL)


def test_expired_lease_is_taken_over(stores: tuple[StateStore, StateStore], clock: Clock) -> None:
    """A lease past its expiry goes to the next asker, and its old owner cannot renew it."""
    a, b = lease(stores[0], "a", clock), lease(stores[1], "b", clock)
    a.acquire()
    clock.now += TTL + timedelta(seconds=1)
    assert a.holder() is None
    b.acquire()
    with pytest.raises(LockUnavailable, match="lost"):
        a.renew()
    assert not a.held
    a.release()  # releasing a lost lease must not free B's
    assert b.holder() == ("b", clock.now + TTL)


def test_waiting_gives_up_after_wait(stores: tuple[StateStore, StateStore], clock: Clock) -> None:
    """acquire(wait) polls every `poll` and raises LockUnavailable once `wait` has passed."""
    a, b = lease(stores[0], "a", clock), lease(stores[1], "b", clock)
    a.acquire()
    with pytest.raises(LockUnavailable, match="waiting 5s"):
        b.acquire(timedelta(seconds=5))
    assert clock.slept == [1.0] * 5


def test_waiting_succeeds_when_the_lease_expires(
    stores: tuple[StateStore, StateStore], clock: Clock
) -> None:
    """A waiter gets the lease as soon as the holder's claim runs out within `wait`."""
    a = Lease(stores[0], owner="a", ttl=timedelta(seconds=3), sleep=clock.sleep)
    b = lease(stores[1], "b", clock)
    a.acquire()
    b.acquire(timedelta(seconds=10))
    assert sum(clock.slept) == 4.0  # expired at 3s; the lease is free strictly after it
    assert b.holder() == ("b", clock.now + TTL)


def test_renew_extends_the_lease(stores: tuple[StateStore, StateStore], clock: Clock) -> None:
    """renew() pushes the expiry ttl past now, so the lease outlives its first ttl."""
    a, b = lease(stores[0], "a", clock), lease(stores[1], "b", clock)
    a.acquire()
    clock.now += timedelta(seconds=50)
    a.renew()
    clock.now += timedelta(seconds=50)
    with pytest.raises(LockUnavailable):
        b.acquire()
    assert a.holder() == ("a", T0 + timedelta(seconds=110))


def test_context_manager_releases_on_error(
    stores: tuple[StateStore, StateStore], clock: Clock
) -> None:
    """Leaving `with lease.acquire(...)` by an exception still releases the lease."""
    a, b = lease(stores[0], "a", clock), lease(stores[1], "b", clock)
    seen: list[tuple[str, datetime] | None] = []

    def crash_while_holding() -> None:
        with a.acquire(timedelta(seconds=1)):
            seen.append(b.holder())
            raise RuntimeError

    with pytest.raises(RuntimeError):
        crash_while_holding()
    assert seen == [("a", T0 + TTL)]
    with b:
        assert b.held
    assert not b.held
    assert a.holder() is None


def test_simultaneous_askers_get_it_once(db_url: str) -> None:
    """Eight processes asking for a fresh lease at once: exactly one gets it."""
    stores = [StateStore.open(db_url) for _ in range(8)]
    stores[0].migrate()
    try:

        def ask(store: StateStore) -> bool:
            try:
                Lease(store).acquire()
            except LockUnavailable:
                return False
            return True

        with ThreadPoolExecutor(len(stores)) as pool:
            assert sorted(pool.map(ask, stores)) == [False] * 7 + [True]
    finally:
        for state in stores:
            state.close()


def test_default_owner_names_host_and_pid() -> None:
    """The default owner is hostname:pid:random, unique per Lease."""
    owner = default_owner()
    host, pid, token = owner.split(":")
    assert (int(pid), len(token)) == (os.getpid(), 8)
    assert host
    assert owner != default_owner()


CHILD = """
import sys
from datetime import timedelta
from syncd.lease import Lease
from syncd.store import StateStore

store = StateStore.open(sys.argv[1])
lease = Lease(store, owner="child-process", ttl=timedelta(minutes=5))
lease.acquire()
print("held", flush=True)
sys.stdin.readline()
lease.release()
store.close()
"""


@pytest.mark.postgres
def test_a_second_process_is_excluded_on_postgres(pg_url: str) -> None:
    """A real second process holding the lease keeps this one out until it releases it."""
    store = StateStore.open(pg_url)
    store.migrate()
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    child = subprocess.Popen(  # noqa: S603 - runs this interpreter on a fixed script
        [sys.executable, "-c", CHILD, pg_url],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert child.stdout is not None
        assert child.stdin is not None
        assert child.stdout.readline().strip() == "held"
        mine = Lease(store, owner="parent")
        with pytest.raises(LockUnavailable, match="child-process"):
            mine.acquire()
        child.stdin.write("\n")
        child.stdin.close()
        assert child.wait(timeout=30) == 0
        with mine.acquire():
            assert mine.holder() is not None
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
        if child.stdout is not None:
            child.stdout.close()
        assert store.engine.pool.checkedout() == 0
        store.close()
