"""The compact binding index answers as the dict of key to digest did, even when keys collide."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Collection, Mapping

from hypothesis import given, settings
from hypothesis import strategies as st

from syncd._binding_index import ABSENT, DIFFERENT, SAME, BindingIndex, packed
from syncd._cycle_plan import compare_records
from syncd.model import RawRecord, SourceContractor, Unchanged
from syncd.store import INACTIVE, UNDIGESTED, Binding


def _digest(key: str, version: int) -> str:
    """A digest as the sources make them: it covers the key (``r3:``), or an older recipe's."""
    hexa = hashlib.blake2b(f"{key}|{version}".encode(), digest_size=16).hexdigest()
    return "r3:" + hexa if version % 3 else f"r2:{key}:{version}"


def _binding(key: str, entry: str) -> Binding:
    inactive = entry == INACTIVE
    return Binding(
        key=key,
        account_id=f"acc-{key}",
        login=f"k{key}@x.pl",
        fingerprint="0" * 64,
        fields_json="{}",
        status="inactive" if inactive else "active",
        erp_blocked=False,
        support_block_reason=None,
        source_fingerprint=None if entry in (INACTIVE, UNDIGESTED) else entry,
    )


def _record(key: str, digest: str) -> RawRecord:
    def build() -> SourceContractor:
        return SourceContractor(key, f"K{key}", f"Firma {key}", email_raw=f"k{key}@x.pl")

    return RawRecord(key, digest, f"K{key}", None, build)


class Rows:
    """The store's (key, entry) rows, counting how often they are read."""

    def __init__(self, entries: Mapping[str, str]) -> None:
        self.entries = entries
        self.reads = 0

    def __call__(self) -> list[tuple[str, str]]:
        self.reads += 1
        return list(self.entries.items())


HASHES: dict[str, Callable[[str], int]] = {
    "real": hash,
    "all collide": lambda key: 0,
    "by length": lambda key: (len(key) - 3) << 40,  # negative hashes too
}


def _cycle(
    entries: dict[str, str], erp: dict[str, str], hash_key: Callable[[str], int]
) -> tuple[list[str], list[str], Rows]:
    """Run ``compare_records``: the keys found unchanged, the keys loaded after the read."""
    rows = Rows(entries)
    index = BindingIndex(rows, hash_key=hash_key)
    all_bindings = {key: _binding(key, entry) for key, entry in entries.items()}
    loads: list[list[str]] = []

    def load(keys: Collection[str]) -> dict[str, Binding]:
        loads.append(sorted(keys))
        return {k: all_bindings[k] for k in keys if k in all_bindings}

    bindings: dict[str, Binding] = {}
    records = [_record(key, digest) for key, digest in erp.items()]
    items = list(compare_records(records, index, bindings, load, full=False))
    unchanged = [item.key for item in items if isinstance(item, Unchanged)]
    gone = [key for key in bindings if key not in erp]
    return unchanged, sorted(gone), rows


def _expected(entries: dict[str, str], erp: dict[str, str]) -> tuple[list[str], list[str]]:
    """What the dict of key to digest gave: unchanged keys, and bindings out of scope."""
    unchanged = [key for key, digest in erp.items() if entries.get(key) == digest]
    gone = sorted(k for k, e in entries.items() if k not in erp and e != INACTIVE)
    return unchanged, gone


KEYS = st.sampled_from([str(n) for n in range(12)] + ["K-01", "ab", "Ż1", "0012"])


@settings(max_examples=300, deadline=None)
@given(
    bound=st.dictionaries(KEYS, st.integers(-2, 5)),
    erp=st.dictionaries(KEYS, st.integers(0, 5)),
    hashing=st.sampled_from(sorted(HASHES)),
)
def test_the_index_finds_what_the_dict_found_whatever_the_hash(
    bound: dict[str, int], erp: dict[str, int], hashing: str
) -> None:
    """With every key colliding, or some, or none: the same unchanged contractors and the
    same removals as the dict of key to digest (inactive: -2, undigested: -1)."""
    special = {-2: INACTIVE, -1: UNDIGESTED}
    entries = {k: special.get(v) or _digest(k, v) for k, v in bound.items()}
    digests = {k: _digest(k, v) for k, v in erp.items()}
    unchanged, gone, _ = _cycle(entries, digests, HASHES[hashing])
    assert (unchanged, gone) == _expected(entries, digests)


