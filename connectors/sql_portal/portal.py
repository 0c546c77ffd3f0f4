"""The portal connector for a B2B portal whose accounts live in SQL tables (``portal.kind: sql``).

The tables are spec section 5's ``b2b_account`` and ``b2b_contact``; ``ensure_ready``
creates them with syncd's own migrations when missing. Writes go in batches, one
transaction and a constant number of statements per batch; a batch the database refuses
because of one bad record is retried one operation per transaction, so that record gets
its own error and the others are applied. Reads never return ``password_hash``, and no
message or log line carries it or the database password.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterator, Sequence
from contextlib import AbstractContextManager
from datetime import datetime
from typing import Any

import sqlalchemy as sa
import structlog

from connectors._sql import make_engine, redact, translate_errors
from connectors.base import OpOutcome, PortalAccount, PortalOp
from connectors.sql_portal._apply import (
    Prepared,
    prepare,
    record_error,
    refused_record,
    write_batch,
)
from connectors.sql_portal._migrate import migrate
from connectors.sql_portal.config import SqlPortalConfig
from connectors.sql_portal.schema import (
    LISTED_COLUMNS,
    account,
    contact,
    contact_from_row,
    synced_fields,
    to_db_time,
)
from syncd.clock import utcnow
from syncd.config.base import secret_value
from syncd.errors import PortalUnavailable

log = structlog.get_logger(__name__)

LOGINS_PER_QUERY = 1000  # SQL Server allows 2,100 parameters; Oracle-style IN limits are 1,000
ROWS_PER_FETCH = 500  # rows fetched at a time when streaming the full listing


class SqlPortal:
    """``connectors.base.Portal`` over SQLAlchemy: SQLite, PostgreSQL, MariaDB, SQL Server."""

    def __init__(
        self,
        url: str,
        *,
        password: str | None = None,
        clock: Callable[[], datetime] = utcnow,
        batch_size: int = 500,
    ) -> None:
        if batch_size < 1:
            message = f"batch_size must be at least 1 (got {batch_size})"
            raise ValueError(message)
        self._engine = make_engine(url, password=password)
        # The URL with the password merged in, so translate_errors scrubs it from messages.
        self._url = self._engine.url
        self._clock = clock
        self._batch_size = batch_size

    @classmethod
    def from_config(
        cls, config: SqlPortalConfig, *, clock: Callable[[], datetime] = utcnow
    ) -> SqlPortal:
        """The portal that ``portal.kind: sql`` describes."""
        return cls(config.url, password=secret_value(config.password), clock=clock)

    def __repr__(self) -> str:
        return f"SqlPortal({redact(self._url)!r})"

    def ensure_ready(self) -> None:
        """Connect and create or upgrade the portal tables. Raises ``PortalUnavailable``."""
        with self._translated():
            migrate(self._engine)

    def find_by_logins(self, logins: Collection[str]) -> dict[str, PortalAccount]:
        """The accounts whose login is in ``logins``, by the login as asked for.

        One accounts query and one contacts query per ``LOGINS_PER_QUERY`` logins. A
        stored login that differs only in case (possible in accounts the portal made
        itself) is returned under the asked-for spelling. Raises ``PortalUnavailable``.
        """
        wanted = list(dict.fromkeys(logins))
        asked = set(wanted)
        by_lower = {login.lower(): login for login in wanted}
        found: dict[str, PortalAccount] = {}
        with self._translated(), self._engine.connect() as conn:
            for start in range(0, len(wanted), LOGINS_PER_QUERY):
                chunk = wanted[start : start + LOGINS_PER_QUERY]
                ids = sa.select(account.c.id).where(account.c.login.in_(chunk))
                query = (
                    sa.select(contact)
                    .where(contact.c.account_id.in_(ids.scalar_subquery()))
                    .order_by(contact.c.account_id, contact.c.id)
                )
                contacts: dict[int, list[dict[str, Any]]] = {}
                for row in conn.execute(query):
                    contacts.setdefault(row.account_id, []).append(contact_from_row(row))
                rows = conn.execute(
                    sa.select(*LISTED_COLUMNS)
                    .where(account.c.login.in_(chunk))
                    .order_by(account.c.id)
                )
                for row in rows:
                    key = row.login
                    if key not in asked:
                        key = by_lower.get(key.lower(), key)
                    found[key] = _to_account(row, contacts.get(row.id, []))
        return found

    def accounts(self) -> Iterator[PortalAccount]:
        """Stream every account with its contacts, ordered by id. Raises ``PortalUnavailable``.

        Two streamed queries on two connections, merge-joined on the account id, so memory
        stays flat however many accounts there are. An account written while the listing
        runs may be seen without its newest contacts; the next reconcile corrects that.
        """
        accounts_query = sa.select(*LISTED_COLUMNS).order_by(account.c.id)
        contacts_query = sa.select(contact).order_by(contact.c.account_id, contact.c.id)
        with (
            self._translated(),
            self._engine.connect() as accounts_conn,
            self._engine.connect() as contacts_conn,
        ):
            rows = accounts_conn.execution_options(yield_per=ROWS_PER_FETCH).execute(accounts_query)
            contact_rows = iter(
                contacts_conn.execution_options(yield_per=ROWS_PER_FETCH).execute(contacts_query)
            )
            pending = next(contact_rows, None)
            for row in rows:
                contacts: list[dict[str, Any]] = []
                while pending is not None and pending.account_id <= row.id:
                    if pending.account_id == row.id:
                        contacts.append(contact_from_row(pending))
                    pending = next(contact_rows, None)
                yield _to_account(row, contacts)

    def apply(self, ops: Sequence[PortalOp]) -> list[OpOutcome]:
        """Apply ``ops`` in batches; one outcome per op, in order (see ``Portal.apply``).

        Ops whose values the portal cannot hold get a ``RecordError`` before anything is
        written. Raises ``PortalUnavailable`` when the portal fails before any op succeeded;
        raises ``FatalError`` (before writing anything) for an op with an unknown field.
        """
        outcomes: list[OpOutcome | None] = [None] * len(ops)
        prepared: list[Prepared] = []
        for index, op in enumerate(ops):
            item = prepare(index, op)
            if isinstance(item, Prepared):
                prepared.append(item)
            else:
                outcomes[index] = OpOutcome(op, error=item)
        for batch in self._batches(prepared):
            try:
                self._apply_batch(batch, outcomes)
            except PortalUnavailable as error:
                if not any(o is not None and o.ok for o in outcomes):
                    raise
                log.warning("portal.unavailable", done=sum(o is not None for o in outcomes))
                for item in prepared:
                    if outcomes[item.index] is None:
                        outcomes[item.index] = OpOutcome(item.op, error=error)
                break
        return [outcome for outcome in outcomes if outcome is not None]

    def close(self) -> None:
        """Release the connection pool. Never raises."""
        try:
            self._engine.dispose()
        except Exception:  # close() must never raise; the process is leaving anyway
            log.warning("portal.close_failed")

    def _apply_batch(self, batch: list[Prepared], outcomes: list[OpOutcome | None]) -> None:
        now = to_db_time(self._clock())
        done = self._write(batch, now)
        if isinstance(done, sa.exc.DBAPIError):
            if len(batch) > 1:
                # The driver's class name only: its text may quote values of the batch.
                log.info("portal.batch_refused", ops=len(batch), error=type(done.orig).__name__)
            self._apply_one_by_one(batch, outcomes, now)
            return
        for item, outcome in zip(batch, done, strict=True):
            outcomes[item.index] = outcome

    def _apply_one_by_one(
        self, batch: list[Prepared], outcomes: list[OpOutcome | None], now: datetime
    ) -> None:
        # Each op in its own transaction; outcomes are recorded as they commit, so that a
        # PortalUnavailable raised part-way leaves the committed ones in place.
        for item in batch:
            done = self._write([item], now)
            if isinstance(done, sa.exc.DBAPIError):
                with self._translated(), self._engine.connect() as conn:
                    outcomes[item.index] = OpOutcome(item.op, error=record_error(conn, item, done))
            else:
                (outcomes[item.index],) = done

    def _write(self, batch: list[Prepared], now: datetime) -> list[OpOutcome] | sa.exc.DBAPIError:
        """Write ``batch`` in one transaction: its outcomes, or the error of a refused record.

        Raises ``PortalUnavailable`` for anything but a record the database refused.
        """
        try:
            with self._translated(), self._engine.begin() as conn:
                return write_batch(conn, batch, now)
        except (sa.exc.IntegrityError, sa.exc.DataError) as error:
            return error
        except PortalUnavailable as error:
            refused = refused_record(error.__cause__)
            if refused is None:
                raise
            return refused

    def _batches(self, prepared: list[Prepared]) -> Iterator[list[Prepared]]:
        # A batch also ends before a second op on the same account, so that the updates of
        # one batch never race each other over the same row or its contacts.
        batch: list[Prepared] = []
        targets: set[int] = set()
        for item in prepared:
            if len(batch) >= self._batch_size or item.account_id in targets:
                yield batch
                batch, targets = [], set()
            batch.append(item)
            if item.account_id is not None:
                targets.add(item.account_id)
        if batch:
            yield batch

    def _translated(self) -> AbstractContextManager[None]:
        return translate_errors("the portal", PortalUnavailable, url=self._url)


def _to_account(row: sa.Row[Any], contacts: list[dict[str, Any]]) -> PortalAccount:
    return PortalAccount(
        id=str(row.id),
        login=row.login,
        contractor_key=row.contractor_key,
        status=row.status,
        block_reason=row.block_reason,
        fields=synced_fields(row, contacts),
    )
