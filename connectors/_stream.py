"""The read every ERP source makes: two streams ordered by contractor id, merge-joined.

A source reads its contractors in a constant number of statements: one streamed main
query (a row per contractor) and one streamed contacts query (rows per contractor), both
ordered by the contractor id, joined here as they arrive so memory stays flat at 200,000
contractors. Each stream has its own connection: pyodbc on SQL Server has no MARS by
default and pymysql cannot interleave two unbuffered results on one connection. Each
contractor comes out as a ``RawRecord``: a digest of its raw values first, the record
built only on demand (see ``read_records``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, TypeVar

import sqlalchemy as sa
import structlog

from syncd.model import MAPPING_VERSION, RAW_DIGEST_PREFIX, RawRecord, SourceContractor

log = structlog.get_logger(__name__)

Row = Mapping[Any, Any]
T = TypeVar("T")
STREAM_BATCH = 1000  # rows fetched at a time from each server-side cursor


def read_records(
    engine: sa.Engine,
    main_sql: sa.Executable,
    people_sql: sa.Executable | None,
    build: Callable[[Row, list[Row], str], SourceContractor],
    *,
    main_key: str,
    identity: Callable[[Row], tuple[str, str, str | None]],
    person_key: str,
    duplicate: str,
    salt: str = "",
) -> Iterator[RawRecord]:
    """A ``RawRecord`` per contractor: its digest taken from the raw values as they arrive,
    the ``SourceContractor`` built only when the consumer asks (``record.build()``), by
    ``build(main row, its contact rows, digest)``, which gives it that ``raw_digest``.

    ``main_key`` and ``person_key`` name the contractor id's column in each query (both
    ordered by it). ``identity(main row)`` gives (key, symbol, tax id) as the source reads
    them. ``salt``
    holds whatever else the build depends on (GT's price level names): a change of it
    changes every digest.
    """
    prefix = f"{MAPPING_VERSION}|{salt}|"
    for row, mine in _merged_rows(
        engine,
        main_sql,
        people_sql,
        main_key=main_key,
        person_key=person_key,
        duplicate=duplicate,
    ):
        mapping = row._mapping
        key, symbol, tax_id = identity(mapping)
        digest = raw_digest(prefix, row, mine)
        yield RawRecord(key, digest, symbol, tax_id, _builder(build, mapping, mine, digest))


def raw_digest(prefix: str, row: Sequence[Any], people: Sequence[Sequence[Any]]) -> str:
    """The digest of one contractor's raw values (its main row, then its contact rows).

    ``repr`` of plain driver values (str, int, Decimal, None, datetime) is stable across
    runs and releases of Python, and it is several times cheaper than building the record.
    """
    payload = f"{prefix}{tuple(row)!r}{[tuple(p) for p in people]!r}".encode()
    return RAW_DIGEST_PREFIX + hashlib.blake2b(payload, digest_size=16).hexdigest()


def _builder(
    build: Callable[[Row, list[Row], str], SourceContractor],
    mapping: Row,
    mine: list[Any],
    digest: str,
) -> Callable[[], SourceContractor]:
    def made() -> SourceContractor:
        return build(mapping, [person._mapping for person in mine], digest)

    return made


def _merged_rows(
    engine: sa.Engine,
    main_sql: sa.Executable,
    people_sql: sa.Executable | None,
    *,
    main_key: str,
    person_key: str,
    duplicate: str,
) -> Iterator[tuple[sa.Row[Any], list[sa.Row[Any]]]]:
    """Each main row with its contact rows, as plain result rows (values in query order).

    The id is read by position, found once from the result's columns: cheaper, per row,
    than a row-as-mapping lookup, and a quiet cycle's cost is mostly this loop.
    """
    streaming = {"stream_results": True, "yield_per": STREAM_BATCH}
    with engine.connect() as main_conn, engine.connect() as people_conn:
        main = main_conn.execution_options(**streaming).execute(main_sql)
        people = None
        if people_sql is not None:
            people = people_conn.execution_options(**streaming).execute(people_sql)
        contacts: Iterator[sa.Row[Any]] = iter(people) if people is not None else iter(())
        main_at = list(main.keys()).index(main_key)
        person_at = list(people.keys()).index(person_key) if people is not None else 0
        try:
            yield from merge_by_id(
                iter(main),
                contacts,
                main_id=lambda row: int(row[main_at]),
                person_id=lambda row: int(row[person_at]),
                duplicate=duplicate,
            )
        except sa.exc.DBAPIError:
            # After a dropped connection the other stream's server-side cursor cannot be
            # closed on the server; dropping both connections first lets the driver mark
            # its cursors closed instead of leaking them.
            main_conn.invalidate()
            people_conn.invalidate()
            raise
        finally:  # also when the consumer abandons the stream early
            main.close()
            if people is not None:
                people.close()


def merge_by_id(
    main: Iterator[T],
    people: Iterator[T],
    *,
    main_id: Callable[[T], int],
    person_id: Callable[[T], int],
    duplicate: str,
) -> Iterator[tuple[T, list[T]]]:
    """Each main row with the contact rows of the same id; both streams ascend by id.

    A second main row with the same id (two main addresses, two primary salespeople) is
    skipped and logged as ``duplicate``; contacts whose contractor left scope between the
    two reads are passed over.
    """
    person = next(people, None)
    previous: int | None = None
    for row in main:
        key = main_id(row)
        if key == previous:
            log.warning(duplicate, contractor=str(key))
            continue
        previous = key
        while person is not None and person_id(person) < key:
            person = next(people, None)
        mine: list[T] = []
        while person is not None and person_id(person) == key:
            mine.append(person)
            person = next(people, None)
        yield row, mine
