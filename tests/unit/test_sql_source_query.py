"""source.kind: sql without a database: offline query checks, aliases, and the row rules."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pydantic
import pytest

from connectors.sql_source import aliases, rows, sqltext
from connectors.sql_source.config import SqlSourceConfig
from syncd.config import ConfigError, parse_config
from syncd.config.base import FieldProblems
from syncd.errors import SourceUnavailable
from syncd.model import Contact

QUERY = 'SELECT id AS "key", code AS symbol, name AS name FROM customers'


def problems(**source: Any) -> list[tuple[tuple[str, ...], str]]:
    """The (path, message) items that SqlSourceConfig raises for ``source``."""
    data = {"kind": "sql", "url": "sqlite:////tmp/erp.db", "query": QUERY, **source}
    with pytest.raises(pydantic.ValidationError) as caught:
        SqlSourceConfig.model_validate(data)
    found: list[tuple[tuple[str, ...], str]] = []
    for error in caught.value.errors():
        cause = (error.get("ctx") or {}).get("error")
        assert isinstance(cause, FieldProblems), error
        found += [(path, text) for path, text, _ in cause.items]
    return found


def test_a_plain_select_with_its_params_is_valid() -> None:
    """A SELECT whose placeholders all have params, with a trailing ';', is accepted as is."""
    query = QUERY + "\nWHERE kind = :kind AND name <> 'O''Brien: :x' ;\n"
    config = SqlSourceConfig.model_validate(
        {"kind": "sql", "url": "sqlite://", "query": query, "params": {"kind": 2, "x": "y"}}
    )
    assert config.params == {"kind": 2, "x": "y"}
    assert config.feature is None
    assert config.contacts_query is None


def test_comments_and_with_may_open_the_query() -> None:
    """Leading comments, blank lines and a WITH clause still make one read-only SELECT."""
    query = "-- contractors\n/* for the\n portal */\n  WITH c AS (SELECT 1 AS k)\nSELECT * FROM c"
    assert sqltext.problems(query) == []


def test_a_query_that_is_not_a_select_is_refused_at_its_path() -> None:
    """An UPDATE is reported at source.query, saying what the query starts with."""
    assert problems(query="UPDATE customers SET x = 1") == [
        (("query",), "must be one SELECT (or WITH ... SELECT) statement; it starts with 'UPDATE'")
    ]


def test_a_second_statement_is_refused_with_its_line() -> None:
    """Anything after a ';' is a second statement; the message names the ';''s line."""
    found = problems(query=QUERY + ";\nDROP TABLE customers")
    assert found == [
        (
            ("query",),
            "must be one statement, but another one follows the ';' on line 1: remove it "
            "(and the ';')",
        )
    ]


def test_semicolons_in_strings_and_comments_are_not_statements() -> None:
    """';' inside quotes, quoted identifiers and comments does not end the statement."""
    query = "SELECT 'a;b' AS \"x;y\", `c;d` -- e; f\n/* g; h */ FROM t;"
    assert sqltext.problems(query) == []
    assert sqltext.without_trailing_semicolon(query).rstrip().endswith("FROM t")


def test_a_write_hidden_in_a_with_clause_is_refused() -> None:
    """A data-modifying CTE is named with its line: syncd only reads the ERP."""
    query = "WITH gone AS (\n  DELETE FROM customers RETURNING id\n)\nSELECT * FROM gone"
    assert problems(query=query) == [
        (
            ("query",),
            "must only read, but uses DELETE on line 2: syncd never writes to the ERP (give "
            "its login SELECT rights only)",
        )
    ]


def test_a_placeholder_without_a_param_names_its_line() -> None:
    """:feature used on line 2 but missing from params is an error at source.query."""
    assert problems(query=QUERY + "\nWHERE f = :feature") == [
        (("query",), "uses :feature on line 2 but source.params has no 'feature': add it to params")
    ]


def test_a_placeholder_inside_a_string_suggests_escaping_it() -> None:
    """A ':x' inside quotes would still be bound by SQLAlchemy: the hint says to write \\:x."""
    (found,) = problems(query=QUERY + "\nWHERE note = 'at :noon'")
    assert found[1].endswith(r"(or, if that colon is text, write \:noon)")


def test_a_param_that_no_query_uses_is_an_error_at_its_own_key() -> None:
    """params.region with no :region in either query is reported at source.params.region."""
    assert problems(params={"region": "PL"}) == [
        (
            ("params", "region"),
            "is not used by source.query or source.contacts_query: use :region in one of "
            "them or remove it",
        )
    ]


def test_casts_times_and_escaped_colons_are_not_placeholders() -> None:
    """PostgreSQL ``::text``, ``'10:30'`` and ``\\:x`` bind nothing, exactly as in SQLAlchemy."""
    query = r"SELECT id::text AS k, '10:30' AS t, '\:x' AS e, a = :real FROM t"
    assert list(sqltext.placeholders(query)) == ["real"]


