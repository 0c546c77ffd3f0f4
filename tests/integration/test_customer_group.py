"""The customer group (issue 11, item 6): GT's contractor group becomes the account's
``customer_group``, and moving a contractor to another group is an update like a price level
change. GT-shaped ERP, SQL portal (syncd's schema) and state store on SQLite."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.gt_env import GtEnv, gt_env

Grouped = tuple[GtEnv, dict[str, int]]


@pytest.fixture
def grouped(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Iterator[Grouped]:
    """The GT test ERP with K001 in group Hurtownie and K002 in Budowlanka, synced once;
    and the groups' ids by name."""
    with gt_env(tmp_path, capsys) as built:
        with built.edit() as w:
            groups = {name: w.add_group(name) for name in ("Hurtownie", "Budowlanka", "Detal")}
            w.set_group(1, groups["Hurtownie"])
            w.set_group(2, groups["Budowlanka"])
        assert built.cli("sync").code == 0
        yield built, groups


def test_the_group_name_is_synced_to_the_account(grouped: Grouped) -> None:
    """Each account holds its contractor's group by name; no group is NULL."""
    accounts = grouped[0].accounts()
    assert (accounts["1"]["customer_group"], accounts["2"]["customer_group"]) == (
        "Hurtownie",
        "Budowlanka",
    )
    assert accounts["3"]["customer_group"] is None


def test_a_group_change_is_an_update_of_that_field_alone_without_mail(grouped: Grouped) -> None:
    """Moving K001 to Detal and K002 out of every group: two updates of customer_group only,
    applied to the portal, and no mail."""
    env, groups = grouped
    with env.edit() as w:
        w.set_group(1, groups["Detal"])
        w.set_group(2, None)
    plan = env.cli("plan", "--json").doc
    changes = {item["key"]: item["changes"] for item in plan["update"]}
    assert changes == {
        "1": {"customer_group": {"old": "Hurtownie", "new": "Detal"}},
        "2": {"customer_group": {"old": "Budowlanka", "new": None}},
    }
    mails_before = len(env.state_rows("syncd_outbox"))
    assert env.cli("sync").code == 0
    accounts = env.accounts()
    assert (accounts["1"]["customer_group"], accounts["2"]["customer_group"]) == ("Detal", None)
    assert len(env.state_rows("syncd_outbox")) == mails_before
    assert env.cli("plan", "--json").doc["update"] == []
