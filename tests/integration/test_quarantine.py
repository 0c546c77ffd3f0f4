"""A record the portal keeps refusing backs off, then waits in quarantine; a failing portal
is one failure, not thousands of failed records. On a real SQL portal (SQLite, PostgreSQL)
that refuses a login by its own rule (a CHECK constraint or a trigger)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from structlog.testing import capture_logs

from connectors.base import OpOutcome, Portal, PortalOp
from syncd.backoff import SCHEDULE
from syncd.cycle import CycleRequest, CycleResult, run_cycle
from syncd.daemon.metrics import Metrics
from syncd.errors import ExitCode
from syncd.model import SourceContractor
from syncd.status import collect
from syncd.wiring import Services, make_portal, open_store
from tests.gt_env import gt_env
from tests.support import ListSource, write_config

REFUSED = "b@x.pl"
START = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> datetime:
        return self.now

    def advance(self, delta: timedelta) -> None:
        self.now += delta


class CountingPortal:
    """The real portal, counting the operations sent to it for each contractor."""

    def __init__(self, portal: Portal) -> None:
        self.portal = portal
        self.sent: Counter[str] = Counter()

    def apply(self, ops: Sequence[PortalOp]) -> list[OpOutcome]:
        self.sent.update(op.key for op in ops)
        return self.portal.apply(ops)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.portal, name)


# The portal's own rules, as its database states them: literal SQL, nothing formatted in.
_ONE = "NEW.login = 'b@x.pl'"
_BAD = "substr(NEW.login, length(NEW.login) - 6) = '@bad.pl'"
_RAISE = "BEGIN SELECT RAISE(ABORT, 'the portal refuses this login'); END"
SQLITE_RULES = {
    "one_login": [
        "CREATE TRIGGER refuse_insert BEFORE INSERT ON b2b_account WHEN " + _ONE + " " + _RAISE,
        "CREATE TRIGGER refuse_update BEFORE UPDATE ON b2b_account WHEN " + _ONE + " " + _RAISE,
    ],
    "bad_domain": [
        "CREATE TRIGGER refuse_insert BEFORE INSERT ON b2b_account WHEN " + _BAD + " " + _RAISE,
        "CREATE TRIGGER refuse_update BEFORE UPDATE ON b2b_account WHEN " + _BAD + " " + _RAISE,
    ],
}
POSTGRES_RULES = {
    "one_login": ["ALTER TABLE b2b_account ADD CONSTRAINT refuse CHECK (login <> 'b@x.pl')"],
    "bad_domain": [
        "ALTER TABLE b2b_account ADD CONSTRAINT refuse "
        "CHECK (substr(login, length(login) - 6) <> '@bad.pl')"
    ],
}
LIFT = {
    "sqlite": ["DROP TRIGGER refuse_insert", "DROP TRIGGER refuse_update"],
    "postgresql": ["ALTER TABLE b2b_account DROP CONSTRAINT refuse"],
}


class PortalRule:
    """A rule of the portal's own database that refuses accounts by login."""

    def __init__(self, url: str) -> None:
        self.engine = sa.create_engine(url)
        self.dialect = self.engine.dialect.name

    def refuse(self, rule: str) -> None:
        rules = SQLITE_RULES if self.dialect == "sqlite" else POSTGRES_RULES
        with self.engine.begin() as conn:
            for statement in rules[rule]:
                conn.exec_driver_sql(statement)

    def lift(self) -> None:
        with self.engine.begin() as conn:
            for statement in LIFT[self.dialect]:
                conn.exec_driver_sql(statement)

    def close(self) -> None:
        self.engine.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def portal_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The SQL portal's database: a SQLite file, or a fresh PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/portal.db"
    return str(request.getfixturevalue("pg_url"))


class Site:
    """State store, counted SQL portal, list ERP and clock of one test."""

    def __init__(self, directory: Path, portal_url: str, **safety: Any) -> None:
        self.config = write_config(
            directory, portal={"url": portal_url}, safety={"quarantine_after": 5, **safety}
        )
        self.clock = Clock()
        self.store = open_store(self.config, self.clock)
        self.portal = CountingPortal(make_portal(self.config, self.clock))
        self.source = ListSource()
        self.rule = PortalRule(portal_url)
        self.services = Services(self.config, self.store, self.source, self.portal, self.clock)

    def cycle(self, **request: Any) -> CycleResult:
        return run_cycle(self.services, CycleRequest(**request))

    def close(self) -> None:
        self.rule.close()
        self.portal.close()
        self.store.close()


