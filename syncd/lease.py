"""The cycle lease: makes sure two syncd processes never run a cycle at the same time.

A row in ``syncd_lease`` names the owner and when its claim expires. Taking the lease is a
compare-and-set: one ``UPDATE ... WHERE name = :n AND (owner = :me OR expires_at < :now)``,
which the database applies atomically on SQLite and PostgreSQL alike, so no two owners can
both see their update succeed. A process that dies keeps the lease only until it expires
(``ttl``); a live owner calls ``renew()`` during long cycles.
"""

from __future__ import annotations

import os
import secrets
import socket
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from types import TracebackType

import sqlalchemy as sa

from syncd.errors import LockUnavailable
from syncd.store import StateStore
from syncd.store._db import transaction
from syncd.store.schema import lease


def default_owner() -> str:
    """``hostname:pid:random``: unique per process, and tells an operator where it runs."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"


class Lease:
    """A named, expiring lease in the state store. Use ``with lease.acquire(wait):``."""

    def __init__(
        self,
        store: StateStore,
        name: str = "cycle",
        *,
        owner: str | None = None,
        ttl: timedelta = timedelta(seconds=60),
        clock: Callable[[], datetime] | None = None,
        sleep: Callable[[float], object] = time.sleep,
        poll: timedelta = timedelta(seconds=1),
    ) -> None:
        self.store = store
        self.name = name
        self.owner = owner or default_owner()
        self.ttl = ttl
        self._clock = clock or store.clock
        self._sleep = sleep
        self._poll = poll
        self._held = False

    @property
    def held(self) -> bool:
        """Whether this object believes it holds the lease (it may since have expired)."""
        return self._held

    def acquire(self, wait: timedelta = timedelta(0)) -> Lease:
        """Take the lease, polling for up to ``wait`` while someone else holds it.

        Returns ``self`` so that ``with lease.acquire(wait):`` releases it at the end.
        Raises ``LockUnavailable`` naming the holder when ``wait`` runs out, and
        ``UnavailableError`` when the store cannot be reached.
        """
        deadline = self._clock() + wait
        while not self._try_take():
            now = self._clock()
            if now >= deadline:
                raise LockUnavailable(self._busy_message(wait))
            self._sleep(min(self._poll, deadline - now).total_seconds())
        self._held = True
        return self

    def renew(self) -> None:
        """Push the expiry ``ttl`` past now. Raises ``LockUnavailable`` if the lease was lost
        (it expired and another process took it): the caller must stop its cycle."""
        now = self._clock()
        query = (
            sa.update(lease)
            .where(lease.c.name == self.name, lease.c.owner == self.owner)
            .values(expires_at=now + self.ttl)
        )
        with self.store.begin() as connection:
            renewed = connection.execute(query).rowcount == 1
        if not renewed:
            self._held = False
            message = (
                f"lost the {self.name!r} lease of {self.owner} (it expired and "
                f"{self._holder_text()} took it): stopping; raise the lease ttl if cycles "
                f"run longer than it"
            )
            raise LockUnavailable(message)

    def release(self) -> None:
        """Give the lease up (a no-op when another owner has it by now)."""
        query = sa.delete(lease).where(lease.c.name == self.name, lease.c.owner == self.owner)
        with self.store.begin() as connection:
            connection.execute(query)
        self._held = False

    def holder(self) -> tuple[str, datetime] | None:
        """The current owner and its expiry, or ``None`` when nobody holds a live lease."""
        query = sa.select(lease.c.owner, lease.c.expires_at).where(lease.c.name == self.name)
        with self.store.begin(write=False) as connection:
            row = connection.execute(query).first()
        if row is None or row.expires_at < self._clock():
            return None
        return row.owner, row.expires_at

    def __enter__(self) -> Lease:
        if not self._held:
            self.acquire()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._held:
            self.release()

    def _try_take(self) -> bool:
        now = self._clock()
        values = {"owner": self.owner, "acquired_at": now, "expires_at": now + self.ttl}
        take = (
            sa.update(lease)
            .where(
                lease.c.name == self.name,
                sa.or_(lease.c.owner == self.owner, lease.c.expires_at < now),
            )
            .values(values)
        )
        with self.store.begin() as connection:
            if connection.execute(take).rowcount == 1:
                return True
            exists = connection.execute(
                sa.select(lease.c.name).where(lease.c.name == self.name)
            ).first()
        if exists is not None:
            return False
        with self.store.guard("taking the lease"):
            try:
                with transaction(self.store.engine, write=True) as connection:
                    connection.execute(sa.insert(lease).values(name=self.name, **values))
            except sa.exc.IntegrityError:
                return False  # another process inserted the row first: it holds the lease
        return True

    def _holder_text(self) -> str:
        current = self.holder()
        if current is None:
            return "another process"
        owner, expires_at = current
        return f"{owner} (until {expires_at.isoformat(timespec='seconds')})"

    def _busy_message(self, wait: timedelta) -> str:
        return (
            f"the {self.name!r} lease is held by {self._holder_text()}; gave up after "
            f"waiting {wait.total_seconds():g}s; another syncd is running a cycle: try again "
            f"when it finishes, or, if that process is gone, when its lease expires"
        )
