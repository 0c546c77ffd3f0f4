"""The bindings as a light cycle compares them: a hash of each key and its digest, in arrays.

A quiet cycle needs of every binding only "is this key bound, and was it applied from these
raw rows?", then which bound keys the ERP did not return. A ``dict`` of key string to
digest string answered that with about 183 bytes per binding, the largest thing a no-op
cycle held at 100,000 contractors (issue 10: 150 MiB at 100,000, 1.3x that at 200,000).
``BindingIndex`` keeps about 29 bytes per binding and no object per binding:

- ``_entries`` (``array('q')``): per binding, the top 32 bits of its key's hash above the
  number of its slot, sorted (so by hash); ``_directory`` (``array('I')``, about 2 bytes a
  binding): where each run of equal top bits starts, so a lookup reads about one entry;
- ``_digests`` (16 bytes a slot): an ``r3:`` digest's 128 bits exactly (its hex digits'
  bytes), any other digest's BLAKE2b-128 (never compared with the exact ones: its kind
  differs), nothing for an inactive or undigested binding (they never match);
- ``_flags`` (one byte a slot): the kind, and whether the ERP returned that binding.

Two keys may share those 32 bits (about one pair in 100,000 bindings, more when a test
injects a poor hash): a lookup compares every entry of that hash with the record's digest,
and only an equal digest makes a record unchanged. A digest covers the raw rows, the key
among them (``connectors._stream.row_digester``, ``SourceContractor.raw_fingerprint``), so
two bindings never share one: an equal digest names the very binding whatever the hash
says. A record matching no digest is mapped and its binding loaded by key
(``StateStore.load_bindings``), which is exact; ``confirm`` then marks that binding seen.
Which bindings went out of scope is read back from the store's rows (``rows``: a second
streamed pass, only when a managed binding was not marked seen: a no-op cycle reads the
bindings once), trusting a seen flag only beside an equal digest, or the key itself among
the bindings loaded.
"""

from __future__ import annotations

import hashlib
import struct
from array import array
from collections import Counter
from collections.abc import Callable, Collection, Container, Iterable
from itertools import accumulate, compress, count, islice, repeat
from operator import add, and_, or_, rshift

from syncd.store import INACTIVE, UNDIGESTED

_EXACT_PREFIX = "r3:"  # syncd.model.RAW_DIGEST_PREFIX: its 32 hex digits are kept as bytes
_EXACT, _OTHER, _UNDIGESTED, _INACTIVE = 0, 1, 2, 3  # kinds, in ``_flags``' low bits
_KIND = 3
_SEEN = 4
_NO_DIGEST = bytes(16)
_SLOT_BITS = 32  # an entry's low bits number its slot: up to 4,294,967,295 bindings
_SLOT = (1 << _SLOT_BITS) - 1
_HASH = -1 << _SLOT_BITS  # an entry's (and a key hash's) high bits, as a mask
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
    ``hash``; only its top 32 bits are kept) is injectable so a test can make every key
    collide.
    """

    __slots__ = (
        "_digests",
        "_directory",
        "_entries",
        "_flags",
        "_hash",
        "_rows",
        "_seen_managed",
        "_shift",
        "bound",
        "managed",
    )

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
        self._digests = bytearray()
        self._flags = bytearray()
        watched = set(watch)
        # Each entry is one int, hash bits above slot bits, made and sorted in C calls, no
        # tuple and no Python per binding. The list and the directory's counts are
        # short-lived: about 130 bytes a binding at most, before the ERP is read, where
        # the dict this replaces held 183 for the whole cycle.
        order: list[int] = []
        stream = iter(rows())
        while chunk := list(islice(stream, _CHUNK)):
            keys, entries = zip(*chunk, strict=True)
            slots = count(len(order))
            order.extend(map(or_, map(and_, map(hash_key, keys), repeat(_HASH)), slots))
            self.bound.update(watched.intersection(keys))
            self._append(entries)
        order.sort()
        buckets = 1 << max(len(order) // 2, 1).bit_length()
        self._shift = 64 - buckets.bit_length() + 1  # an entry's top bits name its bucket
        sizes = Counter(map(rshift, map(add, order, repeat(_HALF)), repeat(self._shift)))
        starts = accumulate(map(sizes.get, range(buckets), repeat(0)), initial=0)
        self._directory = array("I", starts)
        # Through struct, a chunk at a time: array("q", a_list) parses every item as a
        # call's argument.
        self._entries = array("q")
        for at in range(0, len(order), _CHUNK * 64):
            part = order[at : at + _CHUNK * 64]
            self._entries.frombytes(struct.pack(f"{len(part)}q", *part))

    def _append(self, entries: tuple[str, ...]) -> None:
        """Keep the kind and digest of each entry. A chunk of ``r3:`` digests only (a
        quiet cycle's) takes a few calls in C; any other chunk goes entry by entry."""
        size = len(entries)
        joined = "".join(entries)
        if (
            set(map(len, entries)) == {35}
            and joined[::35] == "r" * size
            and joined[1::35] == "3" * size
            and joined[2::35] == ":" * size
        ):
            # Each is ``r3:`` and 32 more: those are all hex digits when removing every
            # ``r3:`` leaves 32 characters an entry (none inside) and fromhex takes them.
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

    def _slots_of(self, key: str) -> Iterable[int]:
        """The slots of the bindings whose key hashes like ``key`` (usually one or none)."""
        wanted = self._hash(key) & _HASH
        bucket = (wanted + _HALF) >> self._shift
        for entry in self._entries[self._directory[bucket] : self._directory[bucket + 1]]:
            if entry & _HASH == wanted:
                yield entry & _SLOT

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
        wanted = self._hash(key) & _HASH
        bucket = (wanted + _HALF) >> self._shift
        directory, entries = self._directory, self._entries
        at, end = directory[bucket], directory[bucket + 1]
        found = ABSENT
        while at < end:  # about one entry
            entry = entries[at]
            if entry & _HASH == wanted:
                slot = entry & _SLOT
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
        ``loaded`` for records it did return: nothing read when every one was seen.

        Only a row whose key hashes like an unseen managed slot can be one: the rows are
        sifted by that (few) set of hashes in C calls, and only those few checked here."""
        if self._seen_managed == self.managed:
            return []
        unseen = bytes(  # the kind byte of every managed slot not seen: 1, others 0
            1 if flags & _SEEN == 0 and flags & _KIND != _INACTIVE else 0 for flags in range(8)
        )
        marks = self._flags.translate(unseen.ljust(256, b"\0"))
        slots = map(and_, self._entries, repeat(_SLOT))
        wanted = set(
            map(and_, compress(self._entries, map(marks.__getitem__, slots)), repeat(_HASH))
        )
        missing = []
        stream = iter(self._rows())
        while chunk := list(islice(stream, _CHUNK)):
            keys = [key for key, _ in chunk]
            hashed = map(and_, map(self._hash, keys), repeat(_HASH))
            for key, entry in compress(chunk, map(wanted.__contains__, hashed)):
                if entry == INACTIVE or key in loaded:
                    continue
                if entry != UNDIGESTED and any(
                    self._flags[slot] & _SEEN and self._holds(slot, entry)
                    for slot in self._slots_of(key)
                ):
                    continue
                missing.append(key)
        return missing
