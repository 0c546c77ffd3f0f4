"""The outbox's queue as a run leaves it: how many mails are still due, and when they go.

Private to ``syncd.mail``. ``sync`` sends mail for at most ``mail.run_budget``; whatever
is still due then must not vanish from sight, so the command says how many and who sends
them (the daemon's next mail run, or the next ``sync``); ``--json`` carries the same.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from syncd.store import StateStore
from syncd.store.schema import outbox

# The daemon sends due mail at least this often (syncd.daemon.jobs.MAX_MAIL_PERIOD; not
# imported, so that ``sync`` does not load the scheduler).
DAEMON_MAIL_PERIOD = timedelta(minutes=1)


@dataclass(frozen=True, slots=True)
class Queue:
    """Pending mail: ``due`` now, and ``waiting`` for a later time (``next_at``)."""

    due: int
    waiting: int
    next_at: datetime | None  # the earliest not_before of the waiting ones


def queue(store: StateStore, key: str | None = None) -> Queue:
    """The pending mail of the outbox (only ``key``'s), in one query."""
    now = store.clock()
    is_due = sa.case((outbox.c.not_before <= now, 1), else_=0)
    waiting_at = sa.case((outbox.c.not_before > now, outbox.c.not_before), else_=None)
    first = sa.type_coerce(sa.func.min(waiting_at), outbox.c.not_before.type)
    query = sa.select(sa.func.sum(is_due), sa.func.count(), first).where(
        outbox.c.status == "pending"
    )
    if key is not None:
        query = query.where(outbox.c.contractor_key == key)
    with store.begin(write=False) as connection:
        due, pending, next_at = connection.execute(query).one()
    due = int(due or 0)
    return Queue(due, int(pending) - due, _aware(next_at, now))


def _aware(value: datetime | None, like: datetime) -> datetime | None:
    """SQLite returns naive datetimes from MIN(); they are in the store's UTC."""
    if value is None or value.tzinfo is not None or like.tzinfo is None:
        return value
    return value.replace(tzinfo=like.tzinfo)


@dataclass(frozen=True, slots=True)
class StillDue:
    """What a run left in the queue, and who sends it when; ``None`` parts are unknown."""

    due: int
    waiting: int
    next_retry: datetime | None
    daemon_next: datetime | None  # the daemon's next mail run, when a daemon runs

    def as_json(self) -> dict[str, Any]:
        return {
            "still_due": self.due,
            "waiting_for_retry": self.waiting,
            "next_retry_at": _iso(self.next_retry),
            "sent_by": "daemon" if self.daemon_next else "next sync",
            "daemon_next_run_at": _iso(self.daemon_next),
        }

    def line(self) -> str | None:
        """The sentence for people, or None when nothing is left."""
        parts: list[str] = []
        if self.due:
            who = (
                f"the daemon's next mail run sends them (by {_short(self.daemon_next)})"
                if self.daemon_next
                else "no daemon is running: the next `syncd sync` sends them"
            )
            parts.append(
                f"{self.due} {_mails(self.due)} still due; {who}, "
                f"or `syncd sync --until-done` sends them all now"
            )
        if self.waiting:
            parts.append(
                f"{self.waiting} {_mails(self.waiting)} waiting for their send time or a "
                f"retry, the first at {_short(self.next_retry)}"
            )
        return "\n".join(f"mail: {part}" for part in parts) or None


def still_due(store: StateStore, *, interval: timedelta, daemon_cycle: datetime | None) -> StillDue:
    """The queue after a run. ``daemon_cycle`` is the daemon's next light cycle as
    ``syncd status`` judges it (None: no daemon); its mail run comes then, or within
    ``DAEMON_MAIL_PERIOD`` when the interval is longer."""
    pending = queue(store)
    daemon_next = None
    if daemon_cycle is not None:
        now = store.clock()
        daemon_next = daemon_cycle
        if interval > DAEMON_MAIL_PERIOD:
            daemon_next = min(daemon_cycle, now + DAEMON_MAIL_PERIOD)
    return StillDue(pending.due, pending.waiting, pending.next_at, daemon_next)


def _mails(count: int) -> str:
    return "mail" if count == 1 else "mails"


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _short(value: datetime | None) -> str:
    return f"{value:%Y-%m-%d %H:%M} UTC" if value is not None else "an unknown time"
