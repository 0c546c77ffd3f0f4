"""Engine defaults that matter at scale, checked on the real servers."""

from __future__ import annotations

import sqlalchemy as sa

from connectors._sql import make_engine


def test_postgres_plans_cursors_for_the_whole_result(pg_url: str) -> None:
    """Streamed reads on PostgreSQL are planned for all rows, not for a fast first row."""
    engine = make_engine(pg_url)
    try:
        with engine.connect() as conn:
            value = conn.execute(sa.text("SHOW cursor_tuple_fraction")).scalar_one()
        assert float(value) == 1.0
    finally:
        engine.dispose()


def test_postgres_statements_are_planned_for_their_values(pg_url: str) -> None:
    """psycopg 3 would prepare a statement on the server after five runs, and the server
    could keep a plan made while a table was small (the SQL portal's id read-back then
    scanned the whole accounts table each batch). Nothing is prepared: after ten runs of
    one statement, the session holds no prepared statement."""
    engine = make_engine(pg_url)
    try:
        with engine.connect() as conn:
            query = sa.text("SELECT count(*) FROM pg_class WHERE relname = :name")
            for _ in range(10):
                conn.execute(query, {"name": "pg_class"}).scalar_one()
            prepared = conn.execute(sa.text("SELECT count(*) FROM pg_prepared_statements"))
            assert prepared.scalar_one() == 0
    finally:
        engine.dispose()
