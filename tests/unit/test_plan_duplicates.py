"""Duplicate NIPs in scope: a warning in the plan, never a block (issue 11, item 5)."""

from __future__ import annotations

from syncd._plan_duplicates import TaxIds, tax_id_key, warnings_for
from syncd.model import DesiredAccount
from syncd.plan import PlanOptions, make_plan


def _desired(key: str, tax_id: str | None) -> DesiredAccount:
    return DesiredAccount(key, f"c{key}@x.pl", f"K{key}", f"Firma {key}", f"c{key}@x.pl", tax_id)


def test_tax_id_key_drops_formatting_and_the_pl_prefix_only() -> None:
    """PL 521-301-72-28 and 5213017228 are one NIP; DE and CZ numbers stay apart."""
    assert tax_id_key("PL 521-301-72-28") == tax_id_key("5213017228") == "5213017228"
    assert tax_id_key("DE123456789") != tax_id_key("CZ123456789")
    assert tax_id_key("  ") is None
    assert tax_id_key(None) is None


def test_two_contractors_with_one_nip_warn_but_both_are_created() -> None:
    """The plan creates both accounts and carries one warning naming both contractors."""
    desired = [_desired("1", "5213017228"), _desired("2", "PL5213017228"), _desired("3", None)]
    plan = make_plan(desired, {}, PlanOptions())
    assert [c.desired.key for c in plan.create] == ["1", "2", "3"]
    assert not plan.conflict
    [warning] = plan.as_json()["warnings"]
    assert "NIP 5213017228" in warning
    assert "K1 (id 1)" in warning
    assert "K2 (id 2)" in warning


def test_only_the_duplicates_of_the_contractors_asked_about_are_reported() -> None:
    """With --contractor, a shared NIP of two other contractors is not reported."""
    ids = TaxIds()
    for key, nip in (("1", "111"), ("2", "111"), ("3", "222"), ("4", "222")):
        ids.add(key, f"K{key}", nip)
    assert [d["tax_id"] for d in ids.duplicates()] == ["111", "222"]
    found = ids.duplicates({"3"})
    assert [d["keys"] for d in found] == [["3", "4"]]
    assert warnings_for(found, "4") == [found[0]["warning"]]
    assert warnings_for(found, "1") == []
