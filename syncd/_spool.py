"""Where a sync keeps the accounts it will create until apply reaches them.

Private to ``syncd._cycle_plan``, ``syncd.plan`` and ``syncd._plan_items``. A first sync
plans one create per contractor. Held in memory, even as slim copies with their login
claims and plan items, 100,000 of them were most of the cycle's peak (about 900 bytes a
create, 1.6x the memory at 200,000). So a sync (never a dry run, whose ``plan --json``
lists them, nor a full reconcile) writes each new account, packed by ``marshal``, to a
private temporary SQLite database as it is mapped, and the plan keeps nothing per create:

- login uniqueness asks the spool which logins more than one new contractor claims, and
  who claims a given login (``duplicate_logins``, ``claimants``): an index does what a
  dict of every login did;
- the portal is asked about the new logins in batches (``login_batches``);
- apply reads the accounts back in the ERP's order, one at a time (``accounts``).

SQLite (the standard library's ``sqlite3``), not a file of our own: the indexes and the
``GROUP BY`` are what the checks need, and its page cache bounds the memory (2 MiB by
default) whatever the number of creates. The database is deleted when the spool is
closed or the process ends, crash or not, and holds no password.
"""

from __future__ import annotations

import marshal
import sqlite3
import weakref
from collections.abc import Callable, Collection, Iterator
from decimal import Decimal
from typing import Any, NamedTuple

from syncd.model import Contact, DesiredAccount

# Rows written per executemany, and values per IN-list (SQLite's old default limit of
# host parameters is 999).
BATCH = 1000
IN_LIST = 500


class Spooled(NamedTuple):
    """What the plan reads of a spooled account as it streams: the NIP check and a
    record in backoff (whose raw digest it compares) need these; nothing of it is kept."""

    key: str
    login: str
    symbol: str
    tax_id: str | None
    source_fingerprint: str | None