def test_a_quiet_cycle_reads_the_bindings_once_a_removal_twice() -> None:
    """Every binding seen (unchanged or loaded for a change): no second read; one missing:
    the rows are read again to name it, though its hash equals a returned key's."""
    entries = {k: _digest(k, 1) for k in ("1", "2", "3")}
    erp = {"1": _digest("1", 1), "2": _digest("2", 2), "3": _digest("3", 1)}
    for hash_key in HASHES.values():
        _, gone, rows = _cycle(entries, erp, hash_key)
        assert (gone, rows.reads) == ([], 1)
        del erp["3"]
        _, gone, rows = _cycle(entries, erp, hash_key)
        assert (gone, rows.reads) == (["3"], 2)
        erp["3"] = entries["3"]


def test_a_new_key_sharing_a_bound_key_hash_neither_matches_nor_hides_its_removal() -> None:
    """Key 9 (new) hashes like key 1 (gone from the ERP): 9 is mapped, 1 is removed."""
    entries = {"1": _digest("1", 1)}
    index = BindingIndex(Rows(entries), hash_key=lambda key: 7)
    assert index.compare("9", _digest("9", 1)) == DIFFERENT
    assert index.compare("9", entries["1"]) == SAME  # only a digest covering 1's rows could
    index = BindingIndex(Rows(entries), hash_key=lambda key: 7)
    index.compare("9", _digest("9", 1))
    index.confirm([])  # 9 has no binding: nothing loaded
    assert index.gone(loaded=set()) == ["1"]
    assert (
        BindingIndex(Rows(entries), hash_key=lambda key: int(key) << 32).compare("9", "r3:x")
        == ABSENT
    )


def test_exact_digests_keep_their_bits_and_others_never_equal_them() -> None:
    """An ``r3:`` digest is kept as its 16 bytes; upper case, spaces or another recipe are
    another kind, so they never equal it; the markers are kinds of their own."""
    digest = _digest("1", 1)
    kind, raw = packed(digest)
    assert raw.hex() == digest[3:]
    assert packed(digest.upper().replace("R3:", "r3:"))[0] != kind
    assert packed("r3:" + " " * 32)[0] != kind
    assert packed("r2:" + digest[3:])[0] != kind
    assert len({packed(INACTIVE)[0], packed(UNDIGESTED)[0], kind, packed("r2:a")[0]}) == 4


def test_watched_keys_are_checked_exactly_and_inactive_ones_are_not_managed() -> None:
    """``bound`` holds the watched keys that have a binding, hash collisions or not."""
    entries = {"1": _digest("1", 1), "2": INACTIVE}
    index = BindingIndex(Rows(entries), watch={"1", "3"}, hash_key=lambda key: 0)
    assert (index.bound, index.managed, len(index)) == ({"1"}, 1, 2)


def test_a_chunk_of_odd_entries_is_not_read_as_digests_run_together() -> None:
    """Two entries of 34 and 36 characters that run together into two ``r3:`` digests'
    worth of hex are kept as what they are, so neither matches a digest made of them."""
    hexa = "0123456789abcdef" * 2
    short, long = "r3:" + hexa[:31], "0r3:" + hexa[:32]
    index = BindingIndex(Rows({"1": short, "2": long}), hash_key=lambda key: int(key) << 40)
    assert index.compare("1", "r3:" + hexa[:31] + "0") == DIFFERENT
    assert index.compare("1", short) == SAME
    assert index.compare("2", long) == SAME
