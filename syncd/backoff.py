"""Per-record backoff and quarantine: a record the portal refuses is not retried every cycle.

A record whose portal write fails (the portal refused it: a ``RecordError``) waits before
its next try, longer after each failure (``SCHEDULE``); after ``quarantine_after`` failures
in a row it is quarantined: no cycle sends it again until its ERP row changes (its digest
differs from the one that failed) or support asks for it (``syncd sync --contractor K``).
A success forgets it. Everything here is pure: the clock's reading is passed in.

A cycle where most records fail is not that many bad records but one failing portal
(``portal_failing``): it stops early and marks nobody.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from syncd._plan_items import Deferral
from syncd.store import RecordFailure

# The wait after the 1st, 2nd, ... failure; the last one repeats.
SCHEDULE: tuple[timedelta, ...] = (
    timedelta(minutes=1),
    timedelta(minutes=5),
    timedelta(minutes=30),
    timedelta(hours=2),
    timedelta(hours=6),
    timedelta(days=1),
)
# A cycle is one portal failure when its first FIRST_OPS writes all fail, or more than half
# of at least MAJORITY_OPS writes do.
FIRST_OPS = 10
MAJORITY_OPS = 20


@dataclass(frozen=True, slots=True)
class BackoffPolicy:
    """How long a failed record waits, and after how many failures it is quarantined."""

    quarantine_after: int = 5
    schedule: tuple[timedelta, ...] = SCHEDULE

    def after_failure(
        self,
        previous: RecordFailure | None,
        *,
        key: str,
        login: str | None,
        action: str,
        error: str,
        fingerprint: str | None,
        now: datetime,
    ) -> RecordFailure:
        """The record's backoff after one more failure at ``now``."""
        failures = (previous.failures if previous else 0) + 1
        quarantined = failures >= self.quarantine_after
        wait = self.schedule[min(failures, len(self.schedule)) - 1]
        return RecordFailure(
            key=key,
            login=login,
            action=action,
            failures=failures,
            first_failed_at=previous.first_failed_at if previous else now,
            last_failed_at=now,
            retry_after=None if quarantined else now + wait,
            quarantined=quarantined,
            fingerprint=fingerprint,
            last_error=error,
        )


def not_due(
    failures: Mapping[str, RecordFailure],
    now: datetime,
    *,
    asked_for: Collection[str] | None = None,
) -> dict[str, Deferral]:
    """The records a cycle at ``now`` must leave alone, for ``PlanOptions.deferred``.

    Those support asked for by key (``sync --contractor K``) are always due: that is how a
    quarantined record is retried by hand.
    """
    asked = frozenset(asked_for or ())
    return {
        key: Deferral(
            fingerprint=row.fingerprint,
            failures=row.failures,
            quarantined=row.quarantined,
            retry_after=row.retry_after,
            error=row.last_error,
        )
        for key, row in failures.items()
        if key not in asked
        and (row.quarantined or (row.retry_after is not None and row.retry_after > now))
    }


def portal_failing(attempted: int, refused: int) -> bool:
    """Whether ``refused`` of ``attempted`` portal writes look like the portal's fault."""
    if attempted >= FIRST_OPS and refused == attempted:
        return True
    return attempted >= MAJORITY_OPS and 2 * refused > attempted
