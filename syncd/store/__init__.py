"""The state store: syncd's own memory of bindings, runs, audit trail, mail outbox and conflicts.

It lives in the database named by ``state.url`` (SQLite by default, PostgreSQL when two
instances share it, MariaDB too). Its schema is managed by alembic migrations that
``migrate()`` applies on start. The cycle writes each batch of results with one
``commit_batch`` call: the account changes, their audit entries and the mails they cause go
in one transaction (spec section 6), so a crash can neither lose a mail nor invent one.
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
from syncd.store import _mail as mail_sql
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
    binding_from_row,
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

_INSERT_AUDIT = sa.insert(audit)
# Rows fetched per round trip when streaming all bindings.
_STREAM_CHUNK = 1000
# Keys (or logins) per ``IN (...)`` list: well under every backend's parameter limit.
KEYS_PER_QUERY = 1000
# ``binding_entries`` values that never equal a digest (see there).
INACTIVE = ""
UNDIGESTED = "?"


def index_entry(item: Binding) -> str:
    """What ``StateStore.binding_entries`` gives for ``item``."""
    return INACTIVE if item.status == "inactive" else (item.source_fingerprint or UNDIGESTED)


class StateStore:
    """syncd's state database. Open with ``StateStore.open(url)``, then ``migrate()``."""

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

    def load_bindings(self, keys: Collection[str] | None = None) -> dict[str, Binding]:
        """Every binding by contractor key (only those of ``keys``, when given), read with
        one query streamed in chunks (``keys``: one query per ``KEYS_PER_QUERY`` keys)."""
        if keys is None:
            return self._bindings_where([None])
        ordered = sorted(set(keys))
        return self._bindings_where(
            [
                binding.c.contractor_key.in_(ordered[i : i + KEYS_PER_QUERY])
                for i in range(0, len(ordered), KEYS_PER_QUERY)
            ]
        )

    def bindings_with_logins(self, logins: Collection[str]) -> dict[str, Binding]:
        """The bindings holding any of ``logins``, by contractor key (one query per
        ``KEYS_PER_QUERY`` logins): who owns a login, without reading every binding."""
        ordered = sorted(set(logins))
        return self._bindings_where(
            [
                binding.c.login.in_(ordered[i : i + KEYS_PER_QUERY])
                for i in range(0, len(ordered), KEYS_PER_QUERY)
            ]
        )

    def _bindings_where(
        self, conditions: Sequence[sa.ColumnElement[bool] | None]
    ) -> dict[str, Binding]:
        found: dict[str, Binding] = {}
        with self.begin(write=False) as connection:
            for condition in conditions:
                query = sa.select(binding)
                if condition is not None:
                    query = query.where(condition)
                result = connection.execution_options(yield_per=_STREAM_CHUNK).execute(query)
                found.update((row.contractor_key, binding_from_row(row._mapping)) for row in result)
        return found

    def binding_entries(self) -> Iterator[tuple[str, str]]:
        """(contractor key, the raw-row digest its binding was applied from) for every
        binding, streamed from one query: all a quiet cycle needs of the bindings
        (``syncd._binding_index``, which keeps them compact and may read them twice).

        An inactive binding (deactivated account) reads ``INACTIVE``, one applied before
        raw digests existed ``UNDIGESTED``: neither equals a real digest, so their
        contractors are mapped again when the ERP has them.
        """
        entry = sa.case(
            (binding.c.status == "inactive", sa.literal(INACTIVE)),
            else_=sa.func.coalesce(binding.c.source_fingerprint, sa.literal(UNDIGESTED)),
        )
        query = sa.select(binding.c.contractor_key, entry)
        with self.begin(write=False) as connection:
            result = connection.execution_options(yield_per=_STREAM_CHUNK).execute(query)
            yield from result  # a Row unpacks like the (key, entry) tuple it is typed as

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

    # -- the mailer's side ------------------------------------------------------------------

    def due_mails(self, *, limit: int = 100, key: str | None = None) -> list[MailRow]:
        """Pending mails whose ``not_before`` has passed, oldest first (only ``key``'s)."""
        query = (
            sa.select(outbox)
            .where(outbox.c.status == "pending", outbox.c.not_before <= self.clock())
            .order_by(outbox.c.not_before, outbox.c.id)
            .limit(limit)
        )
        if key is not None:
            query = query.where(outbox.c.contractor_key == key)
        with self.begin(write=False) as connection:
            return [mail_from_row(row._mapping) for row in connection.execute(query)]

    def mark_mail(
        self,
        mail_id: int,
        *,
        status: str,
        error: str | None = None,
        retry_at: datetime | None = None,
    ) -> None:
        """Record one delivery attempt: ``sent``, ``failed`` (for good), or ``pending`` again
        with ``retry_at`` as its new ``not_before`` after a temporary SMTP error."""
        values: dict[str, Any] = {"status": status, "attempts": outbox.c.attempts + 1}
        values["last_error"] = error
        if status == "sent":
            values["sent_at"] = self.clock()
        if retry_at is not None:
            values["not_before"] = retry_at
        with self.begin() as connection:
            connection.execute(sa.update(outbox).where(outbox.c.id == mail_id).values(values))

    def record_sent(
        self,
        mail_id: int,
        *,
        activate: str | None,
        entry: AuditEntry,
        recipient: str | None = None,
    ) -> None:
        """Record, in one short transaction, that the SMTP server accepted mail ``mail_id``
        (sent to ``recipient``, when the mailer chose another address than the row's).

        ``activate`` names the contractor whose account now has a password (activation,
        reset): its binding gets ``activated`` and, if it was pending, status ``active``.
        """
        now = self.clock()
        sent = {"m_id": mail_id, "m_now": now, "m_to": recipient}
        with self.begin() as connection:
            connection.execute(mail_sql.SENT, sent)
            if activate is not None:
                connection.execute(mail_sql.ACTIVATED, {"b_key": activate, "b_now": now})
            connection.execute(_INSERT_AUDIT, [batch.audit_values(entry, now, None)])

    def settle_mails(
        self,
        *,
        failed: Sequence[tuple[int, str]] = (),
        deferred: Sequence[tuple[int, str, datetime]] = (),
        cancelled: Sequence[tuple[int, str]] = (),
        audits: Sequence[AuditEntry] = (),
    ) -> None:
        """Record a batch's undelivered mails in one transaction: ``failed`` (id, answer)
        for good, ``deferred`` (id, error, retry at) to try again, ``cancelled`` (id, why)."""
        now = self.clock()
        with self.begin() as connection:
            if failed:
                params = [{"m_id": i, "m_error": e} for i, e in failed]
                connection.execute(mail_sql.FAILED, params)
            if deferred:
                params = [{"m_id": i, "m_error": e, "m_retry_at": at} for i, e, at in deferred]
                connection.execute(mail_sql.DEFERRED, params)
            if cancelled:
                params = [{"m_id": i, "m_error": e} for i, e in cancelled]
                connection.execute(mail_sql.CANCELLED, params)
            if audits:
                rows = [batch.audit_values(a, now, None) for a in audits]
                connection.execute(sa.insert(audit), rows)

    def cancel_pending(self, key: str, templates: Sequence[str], *, why: str) -> None:
        """Cancel contractor ``key``'s pending mails of these ``templates`` (one statement)."""
        params = [{"m_key": key, "m_template": t, "m_error": why} for t in templates]
        with self.begin() as connection:
            connection.execute(mail_sql.CANCEL_TEMPLATES, params)

    def bindings_for(self, keys: Collection[str]) -> dict[str, Binding]:
        """The bindings of ``keys`` (those that have one), read with one query."""
        if not keys:
            return {}
        query = sa.select(binding).where(binding.c.contractor_key.in_(sorted(keys)))
        with self.begin(write=False) as connection:
            rows = connection.execute(query).mappings()
            return {row["contractor_key"]: binding_from_row(row) for row in rows}

    # -- the read side: status, explain, history, mail list -----------------------------

    def binding(self, key: str) -> Binding | None:
        """The binding of contractor ``key``, if it has one."""
        return self._one_binding(binding.c.contractor_key == key)

    def find_binding_by_login(self, login: str) -> Binding | None:
        """The binding whose login is ``login`` (already normalised), if any."""
        return self._one_binding(binding.c.login == login)

    def _one_binding(self, where: sa.ColumnElement[bool]) -> Binding | None:
        with self.begin(write=False) as connection:
            row = connection.execute(sa.select(binding).where(where)).mappings().first()
        return None if row is None else binding_from_row(row)

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

    def counts_by_status(self) -> dict[str, int]:
        """How many bound accounts there are in each status."""
        query = sa.select(binding.c.status, sa.func.count()).group_by(binding.c.status)
        with self.begin(write=False) as connection:
            return {status: int(count) for status, count in connection.execute(query)}
