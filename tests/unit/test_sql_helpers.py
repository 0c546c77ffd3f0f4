"""The shared SQL engine helpers: password merging, timeouts, redaction, error translation."""

# ruff: noqa: S105, S106 - the passwords here are fakes whose absence from messages is tested

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa

from connectors._sql import describe, make_engine, redact, translate_errors
from syncd.errors import PortalUnavailable, SourceUnavailable


class _Stop(Exception):
    """Raised by the do_connect hook so that no real connection is attempted."""


def _connect_params(url: str, **kw: Any) -> dict[str, Any]:
    """The keyword arguments make_engine's engine would hand to the DBAPI's connect()."""
    engine = make_engine(url, **kw)
    captured: dict[str, Any] = {}

    @sa.event.listens_for(engine, "do_connect")
    def grab(dialect: object, record: object, cargs: object, cparams: dict[str, Any]) -> None:
        captured.update(cparams)
        raise _Stop

    with pytest.raises(_Stop), engine.connect():
        pass
    engine.dispose()
    return captured


def test_password_is_merged_into_the_url_and_wins_over_the_urls() -> None:
    """``password=`` (source.password) replaces whatever the URL carried."""
    params = _connect_params("postgresql+psycopg://erp:old@db.local/gt", password="n3w:p@ss/")
    assert params["password"] == "n3w:p@ss/"
    assert params["user"] == "erp"


def test_connect_timeouts_are_set_per_driver_and_can_be_overridden() -> None:
    """Each driver gets its own timeout keyword; explicit connect_args win."""
    assert _connect_params("postgresql+psycopg://u@h/db")["connect_timeout"] == 10
    assert _connect_params("mysql+pymysql://u@h/db")["connect_timeout"] == 10
    custom = _connect_params("mysql+pymysql://u@h/db", connect_args={"connect_timeout": 3})
    assert custom["connect_timeout"] == 3


def test_pymysql_gets_a_utf8_password_it_can_send() -> None:
    """A password with Polish letters reaches pymysql as UTF-8 bytes, not a latin-1 crash."""
    assert _connect_params("mysql+pymysql://u@h/db", password="Zażółć1")["password"] == (
        "Zażółć1".encode()
    )


def test_sqlite_waits_for_a_busy_database(tmp_path: object) -> None:
    """SQLite connections wait 30 s for a lock instead of failing at once."""
    engine = make_engine(f"sqlite:///{tmp_path}/busy.db")
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 30000
    assert engine.pool.checkedout() == 0
    engine.dispose()


def test_redact_and_describe_never_show_the_password() -> None:
    """Printable forms of a URL hide the password but name the server and database."""
    url = "mssql+pyodbc://syncd:S3cret!@erp.firma.local:1433/GT_FIRMA?driver=ODBC+Driver+18"
    assert "S3cret" not in redact(url)
    assert "***" in redact(url)
    assert describe(url) == "mssql server erp.firma.local:1433, database GT_FIRMA"
    assert describe("sqlite:////var/lib/syncd/erp.db") == "SQLite database /var/lib/syncd/erp.db"
    assert "unparseable" in redact("not a url")


def test_connection_errors_become_the_given_class_without_the_password() -> None:
    """A refused connection turns into error_cls naming the server, with the hint, no secret."""
    engine = make_engine("postgresql+psycopg://erp@127.0.0.1:9/gt", password="Tajne-123")
    with (
        pytest.raises(SourceUnavailable) as caught,
        translate_errors("the ERP", SourceUnavailable, url=engine.url, hint="do X"),
        engine.connect(),
    ):
        pass
    engine.dispose()
    message = str(caught.value)
    assert message.startswith("cannot reach the ERP (postgresql server 127.0.0.1:9, database gt)")
    assert message.endswith("; do X")
    assert "Tajne-123" not in message


def test_query_errors_are_translated_but_not_record_errors(tmp_path: object) -> None:
    """A missing table becomes error_cls with SQL text left out; IntegrityError passes through."""
    engine = make_engine(f"sqlite:///{tmp_path}/q.db")
    with engine.connect() as conn:
        with (
            pytest.raises(PortalUnavailable, match="reading the portal failed: no such table") as c,
            translate_errors("the portal", PortalUnavailable),
        ):
            conn.exec_driver_sql("SELECT secret_column FROM missing_table")
        assert "secret_column" not in str(c.value)
        conn.exec_driver_sql("CREATE TABLE t (id INTEGER PRIMARY KEY)")
        conn.exec_driver_sql("INSERT INTO t VALUES (1)")
        with (
            pytest.raises(sa.exc.IntegrityError),
            translate_errors("the portal", PortalUnavailable),
        ):
            conn.exec_driver_sql("INSERT INTO t VALUES (1)")
        conn.rollback()
    engine.dispose()


def test_pool_timeouts_count_as_unavailable(tmp_path: object) -> None:
    """An exhausted pool (sa.exc.TimeoutError) is a connection problem too."""
    engine = make_engine(
        f"sqlite:///{tmp_path}/p.db", pool_size=1, max_overflow=0, pool_timeout=0.01
    )
    with (
        engine.connect(),
        pytest.raises(SourceUnavailable, match="cannot reach the ERP"),
        translate_errors("the ERP", SourceUnavailable),
        engine.connect(),
    ):
        pass
    engine.dispose()
