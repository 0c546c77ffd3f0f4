"""A light cycle repairs a portal account deleted by hand at once, not at the nightly
reconcile: the update that finds it gone creates it again, with the ERP's new values."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from connectors.sql_portal.schema import account
from tests.gt_env import GtEnv, gt_env

LOGIN = "sklep@podlipa.pl"  # contractor 3 of the GT environment


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def env(
    request: pytest.FixtureRequest, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> Iterator[GtEnv]:
    """The GT environment on a SQL portal in SQLite or PostgreSQL; mail waits an hour."""
    portal_url = None
    if request.param == "postgres":
        portal_url = str(request.getfixturevalue("pg_url"))
    with gt_env(tmp_path, capsys, portal_url=portal_url, mail={"send_delay": "1h"}) as built:
        yield built


def _delete_by_hand(env: GtEnv) -> str:
    with env.portal.begin() as conn:
        old_id = conn.execute(sa.select(account.c.id).where(account.c.login == LOGIN)).scalar()
        conn.execute(sa.delete(account).where(account.c.login == LOGIN))
    return str(old_id)


def test_an_update_of_a_deleted_account_recreates_it_in_the_same_light_cycle(env: GtEnv) -> None:
    """Row of K3 deleted by hand, K3's name changed in the ERP, a light ``sync``: the account
    is back with the new name and a new id, bound again, and its never-sent activation mail
    is replaced by exactly one for the new account."""
    assert env.cli("sync").code == 0
    old_id = _delete_by_hand(env)
    with env.edit() as w:
        w.update_address(3, adr_NazwaPelna="Sklep Pod Lipą i Córka")

    result = env.cli("sync", "--json")
    assert result.code == 0, result.err
    assert [(u["key"], u["result"]) for u in result.doc["update"]] == [("3", "ok")]
    row = env.accounts()["3"]
    assert (row["login"], row["name"], row["status"]) == (
        LOGIN,
        "Sklep Pod Lipą i Córka",
        "pending",
    )
    assert str(row["id"]) != old_id
    binding = env.cli("accounts", "show", "3", "--json").doc
    assert str(binding["account_id"]) == str(row["id"])
    pending = [
        m
        for m in env.state_rows("syncd_outbox")
        if m["contractor_key"] == "3" and m["status"] == "pending"
    ]
    assert [(m["template"], m["account_id"]) for m in pending] == [("activation", str(row["id"]))]
    history = [(h["action"], h["result"]) for h in env.cli("history", "3", "--json").doc["history"]]
    assert ("recreate", "ok") in history
    assert env.cli("sync", "--json").doc["update"] == []  # repaired: nothing left to do


def test_a_block_of_a_deleted_account_recreates_it_blocked(env: GtEnv) -> None:
    """K3 blocked in the ERP after its row was deleted by hand: one light cycle brings the
    account back blocked with the ERP's reason, and mails no password."""
    assert env.cli("sync").code == 0
    _delete_by_hand(env)
    with env.edit() as w:
        w.update_contractor(3, kh_Zablokowany=True)
    assert env.cli("sync").code == 0
    row = env.accounts()["3"]
    assert (row["status"], row["block_reason"]) == ("blocked", "Konto zablokowane w systemie ERP")
    pending = [
        m["template"]
        for m in env.state_rows("syncd_outbox")
        if m["contractor_key"] == "3" and m["status"] == "pending"
    ]
    assert "activation" not in pending