@pytest.fixture
def site(tmp_path: Path, portal_url: str) -> Iterator[Site]:
    """A site whose portal tables exist (one contractor synced) before a rule is added."""
    built = Site(tmp_path, portal_url)
    built.source.contractors_list = [contractor("1", "a@x.pl")]
    assert built.cycle().exit_code == ExitCode.OK
    yield built
    built.close()


def contractor(key: str, email: str, name: str = "Firma") -> SourceContractor:
    return SourceContractor(key, f"K{key}", f"{name} {key}", email_raw=email)


def test_a_record_failing_five_cycles_is_quarantined_until_its_erp_row_changes(
    site: Site,
) -> None:
    """The portal refuses K2 on five cycles spaced by the growing backoff; K2 is then
    quarantined (status --json, explain, /metrics) and not sent again, even days later,
    until its ERP row changes; support's ``sync --contractor`` lifts it once it succeeds."""
    site.rule.refuse("one_login")
    site.source.contractors_list = [contractor("1", "a@x.pl"), contractor("2", REFUSED)]
    waits = [timedelta(0), *SCHEDULE[:4]]
    for attempt, wait in enumerate(waits, start=1):
        site.clock.advance(wait)
        result = site.cycle()
        assert result.exit_code == ExitCode.RECORDS_FAILED, result.as_json()
        assert site.portal.sent["2"] == attempt
        if attempt < len(waits):  # not due a moment before its wait is over
            site.clock.advance(waits[attempt] - timedelta(seconds=1))
            quiet = site.cycle()
            assert quiet.exit_code == ExitCode.OK
            assert [d["key"] for d in quiet.as_json()["deferred"]] == ["2"]
            assert site.portal.sent["2"] == attempt
            site.clock.advance(-(waits[attempt] - timedelta(seconds=1)))

    document = collect(site.store, site.config, site.clock())
    assert document["retrying"] == []
    (record,) = document["quarantined"]
    assert (record["key"], record["action"], record["failures"]) == ("2", "create", 5)
    assert "the portal refused the account of contractor 2" in record["error"]
    metrics = Metrics()
    metrics.refresh_store_gauges(site.store)
    assert 'syncd_failing_records{state="quarantined"} 1.0' in metrics.render().decode()

    for _ in range(3):  # days pass: never sent again, and a quiet cycle writes no record
        site.clock.advance(timedelta(days=2))
        with _writes(site) as writes:
            assert site.cycle().exit_code == ExitCode.OK
        assert site.portal.sent["2"] == 5
        assert not [s for s in writes if "syncd_record_backoff" in s or "syncd_audit" in s]

    site.source.contractors_list[1] = contractor("2", REFUSED, name="Nowa nazwa")
    assert site.cycle().exit_code == ExitCode.RECORDS_FAILED  # a changed row is tried once
    assert site.portal.sent["2"] == 6
    assert site.cycle().exit_code == ExitCode.OK  # and waits again
    assert site.portal.sent["2"] == 6
    assert collect(site.store, site.config, site.clock())["quarantined"][0]["failures"] == 6

    site.rule.lift()  # support fixes the portal and retries K2 by hand
    retried = site.cycle(only_keys=frozenset({"2"}))
    assert retried.exit_code == ExitCode.OK, retried.as_json()
    assert site.portal.sent["2"] == 7
    assert site.store.binding("2") is not None
    document = collect(site.store, site.config, site.clock())
    assert (document["quarantined"], document["retrying"]) == ([], [])


def test_support_retry_of_a_quarantined_record_is_sent_even_when_nothing_changed(
    site: Site,
) -> None:
    """``sync --contractor K`` sends a quarantined record at once; while the portal still
    refuses it, it stays quarantined with one more failure."""
    site.rule.refuse("one_login")
    site.source.contractors_list = [contractor("1", "a@x.pl"), contractor("2", REFUSED)]
    for wait in [timedelta(0), *SCHEDULE[:4]]:
        site.clock.advance(wait)
        site.cycle()
    assert site.store.record_failures()["2"].quarantined
    assert site.cycle(only_keys=frozenset({"2"})).exit_code == ExitCode.RECORDS_FAILED
    assert site.portal.sent["2"] == 6
    row = site.store.record_failures()["2"]
    assert (row.quarantined, row.failures) == (True, 6)


