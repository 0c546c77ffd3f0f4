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
from syncd.wiring import Services, open_services
from tests.daemon_support import make_site, query


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
