"""`syncd status`: failed records and the next cycle, from the state store's own rows."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa

from syncd.clock import utcnow
from syncd.cycle import CycleRequest, run_cycle
from syncd.errors import ExitCode
from syncd.model import SourceContractor
from syncd.status import collect
from syncd.wiring import Services, make_portal, open_store
from tests.support import ListSource, write_config


def test_a_record_the_portal_refuses_is_reported_until_it_is_applied(tmp_path: Path) -> None:
    """A refused record shows as retrying with the portal's reason, and leaves when fixed."""
    config = write_config(tmp_path)
    good = SourceContractor("1", "K1", "Alfa", email_raw="a@x.pl")
    refused = SourceContractor("2", "K2", "Odrzucona", email_raw="b@x.pl")
    source = ListSource([good, refused])
    store = open_store(config)
    portal = make_portal(config)
    services = Services(config, store, source, portal, utcnow)
    try:
        portal.ensure_ready()
        _refuse_name(config.portal.url, "Odrzucona")  # a rule of the portal's own
        result = run_cycle(services, CycleRequest())
        assert result.exit_code == ExitCode.RECORDS_FAILED
        document = collect(store, config, utcnow())
        assert [(q["key"], q["action"]) for q in document["retrying"]] == [("2", "create")]
        assert "name" in document["retrying"][0]["error"]
        assert document["quarantined"] == []
        assert store.binding("1") is not None

        source.contractors_list = [good, SourceContractor("2", "K2", "Beta", email_raw="b@x.pl")]
        assert run_cycle(services, CycleRequest()).exit_code == ExitCode.OK
        assert collect(store, config, utcnow())["retrying"] == []
    finally:
        portal.close()
        store.close()


def _refuse_name(url: str, name: str) -> None:
    engine = sa.create_engine(url)
    try:
        with engine.begin() as conn:
            conn.exec_driver_sql(
                "CREATE TRIGGER refuse BEFORE INSERT ON b2b_account WHEN NEW.name = "
                f"'{name}' BEGIN SELECT RAISE(ABORT, 'the portal refuses this name'); END"
            )
    finally:
        engine.dispose()


def test_next_cycle_is_known_only_while_a_daemon_schedules_cycles(tmp_path: Path) -> None:
    """Manual syncs alone give no next cycle; a scheduled one gives start + interval."""
    config = write_config(tmp_path, schedule={"interval": "5m"})
    store = open_store(config)
    portal = make_portal(config)
    services = Services(config, store, ListSource([]), portal, utcnow)
    try:
        run_cycle(services, CycleRequest(trigger="cli"))
        assert collect(store, config, utcnow())["next_cycle"] is None
        run_cycle(services, CycleRequest(trigger="schedule"))
        (scheduled,) = [r for r in store.last_runs(10) if r.trigger == "schedule"]
        expected = (scheduled.started_at + config.schedule.interval).isoformat()
        assert collect(store, config, utcnow())["next_cycle"] == expected
    finally:
        portal.close()
        store.close()
