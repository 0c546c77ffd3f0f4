"""Housekeeping on SQLite, PostgreSQL and MariaDB: old rows go, everything still needed stays."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from syncd.config import RetentionConfig
from syncd.daemon.housekeeping import housekeep
from syncd.store import AuditEntry, MailEntry, StateStore
from syncd.store.schema import audit, outbox, run

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
OLD = NOW - timedelta(days=400)  # older than every default retention
RECENT = NOW - timedelta(days=1)


class Clock:
    """The store's clock, moved by the test to date the rows it writes."""

    def __init__(self) -> None:
        self.now = OLD

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def store(db_url: str) -> Iterator[tuple[StateStore, Clock]]:
    """A migrated state store on each backend, with a settable clock."""
    clock = Clock()
    opened = StateStore.open(db_url, clock=clock)
    opened.migrate()
    yield opened, clock
    assert opened.engine.pool.checkedout() == 0
    opened.close()


def write_rows(store: StateStore, clock: Clock, when: datetime, tag: str) -> None:
    """One audit row, a run, and one mail in each status, all dated ``when``."""
    clock.now = when
    mails = [
        MailEntry(key=f"{tag}-{status}", account_id="1", recipient="a@x.pl",
                  template="activation", not_before=when, context={}, language="pl")
        for status in ("pending", "sent", "failed", "cancelled")
    ]  # fmt: skip
    store.commit_batch(audits=[AuditEntry(tag, "a@x.pl", "create", "ok", {})], mails=mails)
    with store.begin() as conn:
        for status in ("sent", "failed", "cancelled"):
            conn.execute(
                sa.update(outbox)
                .where(outbox.c.contractor_key == f"{tag}-{status}")
                .values(status=status)
            )
    store.start_run(f"run-{tag}", kind="sync", trigger="schedule")
    store.finish_run(f"run-{tag}", status="ok", summary={})


def test_old_rows_are_purged_and_what_is_still_needed_stays(
    store: tuple[StateStore, Clock],
) -> None:
    """Rows older than the retention go; recent rows, pending and failed mail stay."""
    state, clock = store
    write_rows(state, clock, OLD, "old")
    write_rows(state, clock, RECENT, "new")
    deleted = housekeep(state, RetentionConfig(), NOW)
    assert deleted == {"audit": 1, "mail": 2, "runs": 1}
    with state.begin(write=False) as conn:
        audits = conn.execute(sa.select(audit.c.contractor_key)).scalars().all()
        mails = set(conn.execute(sa.select(outbox.c.contractor_key)).scalars())
        runs = conn.execute(sa.select(run.c.run_id)).scalars().all()
    assert audits == ["new"]
    assert mails == {"old-pending", "old-failed"} | {f"new-{s}" for s in
                     ("pending", "sent", "failed", "cancelled")}  # fmt: skip
    assert runs == ["run-new"]
    assert housekeep(state, RetentionConfig(), NOW) == {"audit": 0, "mail": 0, "runs": 0}


def test_the_newest_run_is_kept_however_old(store: tuple[StateStore, Clock]) -> None:
    """After a long pause ``status`` still has the last cycle to show."""
    state, clock = store
    write_rows(state, clock, OLD, "a")
    write_rows(state, clock, OLD + timedelta(days=1), "b")
    assert housekeep(state, RetentionConfig(), NOW)["runs"] == 1
    assert [r.run_id for r in state.last_runs()] == ["run-b"]
