"""Human-readable output of plans and cycle results (``--json`` prints the raw documents)."""

from __future__ import annotations

import json
from collections.abc import Callable, Collection, Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, TextIO

if TYPE_CHECKING:
    # Only for the annotation: ``status`` and ``check-config`` print JSON through this
    # module and must not load the cycle (plan, apply, backoff) to do it.
    from syncd.cycle import CycleResult


class _Jsonable(Protocol):
    def as_json(self) -> dict[str, Any]: ...


@dataclass(frozen=True, slots=True)
class Items:
    """A list of a JSON document made one item at a time as ``dump_json`` writes it.

    ``syncd sync`` of 100,000 new contractors lists every create with its fields: built
    at once, the document alone took about 70 MiB more than the cycle. Its creates are
    read back from the spool one by one (``syncd._plan_items.Creates``), so each item is
    made, written and dropped before the next is read."""

    make: Callable[[], Iterable[dict[str, Any]]]
    count: int

    @classmethod
    def of(cls, items: Collection[_Jsonable]) -> Items:
        return cls(lambda: (item.as_json() for item in items), len(items))

    def map(self, change: Callable[[dict[str, Any]], dict[str, Any]]) -> Items:
        """The same items, each passed through ``change`` as it is made."""
        return Items(lambda: map(change, self.make()), self.count)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return iter(self.make())

    def __len__(self) -> int:
        return self.count


def dump_json(document: Any, out: TextIO) -> None:
    """One JSON document on stdout, nothing else there (spec section 4).

    A top-level ``Items`` value is written item by item; the text is the same as
    ``json.dump`` of the whole document with ``indent=2`` (a test compares them)."""
    if not (isinstance(document, dict) and any(isinstance(v, Items) for v in document.values())):
        json.dump(document, out, ensure_ascii=False, indent=2, default=str)
        out.write("\n")
        return
    lead = "{"
    for key, value in document.items():
        out.write(f"{lead}\n  {_encoded(key, 1)}: ")
        lead = ","
        if not isinstance(value, Items):
            out.write(_encoded(value, 1))
            continue
        opening = "["
        for item in value:
            out.write(f"{opening}\n    {_encoded(item, 2)}")
            opening = ","
        out.write("[]" if opening == "[" else "\n  ]")
    out.write("\n}\n")


def _encoded(value: Any, depth: int) -> str:
    """``value`` as ``json.dump`` with ``indent=2`` writes it ``depth`` levels deep: a JSON
    string holds no raw line break, so every line break is one of the layout's."""
    text = json.dumps(value, ensure_ascii=False, indent=2, default=str)
    return text.replace("\n", "\n" + "  " * depth)


def _value(value: Any) -> str:
    if isinstance(value, list):
        return f"[{len(value)} contact(s)]"
    return "∅" if value is None else repr(value)


def print_result(result: CycleResult, out: TextIO, *, dry_run: bool) -> None:
    """Print what a cycle would do (plan) or did (sync), one line per item."""
    if result.plan is None:
        out.write(f"No plan: {result.error}\n")
        return
    doc = result.as_json(stream=True)  # item by item: see ``Items``
    verb = "would" if dry_run else "did"
    counts = result.plan.counts()
    out.write(
        f"run {result.run_id}: {verb} create {counts['create']}, adopt {counts['adopt']}, "
        f"update {counts['update']}, remove {counts['remove']}, block {counts['block']}, "
        f"unblock {counts['unblock']}; {counts['conflict']} conflict(s), "
        f"{counts['held']} held, {counts['unchanged']} unchanged\n"
    )
    marks = {
        "create": "+",
        "adopt": "&",
        "update": "~",
        "remove": "-",
        "block": "#",
        "unblock": "o",
    }
    for kind, mark in marks.items():
        for item in doc[kind]:
            result_text = item.get("result")
            suffix = "" if result_text in (None, "ok") else f"  FAILED: {result_text}"
            out.write(
                f"  {mark} {kind:<8} {item['key']:>8}  {item.get('symbol') or '':<12} "
                f"{item.get('login') or '':<32} {item.get('name', '')}{suffix}\n"
            )
            for name, change in item.get("changes", {}).items():
                out.write(f"      {name}: {_value(change['old'])} -> {_value(change['new'])}\n")
            for warning in item.get("warnings", []):
                out.write(f"      warning: {warning}\n")
    for item in doc["deferred"]:
        when = "quarantined" if item["quarantined"] else f"next try {item['retry_after']}"
        out.write(f"  . deferred {item['key']:>8}  failed {item['failures']}x, {when}\n")
    for item in doc["conflict"]:
        out.write(f"  ! conflict {item['key']:>8}  {item['reason']}\n")
    if doc["held"]:
        out.write(
            f"  {len(doc['held'])} removal(s) HELD ({result.plan.held_check}): "
            f"{result.plan.held_reason}:\n"
        )
        for item in doc["held"]:
            out.write(f"      {item['key']:>8}  {item['symbol']:<12} {item['login']}\n")
    for warning in doc["warnings"]:
        out.write(f"  warning: {warning}\n")
    if result.error:
        out.write(f"error: {result.error}\n")
