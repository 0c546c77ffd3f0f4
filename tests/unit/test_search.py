"""``accounts find`` matching: wildcards, case and accents, NIP in any formatting."""

from __future__ import annotations

import unicodedata
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from syncd._search import fold, fold_tax_id, ranked, search

ROWS: list[tuple[dict[str, Any], str]] = [
    ({"name": "Anna Kowalska", "symbol": "K-11", "tax_id": None}, "anna@kowalska.pl"),
    ({"name": "KOWALSKI HURT", "symbol": "K-12", "tax_id": "PL 521-301-72-28"}, "hurt@k.pl"),
    ({"name": "Kowalśki Tomasz", "symbol": "K-13", "tax_id": "7740001454"}, "tk@k.pl"),
    ({"name": "Łódź Żuraw Sp. z o.o.", "symbol": "ZUR", "tax_id": "PL7740001454"}, "b@z.pl"),
    ({"name": "Nowak", "symbol": "NOW", "email": "Biuro@Nowak.PL"}, "biuro@nowak.pl"),
]


def test_fold_drops_case_and_accents_including_letters_without_decomposition() -> None:
    """Kowalśki, KOWALSKI and Łódź fold to plain lower-case ASCII."""
    assert fold("Kowalśki") == fold("KOWALSKI") == "kowalski"
    assert fold("Łódź Žluťoučký Școală") == "lodz zlutoucky scoala"


@given(st.text(alphabet=st.characters(max_codepoint=0x24F, exclude_categories=("Cs",))))
def test_the_fast_fold_equals_dropping_every_combining_mark(text: str) -> None:
    """For Latin text (ASCII to Latin Extended-B) the fast paths fold exactly as dropping
    each combining mark one character at a time does."""
    from syncd._search import _UNDECOMPOSED

    decomposed = unicodedata.normalize("NFKD", text.translate(_UNDECOMPOSED))
    slow = "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()
    assert fold(text) == slow


def test_wildcard_finds_every_spelling_of_a_name() -> None:
    """'*kowalsk*' finds Kowalska, KOWALSKI and Kowalśki, and nothing else."""
    assert search("*kowalsk*", ROWS) == [0, 1, 2]


def test_wildcards_anchor_the_rest_of_the_pattern() -> None:
    """'kowalsk*' must start the value; a query without '*' matches anywhere in it."""
    assert search("kowalsk*", ROWS) == [1, 2]
    assert search("lodz", ROWS) == [3]
    assert search("ZUR", ROWS) == [3]


@pytest.mark.parametrize(
    "typed", ["5213017228", "521-301-72-28", "PL5213017228", "pl 521 301 72 28"]
)
def test_a_nip_in_any_formatting_finds_the_same_contractor(typed: str) -> None:
    """With or without dashes, spaces or the PL prefix, a NIP finds its contractor only."""
    assert search(typed, ROWS) == [1]


def test_nip_prefix_is_dropped_on_both_sides() -> None:
    """A NIP stored with a PL prefix is found by its digits, and the other way round."""
    assert fold_tax_id("PL 774-000-14-54") == "7740001454"
    assert search("7740001454", ROWS) == [2, 3]
    assert search("PL774*", ROWS) == [2, 3]


def test_e_mail_and_login_are_searched_case_insensitively() -> None:
    """An e-mail typed in capitals finds the account by its login and e-mail field."""
    assert search("BIURO@NOWAK.pl", ROWS) == [4]
    assert search("*@k.pl", ROWS) == [1, 2]


def test_question_mark_matches_exactly_one_character() -> None:
    """'K-1?' finds K-11, K-12, K-13 but not a longer or shorter symbol; '?' anchors."""
    rows = [*ROWS, ({"name": "Inny", "symbol": "K-1"}, "i@i.pl"), ({"symbol": "K-111"}, "")]
    assert search("K-1?", rows) == [0, 1, 2]
    assert search("kowalsk?", ROWS) == []
    assert search("kowalsk? hurt", ROWS) == [1]


def test_question_mark_in_a_nip_stands_for_one_digit() -> None:
    """A NIP with one unknown digit, in any formatting, still finds its contractor."""
    assert search("521-301-72-2?", ROWS) == [1]


def test_ranked_puts_an_exact_symbol_or_login_first_then_names_in_order() -> None:
    """'*k*' ranks by name; the query 'K-13' or the login 'hurt@k.pl' comes first."""
    assert [ROWS[i][0]["name"] for i in ranked("*kowalsk*", ROWS)] == [
        "Anna Kowalska",
        "KOWALSKI HURT",
        "Kowalśki Tomasz",
    ]
    rows = [*ROWS, ({"name": "A-Z K-13 Agent", "symbol": "K-130"}, "a@a.pl")]
    assert ranked("k-13", rows) == [2, 5]
    assert ranked("HURT@K.PL", ROWS)[0] == 1