class Spool:
    """New accounts in a temporary database, in the order they were put.

    ``same`` is how the portal tells logins apart (``Claims.same``): the spool keeps each
    login that way too, so the uniqueness checks compare like with like. ``keep_digest``:
    keys of records in backoff, whose raw digest the plan compares (``Spooled``).
    """

    def __init__(self, same: Callable[[str], str], keep_digest: Collection[str] = ()) -> None:
        # Opened by the first ``put``: a cycle with nothing to create touches no disk.
        self._db: sqlite3.Connection | None = None
        self._closed: weakref.finalize | None = None  # type: ignore[type-arg]
        self._same = same
        self._keep_digest = keep_digest
        self._pending: list[tuple[str, str, str, bytes]] = []
        self._indexed = False
        self.count = 0  # accounts in the spool (those dropped are not counted)

    def put(self, desired: DesiredAccount) -> Spooled:
        """Store ``desired`` whole; return what the plan reads of it."""
        login = desired.login
        record = marshal.dumps(_pack(desired))
        self._pending.append((desired.key, self._same(login), login, record))
        if len(self._pending) >= BATCH:
            self._flush()
        self.count += 1
        digest = desired.source_fingerprint if desired.key in self._keep_digest else None
        return Spooled(desired.key, login, desired.symbol, desired.tax_id, digest)

    def _open(self) -> sqlite3.Connection:
        if self._db is None:
            # "": a private temporary database on disk, deleted when it is closed. No
            # journal and no sync: nothing in it must survive a crash. The plan may be
            # read from another thread than the one that made it (``sync --json``).
            db = sqlite3.connect("", check_same_thread=False, isolation_level=None)
            db.execute("PRAGMA journal_mode = OFF")
            db.execute("PRAGMA synchronous = OFF")
            db.execute(
                "CREATE TABLE creates (id INTEGER PRIMARY KEY, key TEXT NOT NULL, "
                "same TEXT NOT NULL, login TEXT NOT NULL, record BLOB NOT NULL)"
            )
            self._db = db
            # Closed with the last plan item that refers to it, or by ``close``.
            self._closed = weakref.finalize(self, db.close)
        return self._db

    def _flush(self) -> None:
        if self._pending:
            db = self._open()
            db.execute("BEGIN")
            db.executemany(
                "INSERT INTO creates (key, same, login, record) VALUES (?, ?, ?, ?)",
                self._pending,
            )
            db.execute("COMMIT")
            self._pending.clear()

    def _ready(self) -> sqlite3.Connection | None:
        """The database with every put written and indexed; None: nothing was put."""
        self._flush()
        if self._db is not None and not self._indexed:
            # Built once the writes are over: faster than keeping them up row by row.
            self._db.execute("CREATE INDEX creates_same ON creates (same)")
            self._db.execute("CREATE INDEX creates_key ON creates (key)")
            self._indexed = True
        return self._db

    def duplicate_logins(self) -> list[str]:
        """The logins (as ``same`` gives them) that several spooled accounts claim."""
        db = self._ready()
        if db is None:
            return []
        query = "SELECT same FROM creates GROUP BY same HAVING count(*) > 1 ORDER BY same"
        return [same for (same,) in db.execute(query)]

    def claimants(self, sames: Collection[str]) -> Iterator[DesiredAccount]:
        """The spooled accounts claiming any of ``sames``, whole, in the order they came."""
        return self._where("same", sames)

    def with_logins(self, logins: Collection[str]) -> Iterator[DesiredAccount]:
        """The spooled accounts whose login is one of ``logins`` exactly, in order."""
        return self._where("login", logins)

    def _where(self, column: str, values: Collection[str]) -> Iterator[DesiredAccount]:
        db = self._ready()
        if db is None or not values:
            return
        wanted = list(values)
        found: list[tuple[int, bytes]] = []
        for start in range(0, len(wanted), IN_LIST):
            chunk = wanted[start : start + IN_LIST]
            marks = ", ".join("?" * len(chunk))
            query = f"SELECT id, record FROM creates WHERE {column} IN ({marks})"  # noqa: S608
            found.extend(db.execute(query, chunk))
        for _, record in sorted(found):
            yield _unpack(marshal.loads(record))  # noqa: S302 - our own database

    def login_batches(self, size: int) -> Iterator[list[tuple[str, str]]]:
        """Every spooled account's (login, same), ``size`` at a time, in order."""
        db = self._ready()
        if db is None:
            return
        cursor = db.execute("SELECT login, same FROM creates ORDER BY id")
        while batch := cursor.fetchmany(size):
            yield batch

    def drop(self, keys: Collection[str]) -> None:
        """Take the accounts of ``keys`` out: they are no create any more."""
        db = self._ready()
        if db is None or not keys:
            return
        wanted = list(keys)
        for start in range(0, len(wanted), IN_LIST):
            chunk = wanted[start : start + IN_LIST]
            marks = ", ".join("?" * len(chunk))
            query = f"DELETE FROM creates WHERE key IN ({marks})"  # noqa: S608
            self.count -= db.execute(query, chunk).rowcount

    def accounts(self) -> Iterator[DesiredAccount]:
        """Every spooled account, whole, in the order they were put."""
        db = self._ready()
        if db is None:
            return
        # A cursor of its own, read as apply goes: one account in memory at a time.
        for (record,) in db.execute("SELECT record FROM creates ORDER BY id"):
            yield _unpack(marshal.loads(record))  # noqa: S302 - our own database

    def close(self) -> None:
        if self._closed is not None:
            self._closed()


def _pack(d: DesiredAccount) -> tuple[Any, ...]:
    contacts = tuple(
        (c.name, c.email, c.phone, c.position, c.is_primary, c.receives_mail, c.represents)
        for c in d.contacts
    )
    return (
        d.key, d.login, d.symbol, d.name, d.email, d.tax_id, d.phone, d.address,
        d.price_level, str(d.discount), d.owner_name, d.owner_email, d.erp_blocked, contacts,
        d.customer_group, d.billing_email, d.warnings, d.source_fingerprint,
    )  # fmt: skip


def _unpack(values: tuple[Any, ...]) -> DesiredAccount:
    (key, login, symbol, name, email, tax_id, phone, address, price_level, discount,
     owner_name, owner_email, erp_blocked, contacts, customer_group, billing_email,
     warnings, source_fingerprint) = values  # fmt: skip
    return DesiredAccount(
        key=key,
        login=login,
        symbol=symbol,
        name=name,
        email=email,
        tax_id=tax_id,
        phone=phone,
        address=address,
        price_level=price_level,
        discount=Decimal(discount),
        owner_name=owner_name,
        owner_email=owner_email,
        erp_blocked=erp_blocked,
        contacts=tuple(Contact(*contact) for contact in contacts),
        customer_group=customer_group,
        billing_email=billing_email,
        warnings=tuple(warnings),
        source_fingerprint=source_fingerprint,
    )
