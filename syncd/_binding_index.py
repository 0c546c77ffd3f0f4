"""The bindings as a light cycle compares them: a hash of each key and its digest, in arrays.

A quiet cycle needs of every binding only "is this key bound, and was it applied from these
raw rows?", then which bound keys the ERP did not return. A ``dict`` of key string to
digest string answered that with about 180 bytes per binding, the largest thing a no-op
cycle held at 100,000 contractors (issue 10: 150 MiB at 100,000, 1.3x that at 200,000).
``BindingIndex`` keeps 29 bytes per binding and no object per binding:

- ``_hashes`` (``array('q')``): a 64-bit hash of each key, sorted, searched with ``bisect``;
  ``_slots`` (``array('I')``): where that binding's digest and flags sit, in read order;
- ``_digests`` (16 bytes a binding): an ``r3:`` digest's 128 bits exactly (the hex string's
  bytes), any other digest's BLAKE2b-128 (never compared with the exact ones: its kind
  differs), nothing for an inactive or undigested binding (they never match);
- ``_flags`` (one byte): the kind, and whether the ERP returned that binding this cycle.

Two keys may share a hash: a lookup compares every entry of that hash with the record's
digest, and only an equal digest makes a record unchanged. A digest covers the raw rows,
the key among them (``connectors._stream.row_digester``, ``SourceContractor.raw_fingerprint``),
so two bindings never share one: an equal digest names the very binding whatever the hash
says. A record matching no digest is mapped and its binding loaded by key
(``StateStore.load_bindings``), which is exact; ``confirm`` then marks that binding seen.
Which bindings went out of scope is read back from the store's rows (``rows``: a second
streamed pass, only when a managed binding was not marked seen: a no-op cycle reads the
bindings once), trusting a seen flag only beside an equal digest, or the key itself among
the bindings loaded.
"""

from __future__ import annotations

import hashlib
from array import array
from bisect import bisect_left
from collections.abc import Callable, Collection, Container, Iterable

from syncd.store import INACTIVE, UNDIGESTED

_EXACT_PREFIX = "r3:"  # syncd.model.RAW_DIGEST_PREFIX: its 32 hex digits are kept as bytes
_EXACT, _OTHER, _UNDIGESTED, _INACTIVE = 0, 1, 2, 3  # kinds, in ``_flags``' low bits
_KIND = 3
_SEEN = 4
_NO_DIGEST = bytes(16)
_SLOT_BITS = 32  # slots are numbered in an array('I'): up to 4,294,967,295 bindings

Rows = Callable[[], Iterable[tuple[str, str]]]

# What ``compare`` says of a record.
ABSENT = 0  # no binding has its key
DIFFERENT = 1  # it may have a binding, applied from other rows: map it, load the binding
SAME = 2  # its binding was applied from these very rows


def packed(entry: str) -> tuple[int, bytes]:
    """The kind and 16 bytes ``BindingIndex`` keeps of a binding entry or a record's digest;
    equal only for equal strings (an ``r3:`` digest exactly, others by BLAKE2b-128)."""
    if entry == INACTIVE:
        return _INACTIVE, _NO_DIGEST
    if entry == UNDIGESTED:
        return _UNDIGESTED, _NO_DIGEST
    if len(entry) == 35 and entry.startswith(_EXACT_PREFIX) and entry.islower():
        try:
            raw = bytes.fromhex(entry[3:])
        except ValueError:
            raw = b""
        if len(raw) == 16:  # fromhex skips spaces: 16 bytes means 32 hex digits
            return _EXACT, raw
    return _OTHER, hashlib.blake2b(entry.encode(), digest_size=16).digest()


