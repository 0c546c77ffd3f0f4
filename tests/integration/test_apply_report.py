"""What apply reports: successes as counts per action and failures item by item, so that
a first sync does not hold an entry per applied contractor; ``sync --json`` still gives
every item its result: ``ok``, the portal's error, or ``not applied`` after a stop."""

from __future__ import annotations

import json
import os
import signal
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import fields
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from syncd.config import load_config
from syncd.cycle import CycleRequest, run_cycle
from syncd.wiring import make_portal, open_services
from tests.daemon_support import make_site
from tests.gt_env import run_main

CONTRACTORS = 1200  # three batches of apply (500 contractors each)
REFUSED = "1"  # first in any order of keys: always in the first batch
RULE = "portal rule: no account for contractor 1"


def _site(directory: Path) -> Path:
    """A GT ERP of ``CONTRACTORS`` in scope, and a SQL portal whose own rule (a trigger)
    refuses contractor ``REFUSED``; returns the config's path."""
    path = make_site(directory, CONTRACTORS, portal={"password_cost": 4})
    portal = make_portal(load_config(path))
    try:
        portal.ensure_ready()
    finally:
        portal.close()
    engine = sa.create_engine(f"sqlite:///{directory}/portal.db")
    try:
        with engine.begin() as conn:
            conn.exec_driver_sql(
                "CREATE TRIGGER refuse BEFORE INSERT ON b2b_account "
                f"WHEN NEW.contractor_key = '{REFUSED}' BEGIN SELECT RAISE(ABORT, '{RULE}'); END"
            )
    finally:
        engine.dispose()
    return path


@contextmanager
def _sigterm_at_first_account_insert() -> Iterator[None]:
    """SIGTERM to this process when the portal gets its first account INSERT: the signal
    arrives while apply's first batch is in hand, as a ``systemctl stop`` would."""
    sent: list[bool] = []

    def send(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if not sent and statement.lstrip().upper().startswith("INSERT INTO B2B_ACCOUNT"):
            sent.append(True)
            os.kill(os.getpid(), signal.SIGTERM)

    sa.event.listen(sa.Engine, "before_cursor_execute", send)
    try:
        yield
    finally:
        sa.event.remove(sa.Engine, "before_cursor_execute", send)
    assert sent, "no account INSERT reached the portal"


def test_a_first_sync_keeps_no_entry_per_applied_item(tmp_path: Path) -> None:
    """A first sync of 1,200 with one record refused: the report holds one count for the
    1,199 creates and the one failure; no container in it grows with the successes."""
    config = load_config(_site(tmp_path))
    with open_services(config) as services:
        result = run_cycle(services, CycleRequest())
    report = result.report
    assert report is not None
    assert report.ok == {"create": CONTRACTORS - 1}
    assert list(report.errors) == [("create", REFUSED)]
    assert RULE in report.errors["create", REFUSED]
    assert report.applied is None
    assert report.failed == 1
    sizes = {
        f.name: len(value)
        for f in fields(report)
        if isinstance(value := getattr(report, f.name), dict | list | set | tuple)
    }
    assert sizes == {"ok": 1, "errors": 1, "quarantined": 0, "recreated": 0}
    document = result.as_json()  # with no stop, what did not fail was applied
    results = {item["key"]: item["result"] for item in document["create"]}
    assert RULE in results.pop(REFUSED)
    assert set(results.values()) == {"ok"}
    assert len(results) == CONTRACTORS - 1


def test_sync_json_says_ok_the_error_or_not_applied_after_a_stop(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``syncd sync --json`` stopped by SIGTERM during its first batch: that batch's items
    are ``ok`` (the refused one carries the portal's error), the rest ``not applied``."""
    path = _site(tmp_path)
    capsys.readouterr()
    with _sigterm_at_first_account_insert():
        run_main(["--config", str(path), "sync", "--json"])
    document = json.loads(capsys.readouterr().out)
    results = {item["key"]: item["result"] for item in document["create"]}
    assert RULE in results.pop(REFUSED)
    assert Counter(results.values()) == {"ok": 499, "not applied": CONTRACTORS - 500}
