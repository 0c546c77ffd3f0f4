"""An ERP read that looks wrong never turns into removals: a scope of zero (a renamed
feature) or far below the last good read holds them all, and says which check and why."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.gt_env import FEATURE_OF, IN_SCOPE, GtEnv, gt_env


@pytest.fixture
def env(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Iterator[GtEnv]:
    """The GT environment with the shipped scope check (50 %) and no removal limit."""
    with gt_env(tmp_path, capsys, safety={"min_scope": "50%", "max_removals": "100%"}) as built:
        assert built.cli("sync").code == 0
        yield built


def test_a_renamed_feature_removes_nothing_and_says_why(env: GtEnv) -> None:
    """The feature renamed in the ERP (nobody in scope): every removal is held (exit 3),
    status and the log name the check and how to let it through; naming the feature back
    makes the next cycle a quiet one."""
    with env.edit() as w:
        for kh_id in map(int, IN_SCOPE):
            w.set_feature(kh_id, FEATURE_OF[kh_id], present=False)
            w.set_feature(kh_id, "b2b-nowa", present=True)
    before = env.snapshot()["accounts"]

    held = env.cli("sync", "--json")
    assert held.code == 3, held.err
    assert (held.doc["remove"], len(held.doc["held"])) == ([], len(IN_SCOPE))
    assert held.doc["held_by"] == "empty_scope"
    assert "the ERP returned no contractor in scope (feature 'b2b')" in held.doc["held_reason"]
    assert "renamed" in held.doc["held_reason"]
    assert "cycle.held" in held.err
    assert env.accounts() == before

    status = env.cli("status", "--json").doc
    assert (status["held_removals"], status["held_by"]) == (len(IN_SCOPE), "empty_scope")
    text = env.cli("status").out
    assert "held by empty_scope" in text
    assert "`syncd sync --allow-removals`" in text

    with env.edit() as w:
        for kh_id in map(int, IN_SCOPE):
            w.set_feature(kh_id, FEATURE_OF[kh_id], present=True)
    again = env.cli("sync", "--json")
    assert (again.code, again.doc["held"], again.doc["remove"]) == (0, [], [])


def test_a_scope_far_below_the_last_good_read_holds_removals_until_allowed(env: GtEnv) -> None:
    """Three of four contractors gone at once (below 50 % of the last good read): held by
    min_scope, even after a cycle that could not read the ERP at all; ``--allow-removals``
    lets them through, and that read becomes the new reference."""
    env.set_in_scope(1, 2, 3, present=False)
    held = env.cli("sync", "--json")
    assert held.code == 3
    assert held.doc["held_by"] == "min_scope"
    assert "fewer than safety.min_scope allows (2, against 4" in held.doc["held_reason"]
    assert len(env.accounts()) == len(IN_SCOPE)

    env.write_config(source={"url": f"sqlite:///{env.directory}/missing/erp.db"})
    assert env.cli("sync").code == 4  # an unreadable ERP: no plan, the reference stays
    env.write_config()
    assert env.cli("sync", "--json").doc["held_by"] == "min_scope"

    allowed = env.cli("sync", "--allow-removals", "--json")
    assert allowed.code == 0, allowed.err
    assert sorted(r["key"] for r in allowed.doc["remove"]) == ["1", "2", "3"]
    assert sorted(env.accounts()) == ["6"]
    assert env.cli("sync").code == 0  # one contractor is now the good read


def test_min_scope_zero_switches_the_scope_checks_off(env: GtEnv) -> None:
    """``safety.min_scope: 0``: a shrunken scope removes what left, as configured."""
    env.write_config(safety={"min_scope": 0})
    env.set_in_scope(1, 2, 3, present=False)
    result = env.cli("sync", "--json")
    assert result.code == 0, result.err
    assert sorted(r["key"] for r in result.doc["remove"]) == ["1", "2", "3"]
