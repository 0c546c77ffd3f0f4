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
import io
import pickle
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from functools import partial
from typing import Any

import sqlalchemy as sa
import structlog

from connectors._rows import text
from syncd.model import MAPPING_VERSION, RAW_DIGEST_PREFIX, RawRecord, SourceContractor

log = structlog.get_logger(__name__)

Row = Mapping[Any, Any]
STREAM_BATCH = 1000  # rows fetched at a time from each server-side cursor
# Fixed so that a newer Python's default protocol cannot change every digest.
DIGEST_PICKLE_PROTOCOL = 4


def read_records(
    engine: sa.Engine,
    main_sql: sa.Executable,
    people_sql: sa.Executable | None,
    build: Callable[[Row, list[Row], str], SourceContractor],
    *,
    main_key: str,
    symbol_key: str,
    tax_id_key: str,
    person_key: str,
    duplicate: str,
    salt: str = "",
) -> Iterator[RawRecord]:
    """A ``RawRecord`` per contractor: its digest taken from the raw values as they arrive,
    the ``SourceContractor`` built only when the consumer asks (``record.build()``), by
    ``build(main row, its contact rows, digest)``, which gives it that ``raw_digest``.

    ``main_key`` and ``person_key`` name the contractor id's column in each query (both
    ordered by it); ``symbol_key`` and ``tax_id_key`` the main query's symbol and tax id,
    read (trimmed, the id standing in for a blank symbol) as every source's build reads
    them. ``salt`` holds whatever else the build depends on (GT's price level names): a
    change of it changes every digest.
    """
    digest = row_digester(f"{MAPPING_VERSION}|{salt}")
    with _merged_rows(
        engine, main_sql, people_sql, main_key=main_key, person_key=person_key, duplicate=duplicate
    ) as (columns, merged):
        key_at, symbol_at = columns.index(main_key), columns.index(symbol_key)
        tax_id_at = columns.index(tax_id_key)
        for row, mine in merged:
            key = str(row[key_at])
            made = digest(row, mine)
            symbol = text(row[symbol_at]) or key
            yield RawRecord(
                key, made, symbol, text(row[tax_id_at]), partial(_build, build, row, mine, made)
            )


def row_digester(salt: str) -> Callable[[Sequence[Any], Sequence[Sequence[Any]]], str]:
    """A function giving the digest of one contractor's raw values (its main row, then its
    contact rows), ``RAW_DIGEST_PREFIX`` first; not to be shared between threads.

    The values are written by pickle (protocol 4, fast mode: no memo, so equal values give
    equal bytes whatever their identity) and hashed with BLAKE2b. Pickle tags each value
    with its type and length, so no two rows share an encoding (``None`` is not ``"None"``,
    ``("a|", "b")`` is not ``("a", "|b")``), and its bytes for plain driver values (str,
    int, bool, float, Decimal, date and time) are the same on every platform. It does in
    C what ``repr`` plus ``encode`` did, in about half the instructions: the digest is most
    of what a quiet cycle spends per unchanged contractor.
    """
    buffer = io.BytesIO()
    pickler = pickle.Pickler(buffer, protocol=DIGEST_PICKLE_PROTOCOL)
    pickler.fast = True

    def digest(row: Sequence[Any], people: Sequence[Sequence[Any]]) -> str:
        buffer.seek(0)
        buffer.truncate()
        pickler.dump((salt, tuple(row), [tuple(person) for person in people]))
        hashed = hashlib.blake2b(buffer.getvalue(), digest_size=16)
        return RAW_DIGEST_PREFIX + hashed.hexdigest()

    return digest


def _build(
    build: Callable[[Row, list[Row], str], SourceContractor],
    row: sa.Row[Any],
    mine: list[sa.Row[Any]],
    digest: str,
) -> SourceContractor:
    return build(row._mapping, [person._mapping for person in mine], digest)


@contextmanager
def _merged_rows(
    engine: sa.Engine,
    main_sql: sa.Executable,
    people_sql: sa.Executable | None,
    *,
    main_key: str,
    person_key: str,
    duplicate: str,
) -> Iterator[tuple[list[str], Iterator[tuple[sa.Row[Any], list[sa.Row[Any]]]]]]:
    """The main query's column names, and each main row with its contact rows, as plain
    result rows (values in query order), while the block runs.

    Values are read by position, found once from the result's columns: cheaper, per row,
    than a row-as-mapping lookup, and a quiet cycle's cost is mostly this loop.
    """
    streaming = {"stream_results": True, "yield_per": STREAM_BATCH}
    with engine.connect() as main_conn, engine.connect() as people_conn:
        main = main_conn.execution_options(**streaming).execute(main_sql)
        people = None
        if people_sql is not None:
            people = people_conn.execution_options(**streaming).execute(people_sql)
        contacts: Iterator[sa.Row[Any]] = iter(people) if people is not None else iter(())
        columns = list(main.keys())
        person_at = list(people.keys()).index(person_key) if people is not None else 0
        merged = merge_by_id(
            iter(main),
            contacts,
            main_at=columns.index(main_key),
            person_at=person_at,
            duplicate=duplicate,
        )
        try:
            yield columns, merged
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
    main: Iterator[Sequence[Any]],
    people: Iterator[Sequence[Any]],
    *,
    main_at: int,
    person_at: int,
    duplicate: str,
) -> Iterator[tuple[Any, list[Any]]]:
    """Each main row with the contact rows of the same id; both streams ascend by id,
    found at ``main_at`` and ``person_at`` in their rows.

    A second main row with the same id (two main addresses, two primary salespeople) is
    skipped and logged as ``duplicate``; contacts whose contractor left scope between the
    two reads are passed over.
    """
    person = next(people, None)
    person_id = int(person[person_at]) if person is not None else 0
    previous: int | None = None
    for row in main:
        key = int(row[main_at])
        if key == previous:
            log.warning(duplicate, contractor=str(key))
            continue
        previous = key
        while person is not None and person_id < key:
            person = next(people, None)
            person_id = int(person[person_at]) if person is not None else 0
        mine = []
        while person is not None and person_id == key:
            mine.append(person)
            person = next(people, None)
            person_id = int(person[person_at]) if person is not None else 0
        yield row, mine
