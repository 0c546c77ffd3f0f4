"""The raw-row digest a quiet cycle compares: unambiguous, and the same on every run."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from connectors._stream import row_digester
from syncd.model import RAW_DIGEST_PREFIX

ROW = (100001, "K0000001", "Spółka Cywilna", None, True, Decimal("5.0000"), date(2026, 1, 2))
PEOPLE = [(1, 100001, "Paweł", "Żak", None, False)]


def test_the_digest_of_known_rows_is_fixed() -> None:
    """A stored digest stays valid: the recipe gives these bytes on any run or platform."""
    digest = row_digester("1|salt")(ROW, PEOPLE)
    assert digest == "r3:9b5c84745c2984a6f66584dd940023a6"
    assert digest.startswith(RAW_DIGEST_PREFIX)


def test_values_that_print_alike_digest_apart() -> None:
    """NULL is not the text "None", a boundary between two values cannot move, 1 is not "1"."""
    digest = row_digester("")
    assert digest((None,), []) != digest(("None",), [])
    assert digest(("a|", "b"), []) != digest(("a", "|b"), [])
    assert digest((1,), []) != digest(("1",), [])
    assert digest((Decimal("5.0"),), []) != digest((Decimal("5.00"),), [])
    assert digest(("a",), [("b",)]) != digest(("a", "b"), [])
    assert row_digester("x")(ROW, PEOPLE) != row_digester("y")(ROW, PEOPLE)


def test_equal_values_digest_alike_whatever_their_identity() -> None:
    """Two equal rows give one digest even when one repeats a single string object."""
    shared = "Firma " + str(7)
    digest = row_digester("")
    assert digest((shared, shared), []) == digest(("Firma " + str(7), "Firma 7"), [])
    assert digest(ROW, PEOPLE) == digest(list(ROW), [list(p) for p in PEOPLE])
