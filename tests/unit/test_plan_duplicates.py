"""Duplicate NIPs in scope: a warning in the plan, never a block (issue 11, item 5)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from syncd._plan_duplicates import TaxIds, duplicate_warning, tax_id_key, warnings_for
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


def _reference(rows: list[tuple[str, str, str | None]]) -> list[dict[str, object]]:
    """What the table of NIP strings to (key, symbol) tuples reported, for comparison."""
    holders: dict[str, list[tuple[str, str]]] = {}
    for key, symbol, tax_id in rows:
        nip = tax_id_key(tax_id)
        if nip is not None:
            holders.setdefault(nip, []).append((key, symbol))
    return [
        {"tax_id": nip, "keys": [k for k, _ in found], "warning": duplicate_warning(nip, found)}
        for nip, found in sorted(holders.items())
        if len(found) > 1
    ]


def _found(rows: list[tuple[str, str, str | None]]) -> list[dict[str, object]]:
    ids = TaxIds()
    for row in rows:
        ids.add(*row)
    return list(ids.duplicates())


def test_compact_and_general_holders_are_named_exactly() -> None:
    """Number keys, other keys, PL prefixes, leading zeros, odd symbols: three holders of
    one NIP are all named as given, the first one too (kept joined)."""
    odd = ["", "\0K", "Żuraw Sp. z o.o.", "K" * 40, "\udcff"]
    rows: list[tuple[str, str, str | None]] = [
        ("7", "K7", "5213017228"),
        ("K-8", "K8", "PL 521-301-72-28"),
        ("9", "K9", "PL5213017228"),
        ("0012", "K12", "0123456789"),
        ("4294967296", "BIG", "0123456789"),
        ("13", "K13", "DE123"),
        ("14", "K14", "de 123"),
        *((str(20 + n), symbol, "7770001122") for n, symbol in enumerate(odd)),
        ("30", "K30", "7770001122"),
    ]
    found = _found(rows)
    assert found == _reference(rows)
    assert [d["keys"] for d in found] == [
        ["0012", "4294967296"],
        ["7", "K-8", "9"],
        ["20", "21", "22", "23", "24", "30"],
        ["13", "14"],
    ]
    assert "K7 (id 7), K8 (id K-8), K9 (id 9)" in str(found[1]["warning"])


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["0", "1", "42", "007", "4294967296", "K1", "ż", "", "a\0b", "\udcff"]),
            st.text(max_size=6),
            st.sampled_from(["5213017228", "PL5213017228", "0123", "123", "PL", "x1", None]),
        ),
        max_size=12,
    )
)
def test_the_compact_table_reports_what_the_string_table_did(
    rows: list[tuple[str, str, str | None]],
) -> None:
    """Any keys, symbols and NIPs: the same duplicates, keys and warnings, word for word."""
    assert _found(rows) == _reference(rows)
