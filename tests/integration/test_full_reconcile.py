"""The full reconcile repairs drift: accounts deleted or edited by hand in the portal are put
back as the ERP says, on real SQLite databases (GT-shaped ERP, SQL portal, state store)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from syncd.config import load_config
from syncd.cycle import CycleRequest, run_cycle
from syncd.store.schema import audit, binding, outbox
from syncd.wiring import Services, open_services
from tests.daemon_support import edit_erp, make_site, query


@pytest.fixture
def services(tmp_path: Path) -> Iterator[Services]:
    """Three in-scope contractors, synced once."""
    config = load_config(make_site(tmp_path, 3))
    with open_services(config) as opened:
        assert run_cycle(opened, CycleRequest()).exit_code == 0
        yield opened
        assert opened.store.engine.pool.checkedout() == 0


def portal_sql(services: Services, sql: str) -> None:
    """An edit made by hand in the portal's database, behind syncd's back."""
    engine = sa.create_engine(services.config.portal.url)
    try:
        with engine.begin() as conn:
            conn.execute(sa.text(sql))
    finally:
        engine.dispose()


def test_full_reconcile_restores_deleted_and_edited_accounts(services: Services) -> None:
    """A light cycle does not see hand edits in the portal; the full reconcile re-creates
    the deleted account, puts the edited fields and status back, and audits both."""
    portal = services.config.portal.url
    before = dict(query(portal, "SELECT contractor_key, id FROM b2b_account"))
    portal_sql(services, "DELETE FROM b2b_account WHERE contractor_key = '1'")
    portal_sql(
        services,
        "UPDATE b2b_account SET name = 'Hacked', discount = 99, status = 'blocked' "
        "WHERE contractor_key = '2'",
    )
    light = run_cycle(services, CycleRequest())
    assert light.plan is not None
    assert light.plan.is_empty

    full = run_cycle(services, CycleRequest(full=True))
    assert full.exit_code == 0, full.as_json()
    document = full.as_json()
    assert [item["key"] for item in document["create"]] == ["1"]
    (update,) = document["update"]
    assert update["key"] == "2"
    assert update["changes"]["name"] == {"old": "Hacked", "new": "Firma 2"}

    rows = {
        r[0]: r[1:]
        for r in query(portal, "SELECT contractor_key, id, name, discount, status FROM b2b_account")
    }
    assert rows["1"][0] != before["1"], "a brand-new account replaces the deleted one"
    assert rows["2"][1:] == ("Firma 2", 0, "pending")
    assert services.store.binding("1").account_id == str(rows["1"][0])  # type: ignore[union-attr]

    history = {key: [(a.action, a.result) for a in services.store.audit_for(key)] for key in "12"}
    assert history["1"][-2:] == [("create", "ok"), ("recreate", "ok")]
    assert history["2"][-1] == ("update", "ok")
    recreate = services.store.audit_for("1")[-1]
    assert recreate.detail["lost_account_id"] == str(before["1"])

    again = run_cycle(services, CycleRequest(full=True))
    assert again.plan is not None
    assert again.plan.is_empty, json.dumps(again.as_json())


def test_a_status_edited_by_hand_alone_is_put_back(services: Services) -> None:
    """Only the status changed in the portal (an admin unblocked or blocked by hand): the
    full reconcile restores it and says so in the audit trail."""
    portal_sql(services, "UPDATE b2b_account SET status = 'active' WHERE contractor_key = '3'")
    full = run_cycle(services, CycleRequest(full=True))
    (update,) = full.as_json()["update"]
    assert update["changes"] == {"status": {"old": "active", "new": "pending"}}
    status = query(services.config.portal.url, "SELECT status FROM b2b_account WHERE id = 3")
    assert status == [("pending",)]
    assert services.store.audit_for("3")[-1].action == "update"


def forget(services: Services, key: str) -> None:
    """The state store as it is when syncd died between the portal's write and its own
    commit: no binding, audit row or mail for ``key``, though the portal has the account."""
    with services.store.begin() as conn:
        for table in (binding, audit, outbox):
            conn.execute(sa.delete(table).where(table.c.contractor_key == key))


def test_full_reconcile_removes_accounts_whose_creation_was_never_recorded(
    services: Services, tmp_path: Path
) -> None:
    """An account syncd created but never recorded is removed by the full reconcile once
    nothing claims it: its contractor left scope, or got a new account under a new e-mail
    (found by the crash-consistency suite)."""
    portal = services.config.portal.url
    forget(services, "3")
    forget(services, "2")
    edit_erp(tmp_path, lambda w: w.set_feature(3, "b2b", present=False))
    edit_erp(tmp_path, lambda w: w.set_email(2, "nowy@firma.pl"))
    light = run_cycle(services, CycleRequest())
    assert light.exit_code == 0, light.as_json()
    rows = query(portal, "SELECT contractor_key, login FROM b2b_account ORDER BY id")
    assert rows == [
        ("1", "k1@firma.pl"),
        ("2", "k2@firma.pl"),
        ("3", "k3@firma.pl"),
        ("2", "nowy@firma.pl"),
    ]

    full = run_cycle(services, CycleRequest(full=True))
    assert full.exit_code == 0, full.as_json()
    removed = [(r["key"], r["login"], r.get("lost")) for r in full.as_json()["remove"]]
    assert removed == [("2", "k2@firma.pl", True), ("3", "k3@firma.pl", True)]
    rows = query(portal, "SELECT contractor_key, login FROM b2b_account ORDER BY id")
    assert rows == [("1", "k1@firma.pl"), ("2", "nowy@firma.pl")]
    bound = services.store.binding("2")
    assert bound is not None
    assert bound.login == "nowy@firma.pl"
    audits = [(a.action, a.detail.get("lost")) for a in services.store.audit_for("3")]
    assert ("remove", True) in audits
    assert run_cycle(services, CycleRequest(full=True)).plan.is_empty  # type: ignore[union-attr]
