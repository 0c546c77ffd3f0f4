"""``accounts find`` is a directory of the whole ERP, and a NIP shared in scope only warns."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from syncd.store.schema import record_backoff
from tests.gt_env import GtEnv, gt_env


@pytest.fixture
def env(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Iterator[GtEnv]:
    """The GT test ERP synced once, plus a Kowalski who shares K002's e-mail (a conflict)."""
    with gt_env(tmp_path, capsys) as built:
        assert built.cli("sync").code == 0
        with built.edit() as w:
            w.add_contractor(
                21, "K021", "Jan Kowalski PHU", email="zamowienia@kowalski.com.pl", features=["b2b"]
            )
            w.add_contractor(22, "K022", "Kowalski Bez Cechy", email="kbc@k.pl", features=["x"])
        assert built.cli("sync").code == 0
        yield built


def _find(env: GtEnv, query: str) -> dict[str, Any]:
    outcome = env.cli("accounts", "find", query, "--json")
    assert outcome.code == 0, outcome.err
    return outcome.doc


def test_wildcard_lists_a_contractor_without_an_account_with_the_reason(env: GtEnv) -> None:
    """'*kowalsk*' lists K002's account and the conflicted K021 with its conflict's reason."""
    doc = _find(env, "*kowalsk*")
    assert [a["key"] for a in doc["accounts"]] == ["2"]
    [without] = [r for r in doc["results"] if not r["account"]]
    assert (without["key"], without["why"]) == ("21", "conflict")
    assert "already the login of contractor 2" in without["reason"]
    text = env.cli("accounts", "find", "*kowalsk*").out
    assert "1 account(s) and 1 contractor(s) without one" in text
    assert "(no account)" in text
    assert "give each contractor its own e-mail" in text


def test_an_out_of_scope_contractor_is_found_by_its_exact_symbol_or_id(env: GtEnv) -> None:
    """K022 lacks the feature: a wildcard does not list it, its symbol and id do, with why."""
    assert "22" not in [r["key"] for r in _find(env, "*bez cechy*")["results"]]
    for query in ("K022", "22"):  # "22" also matches other NIPs, after the exact id
        found = _find(env, query)["results"][0]
        assert (found["key"], found["why"], found["account"]) == ("22", "out_of_scope", False)
        assert found["reason"].startswith("out of scope: ")


def test_new_and_quarantined_contractors_say_why_they_have_no_account(env: GtEnv) -> None:
    """A contractor added since the last cycle waits for it; one the portal refuses is
    quarantined, with the error and the command that retries it."""
    with env.edit() as w:
        w.add_contractor(31, "K031", "Nowa Firma", email="nowa@firma.pl", features=["b2b"])
        w.add_contractor(32, "K032", "Odrzucona Firma", email="odrz@firma.pl", features=["b2b"])
    now = datetime.now(UTC)
    with env.state.begin() as conn:
        conn.execute(
            sa.insert(record_backoff),
            [{"contractor_key": "32", "login": "odrz@firma.pl", "action": "create",
              "failures": 5, "first_failed_at": now, "last_failed_at": now,
              "retry_after": None, "quarantined": True, "fingerprint": "x",
              "last_error": "portal said: company name too long"}],
        )  # fmt: skip
    results = _find(env, "*firma*")["results"]
    assert [(r["key"], r["why"]) for r in results] == [
        ("31", "not_created_yet"),
        ("32", "quarantined"),
    ]
    assert "syncd plan --contractor 31" in results[0]["reason"]
    assert "company name too long" in results[1]["reason"]
    assert "syncd sync --contractor 32" in results[1]["reason"]


def test_an_exact_symbol_ranks_first_then_names_in_order(env: GtEnv) -> None:
    """'K00?' finds the in-scope symbols K001..K006 by name; 'k003' puts K003 first."""
    names = [r["name"] for r in _find(env, "K00?")["results"]]
    assert names == sorted(names, key=str.casefold)
    assert _find(env, "k003")["results"][0]["symbol"] == "K003"


def test_a_nip_shared_in_scope_warns_in_plan_status_and_explain_but_blocks_nothing(
    env: GtEnv,
) -> None:
    """K041 has K001's NIP in another format: both keep accounts; plan, status and explain
    warn."""
    with env.edit() as w:
        w.add_contractor(
            41, "K041", "Żuraw Oddział", email="oddzial@zuraw.pl", nip="521 301 72 28",
            features=["b2b"],
        )  # fmt: skip
    plan = env.cli("plan", "--json").doc
    assert [c["key"] for c in plan["create"]] == ["41"]
    [warning] = plan["warnings"]
    assert "NIP 5213017228" in warning
    assert "K001 (id 1)" in warning
    assert "K041 (id 41)" in warning
    assert warning in env.cli("plan").out
    assert env.cli("sync").code == 0
    assert "41" in env.accounts()
    assert env.cli("status", "--json").doc["warnings"] == [warning]
    assert warning in env.cli("status").out
    assert env.cli("explain", "K041", "--json").doc["warnings"] == [warning]
    assert warning in env.cli("explain", "1").out
    assert env.cli("explain", "K003", "--json").doc["warnings"] == []
