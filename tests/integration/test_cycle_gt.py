"""End to end against a Subiekt GT-shaped ERP: create, nothing-to-do, field changes, removal.

Every step runs through the real command line (``syncd.cli.main`` in-process) and checks
the portal's ``b2b_account``/``b2b_contact`` rows and the state store's tables directly.
The main scenario runs twice: with the state store and the portal on SQLite files, and
with both on a PostgreSQL server.
"""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from connectors.subiekt_gt.fake import KIND_SUPPLIER
from syncd.model import RAW_DIGEST_PREFIX
from tests.gt_env import ERP_BLOCK_REASON, IN_SCOPE, ZURAW, GtEnv, gt_env

# Writes a cycle may make when it has nothing to do: its lease and its own run row.
RUN_BOOKKEEPING = ("syncd_lease", "syncd_run")


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def urls(request: pytest.FixtureRequest) -> dict[str, str]:
    """State store and portal on SQLite files (no URLs given), or both on PostgreSQL."""
    if request.param == "sqlite":
        return {}
    url = str(request.getfixturevalue("pg_url"))
    return {"portal_url": url, "state_url": url}


@pytest.fixture
def env(
    urls: dict[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> Iterator[GtEnv]:
    """The GT environment on the backend ``urls`` names, in the default delete mode."""
    with gt_env(tmp_path, capsys, **urls) as built:
        yield built


@pytest.fixture
def sqlite_env(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Iterator[GtEnv]:
    """The GT environment on SQLite files only."""
    with gt_env(tmp_path, capsys) as built:
        yield built


def _sync(env: GtEnv, *args: str) -> dict[str, Any]:
    outcome = env.cli("sync", "--json", *args)
    assert outcome.code == 0, outcome.err
    return outcome.doc


def _diff(before: dict[str, Any], after: dict[str, Any]) -> set[str]:
    return {name for name in before if before[name] != after[name]}


def test_first_sync_creates_exactly_the_in_scope_contractors_with_spec_fields(env: GtEnv) -> None:
    """The first sync creates accounts for contractors 1, 2, 3, 6 with every spec-5 field."""
    document = _sync(env)
    assert sorted(item["key"] for item in document["create"]) == sorted(IN_SCOPE)
    assert {item["result"] for item in document["create"]} == {"ok"}
    accounts = env.accounts()
    assert sorted(accounts) == sorted(IN_SCOPE)
    zuraw = accounts["1"]
    assert {k: v for k, v in zuraw.items() if k not in ("id", "created_at", "updated_at")} == {
        "login": "biuro@zuraw.pl",
        "contractor_key": "1",
        "symbol": "K001",
        "name": ZURAW,
        "tax_id": "5213017228",
        "email": "biuro@zuraw.pl",
        "phone": "22 123 45 67",
        "address": "ul. Świętokrzyska 12/3a, 00-916 Warszawa",
        "price_level": "Hurtowa",
        "discount": Decimal("12.50"),
        "owner_name": "Anna Nowak",
        "owner_email": "anna.nowak@hurtownia.pl",
        "customer_group": None,
        "status": "pending",
        "block_reason": None,
        "password_hash": None,
        "contacts": [
            {
                "name": "Adam Ąbel",
                "email": None,
                "phone": "602 000 002",
                "position": None,
                "is_primary": True,
                "receives_mail": True,  # GT's default: the main contact receives mail
                "represents": False,
            },
            {
                "name": "Zofia Łęcka",
                "email": "z.lecka@zuraw.pl",
                "phone": "601 000 001",
                "position": "Zaopatrzenie",
                "is_primary": False,
                "receives_mail": False,
                "represents": False,
            },
        ],
    }
    kowalski = accounts["2"]
    assert (kowalski["login"], kowalski["price_level"], kowalski["discount"]) == (
        "zamowienia@kowalski.com.pl",
        "Detaliczna",
        Decimal("5.00"),
    )
    assert (kowalski["owner_name"], kowalski["address"]) == (
        "Piotr Wiśniewski",
        "ul. Długa 7, 30-001 Kraków",
    )
    assert [c["name"] for c in kowalski["contacts"]] == ["Jan Kowalski"]
    lipa = accounts["3"]
    assert (lipa["price_level"], lipa["discount"], lipa["owner_name"], lipa["contacts"]) == (
        None,
        Decimal("0.00"),
        None,
        [],
    )
    assert {a["status"] for a in accounts.values()} == {"pending"}
    assert {a["password_hash"] for a in accounts.values()} == {None}
    mails = env.state_rows("syncd_outbox")
    assert sorted((m["contractor_key"], m["template"], m["status"]) for m in mails) == [
        (key, "activation", "pending") for key in sorted(IN_SCOPE)
    ]
    assert {m["contractor_key"]: m["recipient"] for m in mails} == {
        key: accounts[key]["login"] for key in IN_SCOPE
    }
    assert {m["contractor_key"]: m["account_id"] for m in mails} == {
        key: str(accounts[key]["id"]) for key in IN_SCOPE
    }


def test_second_sync_with_nothing_changed_writes_nothing(env: GtEnv) -> None:
    """A sync after a sync sends no modifying statement to the portal nor the bookkeeping."""
    _sync(env)
    before = env.snapshot()
    with env.recording() as recorder:
        document = _sync(env)
    assert document["unchanged"] == len(IN_SCOPE)
    for kind in ("create", "adopt", "update", "remove", "block", "unblock", "conflict", "held"):
        assert document[kind] == [], kind
    assert recorder.touching("b2b_account", "b2b_contact") == []
    others = [s for _, s in recorder.statements if not any(t in s for t in RUN_BOOKKEEPING)]
    assert others == []
    assert recorder.touching("syncd_run"), "the cycle records its own run row"
    assert env.snapshot() == before


def test_digests_of_an_older_recipe_are_replaced_without_portal_writes(env: GtEnv) -> None:
    """After an upgrade that digests rows differently, one sync stores the new digests and
    sends the portal nothing; the sync after it maps nothing again."""
    _sync(env)
    with env.state.begin() as conn:
        conn.execute(
            sa.text("UPDATE syncd_binding SET source_fingerprint = 'r2:' || contractor_key")
        )
    with env.recording() as recorder:
        document = _sync(env)
    assert document["unchanged"] == len(IN_SCOPE)
    assert recorder.touching("b2b_account", "b2b_contact") == []
    digests = {row["source_fingerprint"][:3] for row in env.state_rows("syncd_binding")}
    assert digests == {RAW_DIGEST_PREFIX}
    with env.recording() as recorder:
        _sync(env)
    assert recorder.touching("syncd_binding") == []


def test_erp_edits_show_in_plan_with_old_and_new_values_and_sync_applies_only_them(
    env: GtEnv,
) -> None:
    """Price level, discount definition, salesperson, contact and block reach plan and portal."""
    _sync(env)
    before = env.accounts()
    with env.edit() as w:
        w.set_price(1, 1)
        w.set_discount_percent(env.handles.discounts["zuraw"], 15)
        w.set_owner(2, env.handles.salespeople["anna"])
        w.update_contact(env.handles.contacts["kowalski"], pk_Telefon="609 999 999")
        w.set_blocked(3, True)

    with env.recording() as recorder:
        plan = env.cli("plan", "--json")
    assert plan.code == 0, plan.err
    assert recorder.statements == [], "plan must change nothing anywhere"
    updates = {item["key"]: item["changes"] for item in plan.doc["update"]}
    kowalski_contact = {
        "name": "Jan Kowalski",
        "email": "jan@kowalski.com.pl",
        "position": None,
        "is_primary": False,
        "receives_mail": False,
        "represents": False,
    }
    assert updates == {
        "1": {
            "price_level": {"old": "Hurtowa", "new": "Detaliczna"},
            "discount": {"old": "12.50", "new": "15.00"},
        },
        "2": {
            "owner_name": {"old": "Piotr Wiśniewski", "new": "Anna Nowak"},
            "owner_email": {"old": "p.wis@hurtownia.pl", "new": "anna.nowak@hurtownia.pl"},
            "contacts": {
                "old": [{**kowalski_contact, "phone": "603 000 003"}],
                "new": [{**kowalski_contact, "phone": "609 999 999"}],
            },
        },
    }
    assert [(b["key"], b["reason"]) for b in plan.doc["block"]] == [("3", ERP_BLOCK_REASON)]
    assert plan.doc["unchanged"] == 1
    for kind in ("create", "adopt", "remove", "unblock", "conflict", "held"):
        assert plan.doc[kind] == [], kind
    assert env.accounts() == before, "plan changed the portal"

    document = _sync(env)
    assert {item["result"] for item in document["update"] + document["block"]} == {"ok"}
    after = env.accounts()
    assert _diff(before["1"], after["1"]) == {"price_level", "discount", "updated_at"}
    assert (after["1"]["price_level"], after["1"]["discount"]) == ("Detaliczna", Decimal("15"))
    assert _diff(before["2"], after["2"]) == {"owner_name", "owner_email", "contacts", "updated_at"}
    assert after["2"]["contacts"][0]["phone"] == "609 999 999"
    assert _diff(before["3"], after["3"]) == {"status", "block_reason", "updated_at"}
    assert (after["3"]["status"], after["3"]["block_reason"]) == ("blocked", ERP_BLOCK_REASON)
    assert after["6"] == before["6"]
    blocked = [m for m in env.state_rows("syncd_outbox") if m["template"] == "blocked"]
    assert [m["contractor_key"] for m in blocked] == ["3"]
    assert env.cli("plan", "--json").doc["unchanged"] == len(IN_SCOPE)


def test_removed_feature_deletes_the_account_and_readding_creates_a_new_id(env: GtEnv) -> None:
    """Delete mode: rows and bindings go, mail is cancelled; coming back gets a brand-new id."""
    _sync(env)
    old_id = env.accounts()["3"]["id"]
    env.set_in_scope(3, present=False)
    with env.edit() as w:  # the other two ways out of scope: deleted, no longer a customer
        w.delete_contractor(6)
        w.update_contractor(2, kh_Rodzaj=KIND_SUPPLIER)
    plan = env.cli("plan", "--json").doc
    assert [(r["key"], r["mode"]) for r in plan["remove"]] == [
        ("2", "delete"),
        ("3", "delete"),
        ("6", "delete"),
    ]

    document = _sync(env)
    assert {r["result"] for r in document["remove"]} == {"ok"}
    assert sorted(env.accounts()) == ["1"]
    assert [b["contractor_key"] for b in env.state_rows("syncd_binding")] == ["1"]
    mails = {(m["contractor_key"], m["status"]) for m in env.state_rows("syncd_outbox")}
    assert ("3", "cancelled") in mails
    assert ("3", "pending") not in mails

    env.set_in_scope(3, present=True)
    document = _sync(env)
    assert [c["key"] for c in document["create"]] == ["3"]
    account = env.accounts()["3"]
    assert account["id"] != old_id
    assert account["status"] == "pending"
    pending = [m for m in env.state_rows("syncd_outbox") if m["status"] == "pending"]
    assert ("3", "activation", str(account["id"])) in {
        (m["contractor_key"], m["template"], m["account_id"]) for m in pending
    }


def test_deactivate_mode_keeps_the_account_and_brings_the_same_id_back(
    urls: dict[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Deactivate mode: the account turns inactive, and coming back restores it under its id."""
    with gt_env(tmp_path, capsys, portal={"on_removed": "deactivate"}, **urls) as env:
        _sync(env)
        before = env.accounts()["3"]
        env.set_in_scope(3, present=False)
        document = _sync(env)
        assert [(r["key"], r["mode"]) for r in document["remove"]] == [("3", "deactivate")]
        inactive = env.accounts()["3"]
        assert (inactive["id"], inactive["status"]) == (before["id"], "inactive")
        assert _diff(before, inactive) == {"status", "updated_at"}

        env.set_in_scope(3, present=True)
        document = _sync(env)
        assert document["create"] == []
        assert [(u["key"], u.get("reactivate")) for u in document["update"]] == [("3", True)]
        back = env.accounts()["3"]
        assert (back["id"], back["status"]) == (before["id"], "pending")
        assert _diff(before, back) == {"updated_at"}
        # The account never got its password (its activation mail was cancelled when it
        # left): coming back must mail one, or the customer could never log in.
        pending = [m for m in env.state_rows("syncd_outbox") if m["status"] == "pending"]
        assert ("3", "activation") in {(m["contractor_key"], m["template"]) for m in pending}


def test_contractor_option_syncs_only_that_contractor(sqlite_env: GtEnv) -> None:
    """``sync --contractor 2`` creates only contractor 2; the next plain sync does the rest."""
    document = _sync(sqlite_env, "--contractor", "2")
    assert [c["key"] for c in document["create"]] == ["2"]
    assert sorted(sqlite_env.accounts()) == ["2"]
    assert [m["contractor_key"] for m in sqlite_env.state_rows("syncd_outbox")] == ["2"]

    with sqlite_env.edit() as w:
        w.set_price(2, 2)
        w.set_price(1, 3)
    document = _sync(sqlite_env, "--contractor", "2")
    assert [u["key"] for u in document["update"]] == ["2"]
    assert document["create"] == []
    assert sorted(sqlite_env.accounts()) == ["2"]

    document = _sync(sqlite_env)
    assert sorted(c["key"] for c in document["create"]) == ["1", "3", "6"]
    assert sqlite_env.accounts()["1"]["price_level"] == "Dystrybutor"


def test_a_contractor_created_blocked_gets_its_activation_mail_when_unblocked(
    sqlite_env: GtEnv,
) -> None:
    """Created while ERP-blocked: no mail; unblocked: pending, with an activation mail."""
    with sqlite_env.edit() as w:
        w.set_blocked(3, True)
    document = _sync(sqlite_env)
    assert "3" in [c["key"] for c in document["create"]]
    account = sqlite_env.accounts()["3"]
    assert (account["status"], account["block_reason"]) == ("blocked", ERP_BLOCK_REASON)
    assert "3" not in {m["contractor_key"] for m in sqlite_env.state_rows("syncd_outbox")}

    with sqlite_env.edit() as w:
        w.set_blocked(3, False)
    document = _sync(sqlite_env)
    assert [u["key"] for u in document["unblock"]] == ["3"]
    account = sqlite_env.accounts()["3"]
    assert (account["status"], account["block_reason"]) == ("pending", None)
    # It never had a password: an "unblocked" notice alone would leave it locked out.
    mails = [m for m in sqlite_env.state_rows("syncd_outbox") if m["contractor_key"] == "3"]
    assert [(m["template"], m["status"]) for m in mails] == [("activation", "pending")]
