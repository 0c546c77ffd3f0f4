"""The floor: the ERP rows a Subiekt GT cycle reads, read by the bare driver and nothing else.

The two statements are the connector's own (``connectors.subiekt_gt.query``: the main
query and the contacts query of a full read), compiled for the ERP's dialect once, then
sent through the DBAPI connection of the same driver (sqlite3, psycopg) and fetched as
plain tuples, 1,000 rows at a time from both cursors side by side, the way the connector's
merge consumes them. No SQLAlchemy execution, no row objects, no syncd code runs while
the clock runs, so ``cycle time / raw read time`` is what syncd adds on top of reading.

On PostgreSQL both statements go through server-side cursors (as the connector's
``stream_results`` does) with ``cursor_tuple_fraction = 1``, the setting every syncd
engine uses: without it the floor would be a plan no one runs.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.sql.compiler import SQLCompiler

from connectors.subiekt_gt import query as q
from connectors.subiekt_gt.tables import OPTIONAL_CONTACT_COLUMNS

BATCH = 1000


def compiled(engine: sa.Engine, statement: sa.ClauseElement) -> tuple[str, Any]:
    """``statement``'s SQL text for ``engine``'s dialect and its parameters, as the DBAPI
    takes them (a tuple for qmark/format, a dict for named styles)."""
    sql = statement.compile(dialect=engine.dialect, compile_kwargs={"render_postcompile": True})
    assert isinstance(sql, SQLCompiler)
    params = sql.construct_params() or {}
    if sql.positiontup is not None:
        return str(sql), tuple(params[name] for name in sql.positiontup)
    return str(sql), params


def gt_statements(engine: sa.Engine, feature: str) -> list[tuple[str, Any]]:
    """The connector's main and contacts queries of a full read, compiled for ``engine``."""
    present = {c["name"] for c in sa.inspect(engine).get_columns("kh_Pracownik")}
    tables = q.GtTables(None, [name for name in OPTIONAL_CONTACT_COLUMNS if name in present])
    return [
        compiled(engine, q.main_query(tables, feature, None)),
        compiled(engine, q.contacts_query(tables, feature, None)),
    ]


def raw_read(engine: sa.Engine, statements: list[tuple[str, Any]]) -> list[int]:
    """Send each statement on its own DBAPI connection and fetch every row, the streams
    interleaved batch by batch; returns the rows read per statement."""
    postgres = engine.dialect.name == "postgresql"
    connections = [engine.raw_connection() for _ in statements]
    try:
        cursors = []
        for k, (conn, (sql, params)) in enumerate(zip(connections, statements, strict=True)):
            dbapi = conn.driver_connection
            assert dbapi is not None
            if postgres:
                dbapi.execute("SET cursor_tuple_fraction = 1")
                cursor = dbapi.cursor(name=f"bench_raw_{k}")
            else:
                cursor = dbapi.cursor()
            cursor.execute(sql, params)
            cursors.append(cursor)
        counts = [0] * len(cursors)
        open_ = set(range(len(cursors)))
        while open_:
            for k in sorted(open_):
                rows = cursors[k].fetchmany(BATCH)
                counts[k] += len(rows)
                if len(rows) < BATCH:
                    open_.discard(k)
        for cursor in cursors:
            cursor.close()
        return counts
    finally:
        for conn in connections:
            conn.rollback()
            conn.close()
