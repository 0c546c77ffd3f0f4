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