def test_a_cycle_where_most_records_fail_is_one_portal_failure(site: Site) -> None:
    """25 new contractors all refused: the cycle stops with exit 4 and one error line,
    marks no record failed (no backoff row, no error in the audit trail), and the next
    cycle, once the portal accepts them, creates them all."""
    site.rule.refuse("bad_domain")
    site.source.contractors_list = [
        contractor("1", "a@x.pl"),
        *(contractor(str(n), f"k{n}@bad.pl") for n in range(10, 35)),
    ]
    with capture_logs() as logs:
        result = site.cycle()
    assert result.exit_code == ExitCode.UNAVAILABLE
    assert result.error is not None
    assert "the portal refused 25 of the 25 records" in result.error
    assert [e["event"] for e in logs if e["log_level"] == "error"] == ["cycle.unavailable"]
    assert not [e for e in logs if e["event"] == "record.failed"]
    assert site.store.record_failures() == {}
    assert not [r for r in _audit(site) if r["result"] == "error"]

    site.rule.lift()
    site.clock.advance(timedelta(minutes=5))
    assert site.cycle().exit_code == ExitCode.OK
    assert sum(1 for n in range(10, 35) if site.store.binding(str(n))) == 25


def _audit(site: Site) -> list[dict[str, Any]]:
    from syncd.store.schema import audit

    with site.store.engine.connect() as conn:
        return [dict(row._mapping) for row in conn.execute(sa.select(audit))]


class _writes:
    """Records the data-changing statements sent to the state store inside the block."""

    def __init__(self, site: Site) -> None:
        self.engine = site.store.engine
        self.statements: list[str] = []

    def _record(self, _conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if statement.lstrip().upper().startswith(("INSERT", "UPDATE", "DELETE")):
            self.statements.append(statement)

    def __enter__(self) -> list[str]:
        sa.event.listen(self.engine, "before_cursor_execute", self._record)
        return self.statements

    def __exit__(self, *_: object) -> None:
        sa.event.remove(self.engine, "before_cursor_execute", self._record)


def test_status_and_explain_show_a_quarantined_record_and_say_how_to_retry_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """With ``quarantine_after: 1`` a contractor whose new name the portal refuses (a rule
    of its own, a trigger) is quarantined by one cycle: ``status`` and ``explain`` show it
    with the portal's reason, the next ``sync`` defers it, ``sync --contractor`` retries
    it, a fixed ERP row syncs. (A name longer than the column is a conflict, found while
    planning: tests/integration/test_generated_erp.py.)"""
    with gt_env(tmp_path, capsys, safety={"quarantine_after": 1}) as env:
        assert env.cli("sync").code == 0
        with env.portal.begin() as conn:
            conn.exec_driver_sql(
                "CREATE TRIGGER refuse BEFORE UPDATE ON b2b_account WHEN NEW.name LIKE '%xxx%' "
                "BEGIN SELECT RAISE(ABORT, 'portal rule: no xxx in names'); END"
            )
        with env.edit() as w:
            w.update_address(3, adr_NazwaPelna="Sklep " + "x" * 30)
        failed = env.cli("sync", "--json")
        assert failed.code == 1, failed.err
        assert "no xxx in names" in failed.doc["update"][0]["result"]

        status = env.cli("status", "--json").doc
        assert [(q["key"], q["quarantined"]) for q in status["quarantined"]] == [("3", True)]
        assert "correct the contractor in the ERP" in status["quarantined"][0]["error"]
        text = env.cli("status").out
        assert "QUARANTINED 3" in text
        assert "`syncd sync --contractor 3` retries it now" in text
        story = env.cli("explain", "K003", "--json").doc
        assert story["failing"]["quarantined"] is True
        assert [d["key"] for d in story["next_cycle"]["deferred"]] == ["3"]

        quiet = env.cli("sync", "--json")
        assert (quiet.code, quiet.doc["update"]) == (0, [])
        assert [d["key"] for d in quiet.doc["deferred"]] == ["3"]
        retried = env.cli("sync", "--contractor", "K003", "--json")
        assert retried.code == 1
        assert retried.doc["deferred"] == []
        assert retried.doc["update"][0]["result"] != "ok"

        with env.edit() as w:
            w.update_address(3, adr_NazwaPelna="Sklep Pod Lipą i Syn")
        assert env.cli("sync").code == 0
        assert env.accounts()["3"]["name"] == "Sklep Pod Lipą i Syn"
        assert env.cli("status", "--json").doc["quarantined"] == []
