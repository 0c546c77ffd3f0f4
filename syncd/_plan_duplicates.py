"""Duplicate checks that only warn: two in-scope contractors with one NIP (issue 11, item 5).

One company entered twice in the ERP usually means two accounts for one customer, but it
can be legitimate (branches with one NIP), so it is never a block: ``plan``, ``status`` and
``explain`` say it, and both contractors keep their accounts. Part of the pure plan
(``syncd.plan``): computed from the mapped contractors in the same pass, no I/O here.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from typing import Any

_NOT_ALNUM = re.compile(r"[^0-9A-Z]")
_DIGIT = re.compile(r"[0-9]")
# Kept in a run's summary for ``status`` and ``explain``; more only make the run row larger.
STORED_AT_MOST = 100


def tax_id_key(tax_id: str | None) -> str | None:
    """A NIP as compared for duplicates: letters and digits only, upper-case, a ``PL``
    prefix dropped (another country's prefix stays: DE123 and CZ123 are different)."""
    if tax_id is not None and tax_id.isascii() and tax_id.isdigit():
        return tax_id  # already compact: most NIPs, read for every contractor on every cycle
    compact = _NOT_ALNUM.sub("", (tax_id or "").upper())
    if compact.startswith("PL") and compact[2:].isdigit():
        compact = compact[2:]
    return compact if _DIGIT.search(compact) else None


Holder = tuple[str, str]  # (key, symbol)


def _holder(first: str | Holder) -> Holder:
    """The (key, symbol) ``TaxIds.add`` joined into ``first``, exactly."""
    if isinstance(first, tuple):
        return first
    key, symbol = first.split("\0", 1)
    return (key, symbol)


@dataclass(slots=True)
class TaxIds:
    """Who has which NIP, compact enough for every contractor of a large ERP.

    ``first`` holds each NIP's first holder: the NIP as an int when it is a plain number
    without a leading zero (the usual Polish NIP), else as its compared string; the holder
    as one string (see ``add``). About 145 bytes a contractor at 100,000 (the dict's slot,
    an int and a string) where a NIP string and a tuple of key and symbol strings took
    about 265: the largest thing a quiet cycle holds per contractor. The symbol is kept, so
    the warning names every holder without asking the ERP or the state store again (the
    plan stays pure). ``more`` lists the holders of the NIPs found shared, in full.
    """

    first: dict[int | str, str | Holder] = field(default_factory=dict)
    more: dict[str, list[Holder]] = field(default_factory=dict)

    def add(self, key: str, symbol: str, tax_id: str | None) -> None:
        if tax_id and tax_id.isascii() and tax_id.isdigit() and tax_id[0] != "0":
            nip = tax_id  # most NIPs: what ``tax_id_key`` gives, kept as a number
            number: int | str = int(tax_id)
        else:
            found = tax_id_key(tax_id)
            if found is None:
                return
            nip = found
            number = int(nip) if nip.isdigit() and nip[0] != "0" else nip
        # The holder as one string, key NUL symbol (one object where a tuple of two strings
        # took about 190 bytes); the tuple itself when the key is empty or holds a NUL (the
        # split would go wrong, and "\0" alone is a cached string, the same object for
        # every row, which the identity test below must never see).
        holder: str | Holder = f"{key}\0{symbol}" if key and "\0" not in key else (key, symbol)
        first = self.first.setdefault(number, holder)
        if first is not holder:  # a new string or tuple is no object already held
            self.more.setdefault(nip, [_holder(first)]).append((key, symbol))

    def duplicates(self, only_keys: Collection[str] | None = None) -> list[dict[str, Any]]:
        """Each NIP held by several contractors (those touching ``only_keys``, when given),
        with the warning to show, ordered by NIP."""
        found = []
        for nip, holders in sorted(self.more.items()):
            if only_keys is not None and not any(key in only_keys for key, _ in holders):
                continue
            found.append(
                {
                    "tax_id": nip,
                    "keys": [key for key, _ in holders],
                    "warning": duplicate_warning(nip, holders),
                }
            )
        return found


def duplicate_warning(nip: str, holders: list[tuple[str, str]]) -> str:
    """The sentence ``plan``, ``status`` and ``explain`` show for one shared NIP."""
    who = ", ".join(f"{symbol} (id {key})" for key, symbol in holders)
    return (
        f"NIP {nip} is shared by {len(holders)} contractors in scope: {who}; if they are one "
        "company, merge them in the ERP (only a warning: each keeps its account)"
    )


def warnings_for(duplicates: list[dict[str, Any]], key: str) -> list[str]:
    """The duplicate warnings that name contractor ``key`` (for ``explain``)."""
    return [item["warning"] for item in duplicates if key in item["keys"]]


def last_stored(runs: Sequence[Any]) -> list[dict[str, Any]]:
    """The duplicates the newest finished cycle found (``runs``: ``StateStore.last_runs``)."""
    finished = [run for run in runs if run.finished_at is not None]
    stored = finished[0].summary.get("duplicate_tax_ids") if finished else None
    return list(stored or [])
