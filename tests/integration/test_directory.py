"""``accounts find`` is a directory of the whole ERP, and a NIP shared in scope only warns."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from syncd.directory import OUT_OF_SCOPE_SHOWN
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
    """'*kowalsk*' lists K002's account, the conflicted K021 with its conflict's reason and
    K022, out of scope, with the ERP's reason (it lacks the feature)."""
    doc = _find(env, "*kowalsk*")
    assert [a["key"] for a in doc["accounts"]] == ["2"]
    without = {r["key"]: r for r in doc["results"] if not r["account"]}
    assert {key: r["why"] for key, r in without.items()} == {
        "21": "conflict",
        "22": "out_of_scope",
    }
    assert "already the login of contractor 2" in without["21"]["reason"]
    assert without["22"]["reason"].startswith("out of scope: NOT in scope: it does not carry")
    assert "add the feature to the contractor in Subiekt GT" in without["22"]["reason"]
    text = env.cli("accounts", "find", "*kowalsk*").out
    assert "1 account(s) and 2 contractor(s) without one" in text
    assert "(no account)" in text
    assert "give each contractor its own e-mail" in text
    assert "out_of_scope" in text
    assert "it does not carry the feature 'b2b'" in text


def test_an_out_of_scope_contractor_is_found_by_a_wildcard_its_symbol_or_id(env: GtEnv) -> None:
    """K022 lacks the feature: a wildcard on its name (which K004 matches too), its symbol
    and its id list it, with why; so is a supplier found by its name."""
    found = {r["key"]: (r["why"], r["account"]) for r in _find(env, "*bez cechy*")["results"]}
    assert found == {"4": ("out_of_scope", False), "22": ("out_of_scope", False)}
    supplier = _find(env, "Dostawca")["results"]
    assert [(r["key"], r["why"]) for r in supplier] == [("5", "out_of_scope")]
    assert "supplier only" in supplier[0]["reason"]
    for query in ("K022", "22"):  # "22" also matches other NIPs, after the exact id
        found = _find(env, query)["results"][0]
        assert (found["key"], found["why"], found["account"]) == ("22", "out_of_scope", False)
        assert found["reason"].startswith("out of scope: ")


def test_many_out_of_scope_matches_are_counted_beyond_the_ones_described(env: GtEnv) -> None:
    """Only the first OUT_OF_SCOPE_SHOWN out-of-scope matches are described (one ERP query
    each); the rest are counted, and the text says to narrow the search."""
    with env.edit() as w:
        for n in range(25):
            w.add_contractor(100 + n, f"KW{n:03d}", f"Kowalski Hurt {n:02d}", features=["x"])
    doc = _find(env, "*kowalski hurt*")
    assert len(doc["results"]) == OUT_OF_SCOPE_SHOWN
    assert {r["why"] for r in doc["results"]} == {"out_of_scope"}
    assert doc["results"][0]["name"] == "Kowalski Hurt 00"  # ranked by name
    assert doc["more_out_of_scope"] == 25 - OUT_OF_SCOPE_SHOWN
    text = env.cli("accounts", "find", "*kowalski hurt*").out
    assert f"... and {25 - OUT_OF_SCOPE_SHOWN} more out of scope: narrow the search" in text


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
