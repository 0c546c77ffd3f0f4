"""The state store: syncd's own memory of bindings, runs, audit trail, mail outbox and conflicts.

It lives in the database named by ``state.url`` (SQLite by default, PostgreSQL when two
instances share it, MariaDB too). Its schema is managed by alembic migrations that
``migrate()`` applies on start. The cycle writes each batch of results with one
``commit_batch`` call: the account changes, their audit entries and the mails they cause go
in one transaction (spec section 6), so a crash can neither lose a mail nor invent one.

``StateStore`` is this module's class with two mixins: its reads of the bindings
(``_bindings``) and its side of the mailer (``_mail``); the batch's statements are
``_batch``'s, the rows ``_rows``'s, the engine and migrations ``_db``'s.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from syncd._bulk import insert_rows
from syncd._dburl import describe
from syncd.clock import utcnow
from syncd.errors import FatalError
from syncd.model import Conflict
from syncd.store import _batch as batch
from syncd.store import _db as db
from syncd.store._bindings import (
    INACTIVE,
    KEYS_PER_QUERY,
    UNDIGESTED,
    BindingReads,
    index_entry,
)
from syncd.store._mail import MailDelivery
from syncd.store._rows import (
    AuditEntry,
    AuditRow,
    Binding,
    ConflictRow,
    MailEntry,
    MailRow,
    RecordFailure,
    RunRow,
    audit_from_row,
    binding_params,
    conflict_from_row,
    dump_json,
    failure_from_row,
    failure_values,
    mail_from_row,
    run_from_row,
)
from syncd.store.schema import audit, binding, conflict, outbox, record_backoff, run

__all__ = [
    "INACTIVE",
    "KEYS_PER_QUERY",
    "UNDIGESTED",
    "AuditEntry",
    "AuditRow",
    "Binding",
    "ConflictRow",
    "MailEntry",
    "MailRow",
    "RecordFailure",
    "RunRow",
    "StateStore",
    "index_entry",
]


class StateStore(BindingReads, MailDelivery):
    """syncd's state database. Open with ``StateStore.open(url)``, then ``migrate()``.

    Its reads of the bindings are ``BindingReads``'s (``syncd.store._bindings``), its
    side of the mailer ``MailDelivery``'s (``syncd.store._mail``)."""

    def __init__(self, engine: sa.Engine, url: str, clock: Callable[[], datetime]) -> None:
        self._engine = engine
        self._url = url
        self.clock = clock

    @classmethod
    def open(cls, url: str, *, clock: Callable[[], datetime] = utcnow) -> StateStore:
        """Create the engine (connections are made lazily, on first use)."""
        with db.guard(url, "opening it"):
            engine = db.create_store_engine(url)
        return cls(engine, url, clock)

    @property
    def name(self) -> str:
        """A password-free description of the store, for messages and ``doctor``."""
        return describe(self._url)

    @property
    def engine(self) -> sa.Engine:
        """The engine, for syncd modules that keep tables in the store (the lease)."""
        return self._engine

    def migrate(self) -> None:
        """Bring the schema to the newest revision; a no-op when it is already there."""
        with self.guard("migrating its schema"):
            db.migrate(self._engine)

    def close(self) -> None:
        """Close every pooled connection."""
        self._engine.dispose()

    @contextmanager
    def guard(self, doing: str) -> Iterator[None]:
        """Translate driver errors met while ``doing`` into ``UnavailableError``/``FatalError``."""
        with db.guard(self._url, doing):
            yield

    @contextmanager
    def begin(self, *, write: bool = True) -> Iterator[sa.Connection]:
        """One transaction; errors are translated (see ``guard``)."""
        with (
            self.guard("writing" if write else "reading"),
            db.transaction(self._engine, write=write) as connection,
        ):
            yield connection

    # -- the cycle's side -------------------------------------------------------------------

    def commit_batch(
        self,
        *,
        upserts: Sequence[Binding] = (),
        inserts: Sequence[Binding] = (),
        deletes: Sequence[str] = (),
        audits: Sequence[AuditEntry] = (),
        mails: Sequence[MailEntry] = (),
        cancel_mail_for: Sequence[str] = (),
        failures: Sequence[RecordFailure] = (),
        settled: Sequence[str] = (),
        run_id: str | None = None,
    ) -> None:
        """Write one batch of results in one transaction: all of it, or nothing.

        Order: pending mails of ``cancel_mail_for`` are cancelled, ``deletes`` are removed,
        ``upserts`` written (a login may move from a deleted key, or between two upserted
        keys, within one batch), then audits and mails are added. Each step is a single
        executemany, so the number of statements does not grow with the batch. ``failures``
        replace the backoff rows of their keys and ``settled`` keys lose theirs. Upserts
        first park every changing login on a placeholder, then update the existing keys
        and insert the missing ones (``created_at`` of existing keys is kept). ``inserts``
        are bindings the caller knows are new (a create's): one plain INSERT, after the
        upserts, so a login an upsert moves away is free for them.

        Raises ``UnavailableError`` when the store cannot be reached, ``FatalError`` when it
        refuses the batch (two bindings with one login: a bug in the caller).
        """
        now = self.clock()
        with self.begin() as connection:
            if cancel_mail_for:
                connection.execute(batch.CANCEL_MAIL, [{"b_key": key} for key in cancel_mail_for])
            if deletes:
                connection.execute(batch.DELETE_BINDING, [{"b_key": key} for key in deletes])
            if upserts:
                params = [binding_params(item, now) for item in upserts]
                connection.execute(batch.PARK_LOGIN, params)
                connection.execute(batch.UPDATE_BINDING, params)
                connection.execute(batch.INSERT_MISSING_BINDING, params)
            # The batch's bulk rows go through the DBAPI's executemany (``syncd._bulk``).
            if inserts:
                rows = [batch.binding_row(item, now) for item in inserts]
                insert_rows(connection, binding, batch.BINDING_COLUMNS, rows)
            if audits:
                rows = [batch.audit_row(a, now, run_id) for a in audits]
                insert_rows(connection, audit, batch.AUDIT_COLUMNS, rows)
            if mails:
                rows = [batch.mail_row(m, now) for m in mails]
                insert_rows(connection, outbox, batch.MAIL_COLUMNS, rows)
            gone = [*settled, *(f.key for f in failures)]
            if gone:
                connection.execute(batch.DELETE_BACKOFF, [{"b_key": key} for key in gone])
            if failures:
                connection.execute(sa.insert(record_backoff), [failure_values(f) for f in failures])

    def record_failures(self, keys: Collection[str] | None = None) -> dict[str, RecordFailure]:
        """The records in backoff or quarantine by key (only those of ``keys``), one query.

        The table holds only records whose last write failed, so a cycle reads it whole."""
        query = sa.select(record_backoff)
        if keys is not None:
            query = query.where(record_backoff.c.contractor_key.in_(sorted(keys)))
        with self.begin(write=False) as connection:
            rows = connection.execute(query).mappings()
            return {row["contractor_key"]: failure_from_row(row) for row in rows}

    def settle_failures(self, keys: Collection[str]) -> None:
        """Forget the backoff of ``keys`` (they need no portal write any more), one statement."""
        with self.begin() as connection:
            connection.execute(batch.DELETE_BACKOFF, [{"b_key": key} for key in sorted(keys)])

    def sync_conflicts(self, conflicts: Sequence[Conflict]) -> None:
        """Make ``syncd_conflict`` hold exactly ``conflicts``, writing only what changed.

        ``first_seen`` survives for a conflict that stays; nothing is written when the set
        is unchanged.
        """
        with self.begin() as connection:
            current = {
                row.contractor_key: row._mapping for row in connection.execute(sa.select(conflict))
            }
            diff = batch.diff_conflicts(current, conflicts, self.clock())
            if diff.deletes:
                connection.execute(batch.DELETE_CONFLICT, diff.deletes)
            if diff.updates:
                connection.execute(batch.UPDATE_CONFLICT, diff.updates)
            if diff.inserts:
                connection.execute(sa.insert(conflict), diff.inserts)

    def start_run(self, run_id: str, *, kind: str, trigger: str) -> None:
        """Record that cycle ``run_id`` began (``kind`` sync|full, ``trigger`` cli|schedule)."""
        values = {
            "run_id": run_id,
            "kind": kind,
            "trigger": trigger,
            "started_at": self.clock(),
            "status": "running",
        }
        with self.begin() as connection:
            connection.execute(sa.insert(run).values(values))

    def finish_run(
        self, run_id: str, *, status: str, summary: dict[str, Any], error: str | None = None
    ) -> None:
        """Record how cycle ``run_id`` ended: ok, failed, unavailable or held."""
        values = {
            "finished_at": self.clock(),
            "status": status,
            "summary_json": dump_json(summary),
            "error": error,
        }
        with self.begin() as connection:
            done = connection.execute(sa.update(run).where(run.c.run_id == run_id).values(values))
        if done.rowcount != 1:
            message = f"cannot finish run {run_id}: it was never started (a bug in the caller)"
            raise FatalError(message)

    # -- the read side: status, explain, history, mail list -----------------------------

    def failure_counts(self) -> dict[str, int]:
        """How many records are ``quarantined`` and how many ``retrying`` (one GROUP BY)."""
        column = record_backoff.c.quarantined
        query = sa.select(column, sa.func.count()).group_by(column)
        with self.begin(write=False) as connection:
            counts = {bool(flag): int(count) for flag, count in connection.execute(query)}
        return {"quarantined": counts.get(True, 0), "retrying": counts.get(False, 0)}

    def last_runs(self, limit: int = 10) -> list[RunRow]:
        """The most recent cycles, newest first."""
        query = sa.select(run).order_by(run.c.id.desc()).limit(limit)
        with self.begin(write=False) as connection:
            return [run_from_row(row) for row in connection.execute(query).mappings()]

    def audit_for(self, key: str, limit: int = 100) -> list[AuditRow]:
        """The last ``limit`` audit entries of contractor ``key``, oldest first."""
        query = (
            sa.select(audit)
            .where(audit.c.contractor_key == key)
            .order_by(audit.c.id.desc())
            .limit(limit)
        )
        with self.begin(write=False) as connection:
            rows = [audit_from_row(row) for row in connection.execute(query).mappings()]
        return rows[::-1]

    def conflicts(self) -> list[ConflictRow]:
        """Every current conflict, by contractor key."""
        query = sa.select(conflict).order_by(conflict.c.contractor_key)
        with self.begin(write=False) as connection:
            return [conflict_from_row(row) for row in connection.execute(query).mappings()]

    def conflict(self, key: str) -> ConflictRow | None:
        """The current conflict of contractor ``key``, if any."""
        query = sa.select(conflict).where(conflict.c.contractor_key == key)
        with self.begin(write=False) as connection:
            row = connection.execute(query).mappings().first()
        return None if row is None else conflict_from_row(row)

    def mails(
        self, *, status: str | None = None, key: str | None = None, limit: int = 100
    ) -> list[MailRow]:
        """Outbox entries, newest first, optionally only of one status or one contractor."""
        query = sa.select(outbox).order_by(outbox.c.id.desc()).limit(limit)
        if status is not None:
            query = query.where(outbox.c.status == status)
        if key is not None:
            query = query.where(outbox.c.contractor_key == key)
        with self.begin(write=False) as connection:
            return [mail_from_row(row) for row in connection.execute(query).mappings()]

    def mail_counts(self) -> dict[str, int]:
        """How many outbox entries there are in each status (one GROUP BY, for metrics)."""
        query = sa.select(outbox.c.status, sa.func.count()).group_by(outbox.c.status)
        with self.begin(write=False) as connection:
            return {status: int(count) for status, count in connection.execute(query)}

    # -- housekeeping -------------------------------------------------------------------

    def purge(
        self, *, audit_before: datetime, mail_before: datetime, runs_before: datetime
    ) -> dict[str, int]:
        """Delete audit rows, sent or cancelled mail and finished runs older than the given
        times, one statement each, in one transaction; returns how many rows went.

        Pending and failed mail is never purged (it still needs a person or a retry), nor
        is the newest run, so ``status`` keeps something to report after a long pause.
        """
        purge_audit = sa.delete(audit).where(audit.c.at < audit_before)
        purge_mail = sa.delete(outbox).where(
            outbox.c.status.in_(("sent", "cancelled")), outbox.c.created_at < mail_before
        )
        with self.begin() as connection:
            newest = connection.execute(sa.select(sa.func.max(run.c.id))).scalar()
            purge_runs = sa.delete(run).where(
                run.c.started_at < runs_before,
                run.c.finished_at.is_not(None),
                run.c.id < (newest or 0),
            )
            return {
                "audit": connection.execute(purge_audit).rowcount,
                "mail": connection.execute(purge_mail).rowcount,
                "runs": connection.execute(purge_runs).rowcount,
            }