def test_the_contacts_query_is_checked_too_and_shares_the_params() -> None:
    """contacts_query gets the same checks at its own path; a param used only there is used."""
    contacts = "SELECT customer_id AS contractor_key FROM contacts WHERE active = :on"
    config = SqlSourceConfig.model_validate(
        {"kind": "sql", "url": "sqlite://", "query": QUERY, "contacts_query": contacts,
         "params": {"on": True}}
    )  # fmt: skip
    assert config.params_of(config.query) == {}
    assert config.params_of(contacts) == {"on": True}
    assert problems(contacts_query="DELETE FROM contacts") == [
        (("contacts_query",), "must be one SELECT (or WITH ... SELECT) statement; it starts "
         "with 'DELETE'")
    ]  # fmt: skip


def test_every_problem_is_reported_at_once_through_the_whole_configuration() -> None:
    """check-config lists each problem with its YAML path, all in one run."""
    data = {
        "source": {"kind": "sql", "url": "sqlite:////tmp/erp.db", "query": "SELECT :a; SELECT 2",
                   "params": {"b": 1}},
        "portal": {"url": "sqlite:////tmp/portal.db"},
        "mail": {"sender": "B2B <b2b@example.com>", "smtp": {"host": "localhost"}},
    }  # fmt: skip
    with pytest.raises(ConfigError) as caught:
        parse_config(data, environ={})
    assert [line.split(":", 1)[0] for line in caught.value.problems] == [
        "source.query",
        "source.query",
        "source.params.b",
    ]


def test_a_misspelt_alias_is_named_with_a_did_you_mean() -> None:
    """``emial`` is not silently ignored: the problem names it and suggests ``email``."""
    (problem,) = aliases.contractor_problems(["key", "symbol", "name", "emial"], feature=None)
    assert problem.startswith(
        'source.query: the column "emial" is not a contractor field: did you mean "email"?'
    )


def test_missing_and_conflicting_aliases_each_say_what_to_add() -> None:
    """No symbol, address given twice, and a feature without a features column: three lines."""
    found = aliases.contractor_problems(["KEY", "Name", "address", "city"], feature="b2b")
    assert found[0] == 'source.query: the query has no column aliased "symbol"; add "... AS symbol"'
    assert 'both "address" and its parts (city)' in found[1]
    assert 'needs a column aliased "features"' in found[2]
    assert aliases.contact_problems(["position"]) == [
        'source.contacts_query: the query has no column aliased "contractor_key" (the '
        'contractor\'s key); add "... AS contractor_key"',
        "source.contacts_query: the query has none of name, first_name, last_name, email, "
        'phone: a contact needs a name (or at least an e-mail or phone), e.g. "... AS '
        'first_name, ... AS last_name"',
    ]


def test_contacts_are_named_and_ordered_like_subiekt_gt() -> None:
    """First and last name, else name, e-mail or phone; primary first, then name, then id."""
    found = rows.contacts(
        [
            {"id": 3, "first_name": "Zofia", "last_name": "Łęcka", "email": " z@z.pl "},
            {"id": 2, "first_name": None, "last_name": " ", "email": "f@z.pl"},
            {"id": 1, "name": "Adam Ąbel", "is_primary": 1},
            {"id": 4, "name": None, "phone": None},
            {"id": 0, "first_name": "zofia", "last_name": "łęcka"},
        ]
    )
    assert found == (
        Contact("Adam Ąbel", is_primary=True),
        Contact("f@z.pl", email="f@z.pl"),
        Contact("zofia łęcka"),
        Contact("Zofia Łęcka", email="z@z.pl"),
    )


def test_rows_with_one_key_are_one_contractor_with_united_features() -> None:
    """One row per feature, or 'a; b' in one column: the contractor carries them all."""
    found = list(rows.groups([{"key": 1, "features": "vip; B2B "}, {"key": "1 ", "features": "x"},
                              {"key": 2, "features": None}], "key", "query"))  # fmt: skip
    assert [(key, rows.features(group)) for key, group in found] == [
        ("1", ["vip", "B2B", "x"]),
        ("2", []),
    ]
    assert rows.has_feature(["vip", "B2B"], " b2b")


def test_keys_out_of_text_order_stop_the_read() -> None:
    """A stream not ordered as text would merge wrongly, so it raises SourceUnavailable."""
    with pytest.raises(SourceUnavailable, match="returned the key '10' after '9'"):
        list(rows.groups([{"key": 9}, {"key": 10}], "key", "query"))


def test_the_merge_drops_contacts_of_contractors_it_did_not_read() -> None:
    """Contacts whose key the main stream skipped belong to no one and are dropped."""
    main: list[rows.Group] = [("1", [{}]), ("3", [{}])]
    people: list[rows.Group] = [(k, [{"n": k}]) for k in ("0", "1", "2", "3")]
    assert [(k, p) for k, _, p in rows.merge(iter(main), iter(people))] == [
        ("1", [{"n": "1"}]),
        ("3", [{"n": "3"}]),
    ]


def test_a_discount_with_a_decimal_comma_is_read_and_junk_is_refused() -> None:
    """'12,5' is 12.5 %; 'abc' stops the read naming the contractor, not a silent 0 %."""
    row = {"key": 7, "symbol": "K7", "name": "Siedem", "discount": "12,5"}
    assert rows.contractor("7", row, ()).discount == Decimal("12.5")
    with pytest.raises(SourceUnavailable, match="contractor 7: the discount 'abc'"):
        rows.contractor("7", {**row, "discount": "abc"}, ())
