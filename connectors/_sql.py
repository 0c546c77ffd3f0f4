"""Engine helpers shared by every SQL connector: build an engine, print its URL, map errors.

Every connector that talks SQL (the ERP sources and the SQL portal) goes through these three
helpers so that timeouts, secret handling and the driver-error boundary are decided once:

- ``make_engine`` merges a separately configured password into the URL and sets pool and
  connect-timeout options that suit a daemon (a dead server must fail a cycle quickly, not
  hang it).
- ``redact`` and ``describe`` give text that is safe to print or log.
- ``translate_errors`` turns driver errors into ``syncd.errors`` with a message that names
  the server and says what to do, and never carries a password, SQL text or bound values.

For SQL Server (``mssql+pyodbc``) the admin may add ODBC keywords to the URL's query string
and SQLAlchemy passes them through to the connection string, e.g.
``mssql+pyodbc://syncd@erp:1433/GT_FIRMA?driver=ODBC+Driver+18+for+SQL+Server``
``&TrustServerCertificate=yes&ApplicationIntent=ReadOnly``. ``ApplicationIntent=ReadOnly``
routes the read to an Always On readable secondary when there is one and documents intent
otherwise; syncd never writes to the ERP either way.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import sqlalchemy as sa

from syncd._dburl import create_owner_only, describe, driver_message

__all__ = [
    "describe",
    "driver_message",
    "is_connection_problem",
    "make_engine",
    "redact",
    "translate_errors",
]

# Seconds to wait for a connection to be established before calling the server unreachable.
CONNECT_TIMEOUT_S = 10
# Seconds SQLite waits for another writer's lock before raising "database is locked".
SQLITE_BUSY_TIMEOUT_S = 30

# The connect() keyword each DBAPI driver uses for its connect (or busy) timeout.
_TIMEOUT_ARG = {
    "psycopg": ("connect_timeout", CONNECT_TIMEOUT_S),
    "psycopg2": ("connect_timeout", CONNECT_TIMEOUT_S),
    "pymysql": ("connect_timeout", CONNECT_TIMEOUT_S),
    "mysqldb": ("connect_timeout", CONNECT_TIMEOUT_S),
    "mariadbconnector": ("connect_timeout", CONNECT_TIMEOUT_S),
    "pyodbc": ("timeout", CONNECT_TIMEOUT_S),  # ODBC SQL_ATTR_LOGIN_TIMEOUT
    "pysqlite": ("timeout", SQLITE_BUSY_TIMEOUT_S),  # busy timeout, not a connect timeout
}

DEFAULT_HINT = (
    "check that the server is reachable and the configured url is right; "
    "syncd will retry on the next cycle"
)


def make_engine(url: str | sa.URL, *, password: str | None = None, **kw: Any) -> sa.Engine:
    """Create an engine with daemon-friendly defaults; ``password`` overrides the URL's.

    The password is kept apart in the configuration (``source.password``, ``*_file``) so
    that the URL itself can be shown; it is merged only here. ``kw`` goes to
    ``sa.create_engine`` and wins over the defaults (``connect_args`` are merged key by key).
    """
    parsed = sa.make_url(url)
    if password is not None:
        parsed = parsed.set(password=password)
    connect_args: dict[str, Any] = {}
    timeout = _TIMEOUT_ARG.get(parsed.get_driver_name())
    if timeout is not None:
        connect_args[timeout[0]] = timeout[1]
    if parsed.get_driver_name() == "pymysql" and parsed.password:
        # pymysql encodes a str password as latin-1 and crashes (outside the DBAPI error
        # classes) on anything else; the server expects the UTF-8 bytes a mysql client sends.
        connect_args["password"] = str(parsed.password).encode("utf-8")
    if parsed.get_backend_name() == "postgresql":
        # syncd streams every row of its reads through server-side cursors; PostgreSQL plans
        # cursors for a fast first row (cursor_tuple_fraction 0.1) and picks a nested-loop
        # plan for the GT join that is 30x slower over the whole result. We read it all.
        connect_args["options"] = "-c cursor_tuple_fraction=1"
    if parsed.get_driver_name() == "psycopg":
        # psycopg 3 prepares a statement on the server after its fifth execution, and the
        # server may then keep a generic plan made while a table was small: the SQL
        # portal's "new ids by login" SELECT (an IN-list of a batch's logins) kept a
        # sequential scan as the accounts table grew, 0.7 s a batch at 100,000 (a first
        # sync took 149 s instead of 30). Every statement is planned for its values, as
        # psycopg2 (which never prepares) always did.
        connect_args["prepare_threshold"] = None
    connect_args.update(kw.pop("connect_args", {}))
    kw.setdefault("pool_pre_ping", True)
    create_owner_only(parsed)
    return sa.create_engine(parsed, connect_args=connect_args, **kw)


def redact(url: str | sa.URL) -> str:
    """The URL with its password replaced by ``***``: safe for logs, messages and output."""
    try:
        return sa.make_url(url).render_as_string(hide_password=True)
    except sa.exc.ArgumentError:
        return "<unparseable database url>"


def is_connection_problem(error: BaseException) -> bool:
    """True when ``error`` means the server could not be reached or the connection broke."""
    if isinstance(error, sa.exc.TimeoutError):
        return True
    if not isinstance(error, sa.exc.DBAPIError):
        return False
    if error.connection_invalidated or isinstance(error, sa.exc.InterfaceError):
        return True
    # OperationalError also covers "no such table" on SQLite; without a statement it was
    # raised while connecting.
    return isinstance(error, sa.exc.OperationalError) and error.statement is None


@contextmanager
def translate_errors(
    what: str,
    error_cls: type[Exception],
    *,
    url: str | sa.URL | None = None,
    hint: str = DEFAULT_HINT,
) -> Iterator[None]:
    """Re-raise driver errors met in the block as ``error_cls`` with a message for a human.

    ``what`` names the thing (``"the ERP"``); ``url``, when given, adds which server and
    database, password hidden, and its password is scrubbed from the driver's text.
    Connection problems (refused, timed out, dropped mid-stream, pool exhausted) and other
    server-side failures (missing table, permission denied) are translated;
    ``IntegrityError`` and ``DataError`` are left alone because they concern one record and
    only the caller knows which.
    """
    try:
        yield
    except (sa.exc.IntegrityError, sa.exc.DataError):
        raise
    except (sa.exc.DBAPIError, sa.exc.TimeoutError) as error:
        secrets: tuple[str | None, ...] = ()
        where = ""
        if url is not None:
            where = f" ({describe(url)})"
            try:
                secrets = (sa.make_url(url).password,)
            except sa.exc.ArgumentError:
                secrets = ()
        detail = driver_message(error, secrets=secrets)
        if is_connection_problem(error):
            message = f"cannot reach {what}{where}: {detail}; {hint}"
        else:
            message = (
                f"reading {what}{where} failed: {detail}; check that the database is the "
                f"right one and the login may read it; syncd will retry on the next cycle"
            )
        raise error_cls(message) from error
