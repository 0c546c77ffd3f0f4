"""Which of two daemons on one state store does the work: the ``daemon`` lease.

Two ``syncd run`` on one PostgreSQL state store make an active/standby pair. The active one
holds the ``daemon`` lease for as long as it lives, renewing it from its own thread every
third of the ttl; the standby tries to take it at each of its light-cycle ticks and does
nothing else. When the active one dies (kill -9, a lost host), its lease lapses ``ttl``
after the last renewal and the standby takes over at its next tick: within ``ttl`` plus
one interval, which is two intervals since the ttl is the interval (see ``lease_ttl``).

This lease decides who *schedules* work; the ``cycle`` lease (``syncd.cycle``) still
guards every single cycle, so a manual ``syncd sync`` and a daemon never overlap, and a
daemon that lost this lease while a cycle ran cannot collide with its successor.
"""

from __future__ import annotations

import threading
from datetime import timedelta

import structlog

from syncd.errors import LockUnavailable, UnavailableError
from syncd.lease import Lease, default_owner
from syncd.store import StateStore

log = structlog.get_logger(__name__)

NAME = "daemon"
# A floor for tiny test intervals: below it a slow database round trip could cost the lead.
MIN_TTL = timedelta(seconds=2)


def lease_ttl(interval: timedelta) -> timedelta:
    """The daemon lease's ttl for a light-cycle ``interval``: one interval (at least 2 s).

    Renewed every third of it, so two renewals may fail before the lead is lost; short
    enough that a standby takes over within two intervals of the active daemon's death.
    """
    return max(interval, MIN_TTL)


class Leadership:
    """This daemon's claim on the ``daemon`` lease. Thread-safe: the work thread asks to
    lead, the keeper thread renews, the main thread resigns."""

    def __init__(self, store: StateStore, ttl: timedelta) -> None:
        self.owner = default_owner()
        self._lock = threading.Lock()
        self._lease = Lease(store, NAME, owner=self.owner, ttl=ttl)
        self._leading = False
        self._told_standby = False

    @property
    def leading(self) -> bool:
        """Whether this daemon is the active one (as of the last take or renewal)."""
        return self._leading

    def attach(self, store: StateStore, ttl: timedelta) -> None:
        """Follow a reloaded configuration: same owner, possibly another store or ttl."""
        with self._lock:
            old = self._lease
            self._lease = Lease(store, NAME, owner=self.owner, ttl=ttl)
            if self._leading and old.store.name != store.name:
                self._release(old)  # another database: give the old one up at once
                self._leading = False

    def try_lead(self) -> bool:
        """Take (or keep) the lead without waiting; False while another daemon has it."""
        with self._lock:
            if self._leading:
                return True
            try:
                self._lease.acquire(wait=timedelta(0))
            except LockUnavailable:
                if not self._told_standby:
                    log.info("daemon.standby", active=self._holder())
                    self._told_standby = True
                return False
            self._leading, self._told_standby = True, False
            log.info("daemon.active", owner=self.owner)
            return True

    def renew(self) -> None:
        """Keep the lead alive; on losing it (it lapsed and the standby took it), step down."""
        with self._lock:
            if not self._leading:
                return
            try:
                self._lease.renew()
            except LockUnavailable as error:
                self._leading = False
                log.warning("daemon.lost_lead", error=str(error))
            except UnavailableError as error:
                # Keep going: the cycle lease still protects each cycle, and the next renewal
                # either succeeds or finds the lead lost.
                log.warning("daemon.renew_failed", error=str(error))

    def resign(self) -> None:
        """Give the lead up on shutdown, so a standby takes over at its very next tick."""
        with self._lock:
            if self._leading:
                self._release(self._lease)
                self._leading = False

    def active(self) -> str | None:
        """Who holds the lead now (``host:pid:token``), for STATUS= and logs."""
        with self._lock:
            return self._holder()

    def _holder(self) -> str | None:
        try:
            current = self._lease.holder()
        except UnavailableError:
            return None
        return current[0] if current else None

    @staticmethod
    def _release(lease: Lease) -> None:
        try:
            lease.release()
        except UnavailableError as error:
            log.warning("daemon.release_failed", error=str(error))
