"""Where a sync keeps the accounts it will create until apply reaches them.

Private to ``syncd._cycle_plan`` and ``syncd._plan_items``. A first sync plans one create
per contractor, and a ``DesiredAccount`` with its contacts and the ERP's strings behind it
weighs about 2 KB: held in memory until apply starts, 100,000 of them were most of the
cycle's peak. So a sync (never a dry run, whose ``plan --json`` lists them) writes each new
account, packed by ``marshal``, to an anonymous temporary file as it is mapped, and the plan
keeps a slim ``DesiredAccount`` (key, login, symbol, name, e-mail, NIP, warnings; the raw
digest only of a record in backoff: all that planning, login uniqueness and the conflict
reasons read). Apply reads
each one back batch by batch (``Create.full``). The file holds no password and is deleted
by the operating system when the spool is closed or the process ends, crash or not.
"""

from __future__ import annotations

import marshal
import tempfile
import weakref
from collections.abc import Collection
from decimal import Decimal
from typing import IO, Any

from syncd.model import Contact, DesiredAccount


class Spool:
    """An append-only file of packed accounts, read back by offset."""

    def __init__(self, keep_digest: Collection[str] = ()) -> None:
        # Opened by the first ``put``: a cycle with nothing to create touches no disk.
        self._file: IO[bytes] | None = None
        self._closed: weakref.finalize | None = None  # type: ignore[type-arg]
        self._end = 0
        self._at_end = True  # the file's position is its end: ``put`` writes there
        # The slim copy drops the raw digest (about 80 bytes) except for these keys: the
        # records in backoff, whose plan compares it (``PlanOptions.deferred``).
        self._keep_digest = keep_digest
        self.offsets: dict[str, int] = {}  # key -> where its account starts, until attached

    def put(self, desired: DesiredAccount) -> DesiredAccount:
        """Store ``desired``; return the slim account the plan keeps in its place."""
        data = marshal.dumps(_pack(desired))
        file = self._open()
        if not self._at_end:  # a ``get`` moved the file's position (a seek costs a flush)
            file.seek(self._end)
            self._at_end = True
        file.write(len(data).to_bytes(4, "little") + data)
        self.offsets[desired.key] = self._end
        self._end += 4 + len(data)
        return slim(desired, keep_digest=desired.key in self._keep_digest)

    def _open(self) -> IO[bytes]:
        if self._file is None:
            self._file = tempfile.TemporaryFile(prefix="syncd-spool-")  # noqa: SIM115
            # Closed with the last plan item that refers to it (``sync --json`` reads it
            # after the cycle), or by ``close``: never left for the interpreter to warn.
            self._closed = weakref.finalize(self, self._file.close)
        return self._file

    def get(self, offset: int) -> DesiredAccount:
        """The account stored at ``offset``, whole."""
        file = self._open()
        self._at_end = False
        file.seek(offset)
        size = int.from_bytes(file.read(4), "little")
        return _unpack(marshal.loads(file.read(size)))  # noqa: S302 - our own file

    def close(self) -> None:
        if self._closed is not None:
            self._closed()


def slim(desired: DesiredAccount, *, keep_digest: bool = True) -> DesiredAccount:
    """What the plan reads of a new account; the rest waits in the spool. The raw digest
    only matters to the plan for a record in backoff (``keep_digest``)."""
    login = desired.login
    return DesiredAccount(
        key=desired.key,
        login=login,
        symbol=desired.symbol,
        name=desired.name,
        # Nearly always the login's text: then one string, not two equal ones, is kept.
        email=login if desired.email == login else desired.email,
        tax_id=desired.tax_id,
        erp_blocked=desired.erp_blocked,
        warnings=desired.warnings,
        source_fingerprint=desired.source_fingerprint if keep_digest else None,
    )


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
