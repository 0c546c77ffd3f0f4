"""The read every ERP source makes: two streams ordered by contractor id, merge-joined.

A source reads its contractors in a constant number of statements: one streamed main
query (a row per contractor) and one streamed contacts query (rows per contractor), both
ordered by the contractor id, joined here as they arrive so memory stays flat at 200,000
contractors. Each stream has its own connection: pyodbc on SQL Server has no MARS by
default and pymysql cannot interleave two unbuffered results on one connection.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any, TypeVar

import sqlalchemy as sa
import structlog

log = structlog.get_logger(__name__)

Row = Mapping[Any, Any]
T = TypeVar("T")
STREAM_BATCH = 1000  # rows fetched at a time from each server-side cursor


def read_merged(
    engine: sa.Engine,
    main_sql: sa.Executable,
    people_sql: sa.Executable | None,
    build: Callable[[Row, list[Row]], T],
    *,
    main_id: Callable[[Row], int],
    person_id: Callable[[Row], int],
    duplicate: str,
) -> Iterator[T]:
    """``build(main row, its contact rows)`` for every contractor, as the rows stream in.

    ``people_sql`` None reads no contacts (an ERP configured without them). Driver errors
    propagate (the caller translates them); a consumer abandoning the read early still
    closes both cursors.
    """
    streaming = {"stream_results": True, "yield_per": STREAM_BATCH}
    with engine.connect() as main_conn, engine.connect() as people_conn:
        main = main_conn.execution_options(**streaming).execute(main_sql)
        people = None
        if people_sql is not None:
            people = people_conn.execution_options(**streaming).execute(people_sql)
        contacts: Iterator[Row] = iter(people.mappings()) if people is not None else iter(())
        try:
            for row, mine in merge_by_id(
                iter(main.mappings()), contacts, main_id=main_id, person_id=person_id,
                duplicate=duplicate,
            ):  # fmt: skip
                yield build(row, mine)
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
    main: Iterator[Row],
    people: Iterator[Row],
    *,
    main_id: Callable[[Row], int],
    person_id: Callable[[Row], int],
    duplicate: str,
) -> Iterator[tuple[Row, list[Row]]]:
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
        mine: list[Row] = []
        while person is not None and person_id(person) == key:
            mine.append(person)
            person = next(people, None)
        yield row, mine
