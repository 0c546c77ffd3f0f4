"""The daemon's light cycle, run again and again in one process, holds no more after each.

A daemon runs unattended for years, so what a cycle leaves behind must not add up. The
figure that shows it (RSS over 500 cycles) belongs to ``make bench``; here the cause found
there is pinned down by counting: after warm-up, further cycles leave no more ``Table``
and no more compiled statement alive (SQLAlchemy keys its compiled cache by the ``Table``
object, so a table built anew each cycle added a cache entry each cycle).
"""

from __future__ import annotations

import gc
import threading
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.sql.compiler import Compiled

from syncd.clock import utcnow
from syncd.config import load_config
from syncd.daemon.jobs import DaemonContext, Jobs
from syncd.daemon.leadership import Leadership, lease_ttl
from syncd.daemon.metrics import Metrics
from syncd.daemon.notify import Notifier
from syncd.wiring import open_services
from tests.contract.portal_sql import shop_section, shop_users
from tests.daemon_support import edit_erp, make_site

CONTRACTORS = 20
WARM_UP = 3
MEASURED = 5


def held() -> Counter[str]:
    """The tables and compiled statements alive in this process, by kind."""
    gc.collect()
    kinds = (sa.Table, Compiled)
    return Counter(
        "Table" if isinstance(o, sa.Table) else "Compiled"
        for o in gc.get_objects()
        if isinstance(o, kinds)
    )


@pytest.fixture(params=["own", "mapped"])
def site(request: pytest.FixtureRequest, tmp_path: Path) -> Path:
    """A site with ``CONTRACTORS`` in scope, on syncd's portal schema or a shop's table."""
    portal_url = f"sqlite:///{tmp_path}/portal.db"
    portal: dict[str, Any] = {}
    if request.param == "mapped":
        engine = sa.create_engine(portal_url)
        shop_users(sa.MetaData()).create(engine)
        engine.dispose()
        portal = shop_section(portal_url)
    return make_site(tmp_path, CONTRACTORS, portal=portal, mail={"send_delay": "1d"})


def test_light_cycles_after_warm_up_leave_no_table_or_statement_behind(
    site: Path, tmp_path: Path
) -> None:
    """Each light cycle changes one contractor (a read, a compare, an update, audit rows);
    after the first cycles no further one leaves a Table or compiled statement alive."""
    config = load_config(site)
    counts: list[Counter[str]] = []
    with open_services(config) as services:
        leadership = Leadership(services.store, lease_ttl(config.schedule.interval))
        context = DaemonContext(
            config, leadership, Notifier({}), Metrics(), threading.Event(), utcnow
        )
        jobs = Jobs(context, services)
        for cycle in range(1, WARM_UP + MEASURED + 1):
            edit_erp(tmp_path, lambda w, c=cycle: w.update_address(1, adr_NazwaPelna=f"Firma {c}"))
            jobs.light()
            assert jobs.status_line.startswith("last sync cycle ok"), jobs.status_line
            if cycle in (WARM_UP, WARM_UP + MEASURED):
                counts.append(held())
        leadership.resign()
    assert "updated=1" in jobs.status_line
    assert counts[1] == counts[0]
