"""Human-readable output of plans and cycle results (``--json`` prints the raw documents)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, TextIO

if TYPE_CHECKING:
    # Only for the annotation: ``status`` and ``check-config`` print JSON through this
    # module and must not load the cycle (plan, apply, backoff) to do it.
    from syncd.cycle import CycleResult


def dump_json(document: Any, out: TextIO) -> None:
    """One JSON document on stdout, nothing else there (spec section 4)."""
    json.dump(document, out, ensure_ascii=False, indent=2, default=str)
    out.write("\n")


def _value(value: Any) -> str:
    if isinstance(value, list):
        return f"[{len(value)} contact(s)]"
    return "∅" if value is None else repr(value)


def print_result(result: CycleResult, out: TextIO, *, dry_run: bool) -> None:
    """Print what a cycle would do (plan) or did (sync), one line per item."""
    if result.plan is None:
        out.write(f"No plan: {result.error}\n")
        return
    doc = result.as_json()
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
