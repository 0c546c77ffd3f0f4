"""Source safety: an ERP read that looks wrong never turns into removals.

A read that fails or times out yields no plan at all (``syncd.cycle``). A read that
succeeds but looks wrong holds every removal of the cycle (none applied, exit code 3),
with a reason that says which check held it and how to let it through. In order:

- ``empty_scope``: no contractor in scope while accounts are managed. A renamed feature
  ("cecha") or a query that lost its WHERE looks exactly like this.
- ``min_scope``: fewer contractors than ``safety.min_scope`` (a percentage) of the last
  good read's count: a half-read view, a filter that changed. ``min_scope: 0`` switches
  both scope checks off.
- ``max_removals``: more removals than ``safety.max_removals``.

``syncd sync --allow-removals`` lets one cycle through; its read becomes the new reference.
Pure functions: the cycle reads the reference from the runs table and passes it in.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from syncd.config import RemovalLimit
    from syncd.store import RunRow

EMPTY_SCOPE = "empty_scope"
MIN_SCOPE = "min_scope"
MAX_REMOVALS = "max_removals"
SCOPE_CHECKS = frozenset({EMPTY_SCOPE, MIN_SCOPE})
# The run summary's key for the in-scope count of the last read that looked right; every
# recorded run carries it forward, so the newest finished run always knows it.
REFERENCE = "good_scope"
RUNS_SEARCHED = 20  # newest runs searched for the reference (crashed ones carry none)
LET_THROUGH = "`syncd sync --allow-removals` applies them once"


@dataclass(frozen=True, slots=True)
class Hold:
    """Which check held the cycle's removals, and the message that says why."""

    check: str
    reason: str


def judge(
    removals: int,
    scope: int,
    *,
    max_removals: int | None,
    min_scope: int | None,
    reference: int | None,
    feature: str | None,
) -> Hold | None:
    """The check that holds ``removals`` after a read of ``scope`` contractors, if any.

    ``min_scope`` None switches the scope checks off (the plan's own unit tests and
    ``--contractor`` runs); ``max_removals`` None switches the removal guard off.
    """
    if removals == 0:
        return None
    if min_scope is not None and scope == 0:
        named = f" (feature {feature!r})" if feature else ""
        reason = (
            f"the ERP returned no contractor in scope{named}; the feature may have been "
            f"renamed or the query changed: check it in the ERP (`syncd doctor` counts the "
            f"scope). {removals} removal(s) held; if every contractor really left, {LET_THROUGH}"
        )
        return Hold(EMPTY_SCOPE, reason)
    if min_scope is not None and scope < min_scope:
        reason = (
            f"the ERP returned {scope} contractor(s) in scope, fewer than safety.min_scope "
            f"allows ({min_scope}, against {reference} in the last good read): a partial read "
            f"or a changed feature or query is likelier than {removals} customers leaving at "
            f"once; fix the ERP, or if they really left, {LET_THROUGH}"
        )
        return Hold(MIN_SCOPE, reason)
    if max_removals is not None and removals > max_removals:
        reason = (
            f"{removals} removals exceed safety.max_removals ({max_removals}): check the ERP "
            f"(`syncd plan` lists them); if they are right, {LET_THROUGH}"
        )
        return Hold(MAX_REMOVALS, reason)
    return None


def min_scope_count(setting: RemovalLimit, reference: int | None) -> int | None:
    """The fewest contractors a read may return before its removals are held: the
    ``safety.min_scope`` share of ``reference`` (rounded up) or its count, and never fewer
    than one (a read of none is never good). None when the setting is 0: no scope check."""
    if setting.percent is None:
        return max(1, setting.count) if setting.count else None
    if not setting.percent:
        return None
    return max(1, setting.limit(reference or 0))


def reference_of(runs: Iterable[RunRow]) -> int | None:
    """The in-scope count of the last good read, from the newest runs (newest first)."""
    for run in runs:
        value: Any = run.summary.get(REFERENCE)
        if isinstance(value, int):
            return value
    return None


def next_reference(scope: int | None, held_check: str | None, reference: int | None) -> int | None:
    """What this run records as the reference: its own count when its read looked right
    (``scope`` None: it read nothing), else the reference it was judged against."""
    if scope is None or held_check in SCOPE_CHECKS:
        return reference
    return scope
