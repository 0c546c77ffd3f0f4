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
from itertools import count, islice, repeat
from operator import and_, lshift, or_, rshift, sub

from syncd.store import INACTIVE, UNDIGESTED

_EXACT_PREFIX = "r3:"  # syncd.model.RAW_DIGEST_PREFIX: its 32 hex digits are kept as bytes
_EXACT, _OTHER, _UNDIGESTED, _INACTIVE = 0, 1, 2, 3  # kinds, in ``_flags``' low bits
_KIND = 3
_SEEN = 4
_NO_DIGEST = bytes(16)
_SLOT_BITS = 32  # slots are numbered in an array('I'): up to 4,294,967,295 bindings
_CHUNK = 1024  # rows taken at a time while building
_HALF = 1 << 63  # a key hash (signed 64 bits) plus this is its unsigned rank

Rows = Callable[[], Iterable[tuple[str, str]]]

# What ``compare`` says of a record.
ABSENT = 0  # no binding has its key
DIFFERENT = 1  # it may have a binding, applied from other rows: map it, load the binding
SAME = 2  # its binding was applied from these very rows


def packed(entry: str) -> tuple[int, bytes]:
    """The kind and 16 bytes ``BindingIndex`` keeps of a binding entry (see the module)."""
    if entry == INACTIVE:
        return _INACTIVE, _NO_DIGEST
    if entry == UNDIGESTED:
        return _UNDIGESTED, _NO_DIGEST
    if len(entry) == 35 and entry[:3] == _EXACT_PREFIX and entry.islower():
        try:
            raw = bytes.fromhex(entry[3:])
        except ValueError:
            raw = b""
        if len(raw) == 16:  # fromhex skips spaces: 16 bytes means 32 hex digits
            return _EXACT, raw
    return _OTHER, _other(entry)


def _other(digest: str) -> bytes:
    return hashlib.blake2b(digest.encode(), digest_size=16).digest()


