"""The ODBC path for real: SubiektGtSource over ``mysql+pyodbc``, unixODBC and MariaDB's driver.

Production reads SQL Server through ``mssql+pyodbc``; no SQL Server runs here, so this proves
the same pyodbc + unixODBC stack (connect, stream, decode Polish text, Decimal, bit columns)
against the MariaDB server, with the GT schema built by pymysql and read back over ODBC.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from connectors._sql import make_engine
from connectors.subiekt_gt.fake import create_gt_schema
from connectors.subiekt_gt.source import SubiektGtSource
from syncd.errors import SourceUnavailable
from tests.conftest import unavailable
from tests.integration.test_subiekt_gt import EXPECTED, populate

pytestmark = [pytest.mark.odbc, pytest.mark.mariadb]


def _mariadb_driver() -> str:
    """The name unixODBC knows the MariaDB driver by (``/etc/odbcinst.ini``), Unicode first."""
    try:
        import pyodbc
    except ImportError as error:
        unavailable("pyodbc", error)
        raise
    names = [d for d in pyodbc.drivers() if "mariadb" in d.lower()]
    names.sort(key=lambda name: "unicode" not in name.lower())
    if not names:
        unavailable("the MariaDB ODBC driver", LookupError(f"odbcinst lists {pyodbc.drivers()}"))
    return names[0]


def odbc_url(mariadb_url: str) -> sa.URL:
    """The fixture's pymysql URL turned into a DSN-less ``mysql+pyodbc`` one.

    - ``driver``: the odbcinst.ini name; SQLAlchemy writes ``DRIVER={...}`` with host, port,
      database and user into the connection string, so no DSN (odbc.ini) is needed.
    - ``CHARSET=utf8mb4`` (a MariaDB Connector/ODBC keyword, passed through by SQLAlchemy):
      the mysql+pyodbc dialect tells pyodbc to decode and encode everything as UTF-8, so the
      connection character set MUST be UTF-8 too. With ``CHARSET=latin1`` reading Polish
      text fails with UnicodeDecodeError and writes come out double-encoded; relying on the
      server's or driver's default is how that happens on an older setup. ``utf8mb4``
      rather than ``utf8`` keeps four-byte characters (emoji) intact.
    - The "Unicode" flavour of the driver is preferred: its wide-character API is what
      pyodbc uses for ``str`` parameters. (For SQL Server, use Microsoft's ODBC Driver 17/18
      and ``TrustServerCertificate`` / ``ApplicationIntent=ReadOnly`` as needed.)
    """
    url = sa.make_url(mariadb_url)
    return url.set(
        drivername="mysql+pyodbc",
        query={"driver": _mariadb_driver(), "CHARSET": "utf8mb4"},
    )


@pytest.fixture
def odbc_engine(mariadb_url: str) -> Iterator[sa.Engine]:
    """A GT database built through pymysql, and an engine reading it through ODBC."""
    writer = make_engine(mariadb_url)
    create_gt_schema(writer)
    populate(writer)
    writer.dispose()
    engine = make_engine(odbc_url(mariadb_url))
    try:
        yield engine
        assert engine.pool.checkedout() == 0
    finally:
        engine.dispose()


def test_odbc_reads_the_same_contractors_as_the_native_drivers(odbc_engine: sa.Engine) -> None:
    """Over unixODBC every in-scope contractor and field, diacritics included, comes back right."""
    assert odbc_engine.dialect.driver == "pyodbc"
    source = SubiektGtSource("unused://", feature="b2b", engine=odbc_engine)
    got = list(source.contractors())
    assert [c.key for c in got] == ["1", "2", "5", "7"]
    for contractor in got:
        assert contractor == EXPECTED[contractor.key]
    assert got[0].name == "Przedsiębiorstwo Handlowe „Żuraw” Sp. z o.o."
    assert source.check().in_scope == 4
    assert list(source.contractors(keys=["2"])) == [EXPECTED["2"]]


def test_odbc_feature_compare_and_parameters_carry_unicode(mariadb_url: str) -> None:
    """A feature name with Polish letters sent as an ODBC parameter matches its dictionary entry."""
    writer = make_engine(mariadb_url)
    create_gt_schema(writer)
    populate(writer)
    with writer.begin() as conn:
        # entry 1 is "b2b" (the first one populate() used); by id, because MariaDB's
        # case-insensitive collation would also match the "B2b" entry
        rename = sa.text("UPDATE sl_CechaKh SET ckh_Nazwa = :name WHERE ckh_Id = 1")
        conn.execute(rename, {"name": "Sklep Łódź"})
    writer.dispose()
    engine = make_engine(odbc_url(mariadb_url))
    source = SubiektGtSource("unused://", feature=" sklep łódź ", engine=engine)
    assert [c.key for c in source.contractors()] == ["1", "5"]
    engine.dispose()


def test_odbc_unreachable_server_is_unavailable() -> None:
    """A closed port through ODBC becomes SourceUnavailable naming the server, not the password."""
    url = sa.make_url("mysql+pyodbc://syncd@127.0.0.1:9/gt_firma").set(
        query={"driver": _mariadb_driver(), "CHARSET": "utf8mb4"}
    )
    source = SubiektGtSource(url.render_as_string(), feature="b2b", password="Sekret-ODBC-1")  # noqa: S106
    with pytest.raises(SourceUnavailable) as caught:
        source.check()
    assert "127.0.0.1:9" in str(caught.value)
    assert "Sekret-ODBC-1" not in str(caught.value)
    source.close()
