"""What both SQL portals share: reads, batched writes with their fallback, password hashing.

``SqlAccounts`` reads and writes whatever ``Layout`` its subclass provides (syncd's own
schema, or an existing table mapped in YAML); the subclasses differ only in how
``ensure_ready`` makes the table ready. Writes go in batches, one transaction and a
constant number of statements per batch; a batch the database refuses because of one bad
record is retried one operation per transaction, so that record gets its own error and the
others are applied. Reads never return the password hash; no message or log line carries
it, a plaintext password, or the database password.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager
from datetime import datetime
from typing import Any

import sqlalchemy as sa
import structlog

from connectors._sql import make_engine, redact, translate_errors
from connectors.base import OpOutcome, PortalAccount, PortalOp, SetPassword
from connectors.sql_portal._apply import (
    Prepared,
    prepare,
    record_error,
    refused_record,
    write_batch,
)
from connectors.sql_portal._layout import Layout
from connectors.sql_portal.schema import CONTACT_FIELDS, contact_from_row, max_length, to_db_time
from syncd.clock import utcnow
from syncd.errors import PasswordRejected, PortalUnavailable, RecordError
from syncd.mapping import fold_login
from syncd.model import SYNCED_FIELDS, PortalLimits
from syncd.passwords import cores, hash_password

log = structlog.get_logger(__name__)

LOGINS_PER_QUERY = 1000  # SQL Server allows 2,100 parameters; Oracle-style IN limits are 1,000
ROWS_PER_FETCH = 500  # rows fetched at a time when streaming the full listing


class SqlAccounts:
    """``connectors.base.Portal`` over SQLAlchemy, for the table a subclass lays out."""

    def __init__(
        self,
        url: str,
        *,
        password: str | None = None,
        clock: Callable[[], datetime] = utcnow,
        batch_size: int = 500,
        password_scheme: str = "bcrypt",  # noqa: S107 - a scheme name
        password_cost: int | None = None,
    ) -> None:
        if batch_size < 1:
            message = f"batch_size must be at least 1 (got {batch_size})"
            raise ValueError(message)
        self._engine = make_engine(url, password=password)
        # The URL with the password merged in, so translate_errors scrubs it from messages.
        self._url = self._engine.url
        self._clock = clock
        self._batch_size = batch_size
        self._scheme = password_scheme
        self._cost = password_cost
        self._fold: bool | None = None  # see _folds_logins

    def __repr__(self) -> str:
        return f"{type(self).__name__}({redact(self._url)!r})"

    stored_fields: frozenset[str]  # set by each subclass: the synced fields its table keeps

    def ensure_ready(self) -> None:
        """Make the table ready, as the subclass's kind of table needs."""
        raise NotImplementedError

    def _layout(self) -> Layout:
        """The table this portal reads and writes (a subclass may reflect it on first use)."""
        raise NotImplementedError

    def limits(self) -> PortalLimits:
        """The column lengths of the stored fields (``connectors.base.LimitedPortal``) and
        the discount column's range: the same limits ``_apply`` checks before writing."""
        layout = self._layout()
        lengths: dict[str, int] = {}
        for name in SYNCED_FIELDS:
            if name != "contacts" and layout.has(name):
                length = max_length(layout.table, layout.columns[name])
                if length is not None:
                    lengths[name] = length
        if layout.contacts is not None:
            for name in CONTACT_FIELDS:
                length = max_length(layout.contacts, name)
                if length is not None:
                    lengths[f"contacts.{name}"] = length
        return PortalLimits(lengths, layout.discount_limit, fold_logins=self._folds_logins(layout))

    def _folds_logins(self, layout: Layout) -> bool:
        """Whether the login column compares case- and accent-insensitively: a MariaDB or
        MySQL ``*_ci`` collation (the usual default), asked once of the catalogue."""
        if self._fold is None:
            self._fold = False
            if self._engine.dialect.name in ("mysql", "mariadb"):
                columns = sa.table(
                    "COLUMNS",
                    sa.column("TABLE_SCHEMA", sa.String),
                    sa.column("TABLE_NAME", sa.String),
                    sa.column("COLUMN_NAME", sa.String),
                    sa.column("COLLATION_NAME", sa.String),
                    schema="information_schema",
                )
                schema = layout.table.schema
                where = {
                    "TABLE_SCHEMA": sa.literal(schema) if schema else sa.func.database(),
                    "TABLE_NAME": sa.literal(layout.table.name),
                    "COLUMN_NAME": sa.literal(layout.columns["login"]),
                }
                query = sa.select(columns.c.COLLATION_NAME).where(
                    *(columns.c[name] == value for name, value in where.items())
                )
                with self._translated(), self._engine.connect() as conn:
                    collation = conn.execute(query).scalar()
                self._fold = str(collation or "").lower().endswith("_ci")
        return self._fold

    def find_by_logins(self, logins: Collection[str]) -> dict[str, PortalAccount]:
        """The accounts whose login is in ``logins``, by the login as asked for.

        One accounts query (and one contacts query, when contacts are stored) per
        ``LOGINS_PER_QUERY`` logins. A stored login that differs only in case is returned
        under the asked-for spelling. Raises ``PortalUnavailable``.
        """
        layout = self._layout()
        wanted = list(dict.fromkeys(logins))
        found: dict[str, PortalAccount] = {}
        with self._translated(), self._engine.connect() as conn:
            for start in range(0, len(wanted), LOGINS_PER_QUERY):
                chunk = wanted[start : start + LOGINS_PER_QUERY]
                asked = set(chunk)
                contacts: dict[Any, list[dict[str, Any]]] = {}
                if layout.contacts is not None:
                    ids = sa.select(layout.col("id")).where(layout.login_matches(chunk))
                    query = (
                        sa.select(layout.contacts)
                        .where(layout.contacts.c.account_id.in_(ids.scalar_subquery()))
                        .order_by(layout.contacts.c.account_id, layout.contacts.c.id)
                    )
                    for row in conn.execute(query):
                        contacts.setdefault(row.account_id, []).append(contact_from_row(row))
                rows = conn.execute(
                    sa.select(*layout.listed())
                    .where(layout.login_matches(chunk))
                    .order_by(layout.col("id"))
                )
                spellings = None
                for row in rows:
                    key = str(row.login)
                    if key not in asked:
                        by_lower, by_fold = spellings = spellings or _spellings(chunk)
                        key = by_lower.get(key.lower()) or by_fold.get(fold_login(key), key)
                    found[key] = layout.account_from_row(row, contacts.get(row.id, []))
        return found

    def accounts(self) -> Iterator[PortalAccount]:
        """Stream every account (with its contacts, when stored), ordered by id.

        Raises ``PortalUnavailable``. Contacts come from a second streamed query on a
        second connection, merge-joined on the account id, so memory stays flat however
        many accounts there are. An account written while the listing runs may be seen
        without its newest contacts; the next reconcile corrects that.
        """
        layout = self._layout()
        accounts_query = sa.select(*layout.listed()).order_by(layout.col("id"))
        with self._translated(), self._engine.connect() as accounts_conn:
            rows = accounts_conn.execution_options(yield_per=ROWS_PER_FETCH).execute(accounts_query)
            if layout.contacts is None:
                for row in rows:
                    yield layout.account_from_row(row, [])
                return
            contact = layout.contacts
            contacts_query = sa.select(contact).order_by(contact.c.account_id, contact.c.id)
            with self._engine.connect() as contacts_conn:
                contact_rows = iter(
                    contacts_conn.execution_options(yield_per=ROWS_PER_FETCH).execute(
                        contacts_query
                    )
                )
                pending = next(contact_rows, None)
                for row in rows:
                    contacts: list[dict[str, Any]] = []
                    while pending is not None and pending.account_id <= row.id:
                        if pending.account_id == row.id:
                            contacts.append(contact_from_row(pending))
                        pending = next(contact_rows, None)
                    yield layout.account_from_row(row, contacts)

    def apply(self, ops: Sequence[PortalOp]) -> list[OpOutcome]:
        """Apply ``ops`` in batches; one outcome per op, in order (see ``Portal.apply``).

        A ``SetPassword`` is hashed here with ``portal.password_scheme``. Ops whose values
        the portal cannot hold get a ``RecordError`` before anything is written. Raises
        ``PortalUnavailable`` when the portal fails before any op succeeded; raises
        ``FatalError`` (before writing anything) for an op with an unknown field.
        """
        layout = self._layout()
        hashes = self._hashes(ops)
        outcomes: list[OpOutcome | None] = [None] * len(ops)
        prepared: list[Prepared] = []
        for index, op in enumerate(ops):
            hashed = hashes.get(index)
            item = hashed if isinstance(hashed, RecordError) else prepare(layout, index, op, hashed)
            if isinstance(item, Prepared):
                prepared.append(item)
            else:
                outcomes[index] = OpOutcome(op, error=item)
        for batch in self._batches(prepared):
            try:
                self._apply_batch(layout, batch, outcomes)
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

    def _hashes(self, ops: Sequence[PortalOp]) -> dict[int, str | RecordError]:
        """The hash of each ``SetPassword``'s password, by op index, hashed on every core.

        Threads, not processes: bcrypt and argon2-cffi release the GIL while hashing, so
        threads use every core without pickling passwords to other processes. Measured on
        the 2-core test machine (docs/mail.md), 8 bcrypt-12 hashes ran at 4.1 hashes/s in
        a thread pool and 4.3/s in a process pool; argon2id 7.5/s and 7.3/s. The mailer
        (``syncd.mail._batch``) sends the previous chunk's mails meanwhile."""
        wanted = [(index, op) for index, op in enumerate(ops) if isinstance(op, SetPassword)]
        if not wanted:
            return {}

        def one(op: SetPassword) -> str | RecordError:
            try:
                return hash_password(op.password, self._scheme, self._cost)
            except PasswordRejected as error:  # its message never holds the password
                message = f"the password for contractor {op.key} cannot be used: {error}"
                return RecordError(op.key, message)

        workers = min(len(wanted), cores())
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="hash") as pool:
            hashed = list(pool.map(one, [op for _, op in wanted]))
        return {index: value for (index, _), value in zip(wanted, hashed, strict=True)}

    def _apply_batch(
        self, layout: Layout, batch: list[Prepared], outcomes: list[OpOutcome | None]
    ) -> None:
        now = to_db_time(self._clock())
        done = self._write(layout, batch, now)
        if isinstance(done, sa.exc.DBAPIError):
            if len(batch) > 1:
                # The driver's class name only: its text may quote values of the batch.
                log.info("portal.batch_refused", ops=len(batch), error=type(done.orig).__name__)
            self._apply_one_by_one(layout, batch, outcomes, now)
            return
        for item, outcome in zip(batch, done, strict=True):
            outcomes[item.index] = outcome

    def _apply_one_by_one(
        self,
        layout: Layout,
        batch: list[Prepared],
        outcomes: list[OpOutcome | None],
        now: datetime,
    ) -> None:
        # Each op in its own transaction; outcomes are recorded as they commit, so that a
        # PortalUnavailable raised part-way leaves the committed ones in place.
        for item in batch:
            done = self._write(layout, [item], now)
            if isinstance(done, sa.exc.DBAPIError):
                with self._translated(), self._engine.connect() as conn:
                    error = record_error(layout, conn, item, done)
                outcomes[item.index] = OpOutcome(item.op, error=error)
            else:
                (outcomes[item.index],) = done

    def _write(
        self, layout: Layout, batch: list[Prepared], now: datetime
    ) -> list[OpOutcome] | sa.exc.DBAPIError:
        """Write ``batch`` in one transaction: its outcomes, or the error of a refused record.

        Raises ``PortalUnavailable`` for anything but a record the database refused.
        """
        try:
            with self._translated(), self._engine.begin() as conn:
                return write_batch(layout, conn, batch, now)
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
        targets: set[int | str] = set()
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


def _spellings(asked: list[str]) -> tuple[dict[str, str], dict[str, str]]:
    """``asked`` by lower case and as a ``*_ci`` collation compares (``fold_login``): how a
    login the portal stores in another spelling is named back. Built only for a chunk
    that has such a login, so a first sync does not hold two more spellings of each."""
    by_lower = {login.lower(): login for login in asked}
    by_fold = {fold_login(login): login for login in asked}
    return by_lower, by_fold