class BindingIndex:
    """Every binding's key hash, digest and seen flag (see the module's docstring).

    Built from ``rows()`` ((key, entry) pairs, ``StateStore.binding_entries``), which it
    calls again for ``gone`` when needed; ``watch`` keys are checked exactly while building
    (``bound``): the few records in backoff. ``hash_key`` (a signed 64-bit int, like
    ``hash``) is injectable so a test can make every key collide. A directory of the
    sorted hashes' positions by their top bits (about 2 bytes a binding) leaves ``bisect``
    one or two steps instead of seventeen.
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
        watched = set(watch)
        stream = iter(rows())
        while chunk := list(islice(stream, _CHUNK)):
            keys, entries = zip(*chunk, strict=True)
            hashes.extend(map(hash_key, keys))
            self.bound.update(watched.intersection(keys))
            self._append(entries)
        # Sort by hash, carrying each entry's slot in the low bits of one int: one short-lived
        # list of ints (about 57 bytes a binding), no tuple per binding, no Python per item.
        order = list(map(or_, map(lshift, hashes, repeat(_SLOT_BITS)), count()))
        del hashes
        order.sort()
        self._hashes = array("q", map(rshift, order, repeat(_SLOT_BITS)))
        self._slots = array("I", map(and_, order, repeat((1 << _SLOT_BITS) - 1)))
        del order
        buckets = 1 << max(len(self._hashes) // 2, 1).bit_length()
        self._shift = 64 - buckets.bit_length() + 1
        lowest = map(sub, map(lshift, range(buckets + 1), repeat(self._shift)), repeat(_HALF))
        self._directory = array("I", map(bisect_left, repeat(self._hashes), lowest))

    def _append(self, entries: tuple[str, ...]) -> None:
        """Keep the kind and digest of each entry. A chunk of ``r3:`` digests only (a
        quiet cycle's) takes a few calls in C; any other chunk goes entry by entry."""
        size = len(entries)
        joined = "".join(entries)
        if len(joined) == 35 * size and joined[::35] == "r" * size:
            # 35 characters each, ``r`` first: the ``r3:`` prefixes are then where they
            # should be exactly when removing every ``r3:`` leaves 32 characters an entry.
            hexa = joined.replace(_EXACT_PREFIX, "")
            if len(hexa) == 32 * size and hexa == hexa.lower():
                try:
                    raw = bytes.fromhex(hexa)
                except ValueError:
                    raw = b""
                if len(raw) == 16 * size:  # fromhex skips spaces: this many is all hex
                    self._digests += raw
                    self._flags += bytes(size)  # _EXACT
                    self.managed += size
                    return
        for entry in entries:
            kind, digest = packed(entry)
            self._flags.append(kind)
            self._digests += digest
            if kind != _INACTIVE:
                self.managed += 1

    def __len__(self) -> int:
        return len(self._flags)

    def _first(self, wanted: int) -> int:
        """Where the hashes equal to ``wanted`` start in ``_hashes`` (-1: none)."""
        bucket = (wanted + _HALF) >> self._shift
        end = self._directory[bucket + 1]
        at = bisect_left(self._hashes, wanted, self._directory[bucket], end)
        return at if at < end and self._hashes[at] == wanted else -1

    def _slots_of(self, key: str) -> Iterable[int]:
        """The slots of the bindings whose key hashes like ``key`` (usually one or none)."""
        hashes, wanted = self._hashes, self._hash(key)
        at = self._first(wanted)
        while 0 <= at < len(hashes) and hashes[at] == wanted:
            yield self._slots[at]
            at += 1

    def _holds(self, slot: int, entry: str) -> bool:
        """Whether ``slot`` was kept of ``entry`` (a marker, or a digest's string)."""
        kind = self._flags[slot] & _KIND
        if kind == _EXACT:
            return entry == _EXACT_PREFIX + self._digests[16 * slot : 16 * slot + 16].hex()
        if kind == _OTHER:
            return self._digests[16 * slot : 16 * slot + 16] == _other(entry)
        return entry == (INACTIVE if kind == _INACTIVE else UNDIGESTED)

    def _mark(self, slot: int) -> None:
        flags = self._flags[slot]
        if not flags & _SEEN:
            self._flags[slot] = flags | _SEEN
            if flags & _KIND != _INACTIVE:
                self._seen_managed += 1

    def compare(self, key: str, digest: str) -> int:
        """``SAME`` (and marked seen) when ``key``'s binding was applied from ``digest``,
        ``DIFFERENT`` when a binding may be ``key``'s, ``ABSENT`` when none is.

        Run once per ERP record, so written out (``_first``, ``_holds`` and ``_mark``
        inline for the usual ``r3:`` digest): the stored bytes' hex against the record's
        string, no parsing."""
        wanted = self._hash(key)
        bucket = (wanted + _HALF) >> self._shift
        directory, hashes = self._directory, self._hashes
        end = directory[bucket + 1]
        at = bisect_left(hashes, wanted, directory[bucket], end)
        found = ABSENT
        while at < end and hashes[at] == wanted:  # equal hashes share a bucket
            slot = self._slots[at]
            flags = self._flags[slot]
            kind = flags & _KIND
            if (
                kind == _EXACT
                and digest == _EXACT_PREFIX + self._digests[16 * slot : 16 * slot + 16].hex()
            ) or (kind == _OTHER and self._holds(slot, digest)):
                if not flags & _SEEN:
                    self._flags[slot] = flags | _SEEN
                    self._seen_managed += 1
                return SAME
            found = DIFFERENT
            at += 1
        return found

    def confirm(self, loaded: Iterable[tuple[str, str]]) -> None:
        """Mark seen the bindings loaded by key, (key, entry), for records that differed:
        for each, one not yet seen entry of its key's hash holding its entry. When keys
        collide that may be another key's twin (two undigested bindings): ``gone`` then
        trusts only the keys loaded and equal digests, so only the count of bindings seen
        (one per key loaded, as it should) decides whether the rows are read again."""
        for key, entry in loaded:
            for slot in self._slots_of(key):
                if not self._flags[slot] & _SEEN and self._holds(slot, entry):
                    self._mark(slot)
                    break

    def gone(self, loaded: Container[str]) -> list[str]:
        """The managed bindings the ERP did not return, given the keys whose bindings were
        ``loaded`` for records it did return: nothing read when every one was seen."""
        if self._seen_managed == self.managed:
            return []
        missing = []
        for key, entry in self._rows():
            if entry == INACTIVE or key in loaded:
                continue
            if entry != UNDIGESTED and any(
                self._flags[slot] & _SEEN and self._holds(slot, entry)
                for slot in self._slots_of(key)
            ):
                continue
            missing.append(key)
        return missing
