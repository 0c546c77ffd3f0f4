"""Per-record backoff, the portal-failure rule, the scope checks and the plan's deferrals."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from syncd import safety
from syncd.backoff import SCHEDULE, BackoffPolicy, not_due, portal_failing
from syncd.config import RemovalLimit
from syncd.mapping import map_contractor
from syncd.model import SourceContractor
from syncd.plan import Deferral, PlanOptions, make_plan
from syncd.store import Binding, RecordFailure, RunRow

T0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)


def _fail(policy: BackoffPolicy, previous: RecordFailure | None, now: datetime) -> RecordFailure:
    return policy.after_failure(
        previous, key="7", login="k@x.pl", action="create", error="no", fingerprint="f", now=now
    )


def test_waits_grow_along_the_schedule_then_the_record_is_quarantined() -> None:
    """1 min, 5 min, 30 min, 2 h after failures 1-4; the fifth quarantines (no retry time);
    the first failure's time is kept throughout."""
    policy = BackoffPolicy(quarantine_after=5)
    row, now, waits = None, T0, []
    for _ in range(5):
        row = _fail(policy, row, now)
        if row.retry_after is not None:
            waits.append(row.retry_after - now)
            now = row.retry_after
    assert row is not None
    assert waits == list(SCHEDULE[:4])
    assert (row.failures, row.quarantined, row.retry_after) == (5, True, None)
    assert row.first_failed_at == T0


def test_the_last_wait_repeats_when_quarantine_comes_late() -> None:
    """With a high ``quarantine_after`` the daily wait repeats after the schedule runs out."""
    policy = BackoffPolicy(quarantine_after=100)
    row = None
    for _ in range(len(SCHEDULE) + 3):
        row = _fail(policy, row, T0)
    assert row is not None
    assert row.retry_after == T0 + timedelta(days=1)


def test_not_due_leaves_out_due_records_and_those_support_asked_for() -> None:
    """Waiting and quarantined records are deferred; a due one and one asked for are not."""
    policy = BackoffPolicy(quarantine_after=2)
    waiting = _fail(policy, None, T0)
    quarantined = _fail(policy, waiting, T0)
    rows = {"1": waiting, "2": quarantined}
    assert sorted(not_due(rows, T0 + timedelta(seconds=30))) == ["1", "2"]
    assert sorted(not_due(rows, T0 + timedelta(minutes=1))) == ["2"]
    assert not_due(rows, T0, asked_for={"1", "2"}) == {}


@pytest.mark.parametrize(
    ("attempted", "refused", "failing"),
    [
        (9, 9, False),
        (10, 10, True),
        (12, 11, False),
        (20, 10, False),
        (20, 11, True),
        (3, 1, False),
    ],
)
def test_portal_failing(attempted: int, refused: int, failing: bool) -> None:
    """The first 10 writes all refused, or more than half of at least 20: the portal's fault."""
    assert portal_failing(attempted, refused) is failing


def test_scope_checks_in_order_and_their_reasons() -> None:
    """Zero in scope, then below min_scope, then over max_removals; nothing without removals."""

    def judge(removals: int, scope: int) -> str | None:
        hold = safety.judge(
            removals, scope, max_removals=3, min_scope=50, reference=100, feature="b2b"
        )
        return hold.check if hold else None

    assert judge(0, 0) is None
    assert judge(5, 0) == safety.EMPTY_SCOPE
    assert judge(5, 49) == safety.MIN_SCOPE
    assert judge(5, 50) == safety.MAX_REMOVALS
    assert judge(3, 50) is None


def test_min_scope_count_from_the_setting() -> None:
    """50 % of 5 is 3 (rounded up); a count stands as given; 0 switches the checks off."""
    assert safety.min_scope_count(RemovalLimit(percent=Decimal(50)), 5) == 3
    assert safety.min_scope_count(RemovalLimit(percent=Decimal(50)), None) == 1
    assert safety.min_scope_count(RemovalLimit(count=40), 5) == 40
    assert safety.min_scope_count(RemovalLimit(percent=Decimal(0)), 5) is None
    assert safety.min_scope_count(RemovalLimit(count=0), 5) is None


def test_a_held_or_unread_run_carries_the_reference_on() -> None:
    """A good read becomes the reference; a read held by a scope check or no read keeps it."""
    assert safety.next_reference(40, None, 100) == 40
    assert safety.next_reference(40, safety.MAX_REMOVALS, 100) == 40
    assert safety.next_reference(0, safety.EMPTY_SCOPE, 100) == 100
    assert safety.next_reference(None, None, 100) == 100
    runs = [_run({}), _run({"good_scope": 7}), _run({"good_scope": 9})]
    assert safety.reference_of(runs) == 7


def _run(summary: dict[str, int]) -> RunRow:
    return RunRow("r", "sync", "cli", T0, None, "ok", summary, None)


def test_the_plan_defers_a_failed_record_only_while_its_erp_row_is_the_same() -> None:
    """Same raw row as the failure: deferred (its login still claimed); a changed row is
    planned at once; a deferred removal is not applied."""
    contractor = SourceContractor("1", "K1", "Alfa", email_raw="a@x.pl")
    desired = map_contractor(contractor, source_fingerprint=contractor.raw_fingerprint())
    deferral = Deferral(contractor.raw_fingerprint(), 5, True, None, "refused")
    options = PlanOptions(deferred={"1": deferral})
    plan = make_plan([desired], {}, options)
    assert (list(plan.create), [d.key for d in plan.deferred]) == ([], ["1"])
    changed = SourceContractor("1", "K1", "Alfa Beta", email_raw="a@x.pl")
    desired = map_contractor(changed, source_fingerprint=changed.raw_fingerprint())
    plan = make_plan([desired], {}, options)
    assert ([c.desired.key for c in plan.create], plan.deferred) == (["1"], [])
    bound = Binding("9", "90", "z@x.pl", "fp", "{}", "active", erp_blocked=False,
                    support_block_reason=None)  # fmt: skip
    gone = Deferral(None, 2, False, T0, "refused")
    plan = make_plan([], {"9": bound}, PlanOptions(deferred={"9": gone}))
    assert (plan.remove, [d.key for d in plan.deferred]) == ([], ["9"])