class BindingIndex:
    """Every binding's key hash, digest and seen flag (see the module's docstring).

    Built from ``rows()`` ((key, entry) pairs, ``StateStore.binding_entries``), which it
    calls again for ``gone`` when needed; ``watch`` keys are checked exactly while building
    (``bound``): the few records in backoff. ``hash_key`` is injectable so a test can make
    every key collide.
    """

    def __init__(
        self,
        rows: Rows,
        *,
        watch: Collection[str] = (),
        hash_key: Callable[[str], int] = hash,
    ) -> None:
        self._rows = rows
        self._hash = hash_key
        self.bound: set[str] = set()  # the ``watch`` keys that have a binding
        self.managed = 0  # bindings that are not inactive
        self._seen_managed = 0
        hashes = array("q")
        self._digests = bytearray()
        self._flags = bytearray()
        for key, entry in rows():
            kind, raw = packed(entry)
            hashes.append(hash_key(key))
            self._flags.append(kind)
            self._digests += raw
            if kind != _INACTIVE:
                self.managed += 1
            if key in watch:
                self.bound.add(key)
        # Sort by hash, carrying each entry's slot in the low bits of one int: one short-lived
        # list of ints, no tuple per binding.
        order = [(h << _SLOT_BITS) | slot for slot, h in enumerate(hashes)]
        del hashes
        order.sort()
        low = (1 << _SLOT_BITS) - 1
        self._hashes = array("q", (item >> _SLOT_BITS for item in order))
        self._slots = array("I", (item & low for item in order))

    def __len__(self) -> int:
        return len(self._flags)

    def _entries(self, key: str) -> Iterable[int]:
        """The slots of the bindings whose key hashes like ``key`` (usually one or none)."""
        hashes = self._hashes
        wanted = self._hash(key)
        at = bisect_left(hashes, wanted)
        while at < len(hashes) and hashes[at] == wanted:
            yield self._slots[at]
            at += 1

    def _holds(self, slot: int, kind: int, raw: bytes) -> bool:
        return (
            self._flags[slot] & _KIND == kind and self._digests[16 * slot : 16 * slot + 16] == raw
        )

    def _mark(self, slot: int) -> None:
        flags = self._flags[slot]
        if not flags & _SEEN:
            self._flags[slot] = flags | _SEEN
            if flags & _KIND != _INACTIVE:
                self._seen_managed += 1

    def compare(self, key: str, digest: str) -> int:
        """``SAME`` (and marked seen) when ``key``'s binding was applied from ``digest``,
        ``DIFFERENT`` when a binding may be ``key``'s, ``ABSENT`` when none is."""
        found = ABSENT
        kind, raw = packed(digest)
        for slot in self._entries(key):
            if kind in (_EXACT, _OTHER) and self._holds(slot, kind, raw):
                self._mark(slot)
                return SAME
            found = DIFFERENT
        return found

    def confirm(self, loaded: Iterable[tuple[str, str]]) -> None:
        """Mark seen the bindings loaded by key, (key, entry), for records that differed:
        for each, one not yet seen entry of its key's hash holding its entry. When keys
        collide that may be another key's twin (two undigested bindings): ``gone`` then
        trusts only the keys loaded and equal digests, so only the count of bindings seen
        (one per key loaded, as it should) decides whether the rows are read again."""
        for key, entry in loaded:
            kind, raw = packed(entry)
            for slot in self._entries(key):
                if not self._flags[slot] & _SEEN and self._holds(slot, kind, raw):
                    self._mark(slot)
                    break

    def gone(self, loaded: Container[str]) -> list[str]:
        """The managed bindings the ERP did not return, given the keys whose bindings were
        ``loaded`` for records it did return: nothing read when every one was seen."""
        if self._seen_managed == self.managed:
            return []
        missing = []
        for key, entry in self._rows():
            kind, raw = packed(entry)
            if kind == _INACTIVE or key in loaded:
                continue
            if kind in (_EXACT, _OTHER) and any(
                self._flags[slot] & _SEEN and self._holds(slot, kind, raw)
                for slot in self._entries(key)
            ):
                continue
            missing.append(key)
        return missing
