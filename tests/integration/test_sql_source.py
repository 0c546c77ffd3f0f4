"""Contract suite of the plain-SQL source (source.kind: sql) over SQLite, PostgreSQL and MariaDB."""

from __future__ import annotations

import dataclasses
from collections.abc import Generator, Iterator
from decimal import Decimal
from typing import Any, cast

import pytest
import sqlalchemy as sa

from connectors._sql import make_engine
from connectors.fake import FakeContact, FakeContractor, FakeSalesperson
from connectors.sql_source import source as sql_source
from connectors.sql_source.config import SqlSourceConfig
from connectors.sql_source.fake import QUERY_BY_FEATURE, PlainSqlFake
from connectors.sql_source.source import SqlSource, validate_online
from syncd.errors import SourceUnavailable
from syncd.model import Contact, SourceContractor

ANNA = FakeSalesperson("Anna", "Nowak", "anna.nowak@hurtownia.pl")
PIOTR = FakeSalesperson("Piotr", "Wiśniewski")
CONTRACTORS = [
    FakeContractor(
        1, " K001 ", "Przedsiębiorstwo Handlowe „Żuraw” Sp. z o.o.", email="  Biuro@Zuraw.PL ",
        tax_id="PL 521-301-72-28", phone=" 22 123 45 67 ", street="ul. Świętokrzyska",
        house="12", flat="3a", postcode="00-916", city="Warszawa", price_level="Hurtowa",
        discount=Decimal("12.5"), salesperson=ANNA, features=("b2b",),
        contacts=(
            FakeContact("Zofia", "Łęcka", email="z.lecka@zuraw.pl", phone="601 000 001",
                        position="Zaopatrzenie"),
            FakeContact("Adam", "Ąbel", phone="602 000 002", primary=True),
            FakeContact(None, " ", email="faktury@zuraw.pl"),
        ),
    ),
    FakeContractor(2, "K002", "Łukasz Żółć", price_level=" Dystrybutor ", salesperson=PIOTR,
                   features=(" B2B ",), city="Kraków", postcode="30-001"),
    FakeContractor(3, "K003", "Dostawca S.A.", customer=False, features=("b2b",)),
    FakeContractor(4, "K004", "Bez Cechy Sp. j.", features=("inne",)),
    FakeContractor(
        5, "K005", "Müller GmbH", email="info@mueller.de", street="Hauptstraße", house="5",
        postcode="10115", city="Berlin", country="Niemcy", blocked=True, features=("b2b", "inne"),
        contacts=(FakeContact("Hans", "Müller", phone="+49 30 1234"),),
    ),
    FakeContractor(7, "K007", "Gospodarstwo Rolne", house="15", postcode="05-500", city="Zalesie",
                   country="Polska", features=("B2b",)),
    # Key 10 sorts between 1 and 2 as text: the merge join must still find its contact.
    FakeContractor(10, "K010", "Dziesiątka", features=("b2b",),
                   contacts=(FakeContact("Jan", "Dziesiąty"),)),
]  # fmt: skip

EXPECTED = {
    "1": SourceContractor(
        key="1", symbol="K001", name="Przedsiębiorstwo Handlowe „Żuraw” Sp. z o.o.",
        tax_id="PL 521-301-72-28", email_raw="  Biuro@Zuraw.PL ", phone="22 123 45 67",
        address="ul. Świętokrzyska 12/3a, 00-916 Warszawa", price_level="Hurtowa",
        discount=Decimal("12.5"), owner_name="Anna Nowak",
        owner_email="anna.nowak@hurtownia.pl",
        contacts=(
            Contact("Adam Ąbel", phone="602 000 002", is_primary=True),
            Contact("faktury@zuraw.pl", email="faktury@zuraw.pl"),
            Contact("Zofia Łęcka", email="z.lecka@zuraw.pl", phone="601 000 001",
                    position="Zaopatrzenie"),
        ),
    ),
    "10": SourceContractor(key="10", symbol="K010", name="Dziesiątka",
                           contacts=(Contact("Jan Dziesiąty"),)),
    "2": SourceContractor(key="2", symbol="K002", name="Łukasz Żółć", address="30-001 Kraków",
                          price_level="Dystrybutor", owner_name="Piotr Wiśniewski"),
    "5": SourceContractor(
        key="5", symbol="K005", name="Müller GmbH", email_raw="info@mueller.de",
        address="Hauptstraße 5, 10115 Berlin, Niemcy", erp_blocked=True,
        contacts=(Contact("Hans Müller", phone="+49 30 1234"),),
    ),
    "7": SourceContractor(key="7", symbol="K007", name="Gospodarstwo Rolne",
                          address="Zalesie 15, 05-500 Zalesie"),
}  # fmt: skip


@pytest.fixture
def engine(db_url: str) -> Iterator[sa.Engine]:
    """An engine for the source under test; fails the test if a connection leaked."""
    engine = make_engine(db_url)
    try:
        yield engine
        assert engine.pool.checkedout() == 0
    finally:
        engine.dispose()


@pytest.fixture
def fake(db_url: str) -> Iterator[PlainSqlFake]:
    """The plain in-house ERP schema holding CONTRACTORS."""
    fake = PlainSqlFake(db_url)
    fake.create()
    fake.add(CONTRACTORS)
    yield fake
    fake.close()


def source_for(fake: PlainSqlFake, engine: sa.Engine, **changes: Any) -> SqlSource:
    """A source over ``fake`` with its default configuration, ``changes`` applied."""
    data = {**fake.source_config("b2b"), **changes}
    return SqlSource(SqlSourceConfig.model_validate(data), engine=engine)


def test_every_alias_is_mapped_and_scope_follows_feature_and_is_customer(
    fake: PlainSqlFake, engine: sa.Engine
) -> None:
    """Feature (trimmed, any case) and is_customer select; every alias maps as GT's fields do."""
    got = list(source_for(fake, engine).contractors())
    assert [c.key for c in got] == ["1", "10", "2", "5", "7"]
    for contractor in got:
        assert contractor == EXPECTED[contractor.key]
    assert isinstance(got[0].discount, Decimal)


def test_the_same_contractors_give_the_same_records_as_subiekt_gt(
    fake: PlainSqlFake, engine: sa.Engine, db_url: str
) -> None:
    """One FakeContractor list, written as GT and as a plain ERP, reads as equal records."""
    from connectors.subiekt_gt.fake import GtFake
    from connectors.subiekt_gt.source import SubiektGtSource

    gt_fake = GtFake(db_url)
    gt_fake.create()
    gt_fake.add(CONTRACTORS)
    gt = SubiektGtSource("unused://", feature="b2b", engine=engine)
    try:
        from_gt = {c.key: c for c in gt.contractors()}
    finally:
        gt.close()
        gt_fake.close()
    assert {c.key: c for c in source_for(fake, engine).contractors()} == from_gt


def test_scope_in_the_where_clause_with_bound_params_reads_the_same(
    fake: PlainSqlFake, engine: sa.Engine
) -> None:
    """The WHERE-clause idiom (:feature, :customer bound) selects the same contractors."""
    source = SqlSource(
        SqlSourceConfig.model_validate(fake.source_config("B2B ", scope_in_where=True)),
        engine=engine,
    )
    assert {c.key: c for c in source.contractors()} == EXPECTED
    assert source.check().in_scope == 5


def test_a_param_value_with_a_quote_is_bound_not_pasted(
    fake: PlainSqlFake, engine: sa.Engine
) -> None:
    """A feature named ``O'Brien's; --`` matches as a value and breaks no SQL."""
    odd = "O'Brien's; --"
    fake.set_features(4, [odd])
    source = SqlSource(
        SqlSourceConfig.model_validate(fake.source_config(odd, scope_in_where=True)), engine=engine
    )
    assert [c.key for c in source.contractors()] == ["4"]


def test_edits_deletions_and_feature_changes_show_on_the_next_read(
    fake: PlainSqlFake, engine: sa.Engine
) -> None:
    """A deleted contractor disappears, a replaced one changes, features move scope."""
    source = source_for(fake, engine)
    fake.delete(10)
    fake.replace(FakeContractor(7, "K007", "Rolnik", email="rolnik@zalesie.pl", features=("b2b",)))
    fake.set_features(4, ["B2B"])
    fake.set_features(2, [])
    got = {c.key: c for c in source.contractors()}
    assert sorted(got) == ["1", "4", "5", "7"]
    assert got["7"] == SourceContractor(
        key="7", symbol="K007", name="Rolnik", email_raw="rolnik@zalesie.pl"
    )


def test_keys_restrict_the_read_in_chunks_and_ignore_unknown_ones(
    fake: PlainSqlFake, engine: sa.Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``keys=`` returns only those in-scope keys, in key order, across several chunks."""
    monkeypatch.setattr(sql_source, "KEY_CHUNK", 2)
    source = source_for(fake, engine)
    got = list(source.contractors(keys={"5", "1", "3", "4", "999", "abc", "10", "7 "}))
    assert got == [EXPECTED["1"], EXPECTED["10"], EXPECTED["5"], EXPECTED["7"]]
    assert list(source.contractors(keys=[])) == []


def test_text_keys_merge_with_their_contacts_whatever_the_collation(
    fake: PlainSqlFake, engine: sa.Engine
) -> None:
    """Text keys that collations order differently (case, '-', digits) keep their contacts."""
    codes = ["a-1", "A1", "b", "Z", "ź1", "10", "9"]
    fake.add(
        FakeContractor(100 + i, code, f"Firma {code}", features=("b2b",),
                       contacts=(FakeContact("Osoba", code),))
        for i, code in enumerate(codes)
    )  # fmt: skip
    query = QUERY_BY_FEATURE.replace('c.id            AS "key"', 'c.code          AS "key"')
    contacts = (
        "SELECT c.code AS contractor_key, p.first_name AS first_name, p.last_name AS last_name\n"
        "FROM contacts p JOIN customers c ON c.id = p.customer_id"
    )
    source = source_for(fake, engine, query=query, contacts_query=contacts)
    got = {c.key: c for c in source.contractors() if c.key in codes}
    assert {key: c.contacts for key, c in got.items()} == {
        code: (Contact(f"Osoba {code}"),) for code in codes
    }


@pytest.mark.parametrize("count", [100, 1000])
def test_the_number_of_statements_does_not_grow_with_contractors(
    db_url: str, engine: sa.Engine, count: int
) -> None:
    """100 or 1,000 contractors cost the same four statements: two probes, two streams."""
    fake = PlainSqlFake(db_url)
    fake.create()
    fake.add(
        FakeContractor(i, f"K{i:05d}", f"Firma {i}", email=f"k{i}@example.pl", features=("b2b",),
                       contacts=(FakeContact("Jan", f"Nowak{i}"), FakeContact("Ewa", "Lis")))
        for i in range(1, count + 1)
    )  # fmt: skip
    sent: list[str] = []
    sa.event.listen(engine, "before_cursor_execute", lambda *args: sent.append(args[2]))
    got = list(source_for(fake, engine).contractors())
    fake.close()
    assert len(got) == count
    assert all(len(c.contacts) == 2 for c in got)
    assert len(sent) == 4


def test_check_counts_the_scope_and_names_the_feature_spellings(
    fake: PlainSqlFake, engine: sa.Engine
) -> None:
    """check() finds no problem, counts 5 in scope and lists how the feature is spelt."""
    result = source_for(fake, engine).check()
    assert result.problems == ()
    assert result.in_scope == 5
    assert "feature 'b2b' found as 'B2B', 'B2b', 'b2b'" in result.facts


def test_a_feature_no_contractor_carries_is_a_problem(
    fake: PlainSqlFake, engine: sa.Engine
) -> None:
    """source.feature that no returned row carries is reported with what to do."""
    result = source_for(fake, engine, feature="sklep").check()
    assert result.in_scope == 0
    assert result.problems[0].startswith("source.feature: no contractor that source.query")


def test_a_misspelt_alias_is_a_problem_that_names_it(fake: PlainSqlFake, engine: sa.Engine) -> None:
    """``AS emial`` is reported with a did-you-mean, and a read refuses to guess."""
    query = QUERY_BY_FEATURE.replace("AS email", "AS emial")
    source = source_for(fake, engine, query=query)
    (problem,) = source.check().problems
    assert problem.startswith(
        'source.query: the column "emial" is not a contractor field: did you mean "email"?'
    )
    with pytest.raises(SourceUnavailable, match="emial"):
        list(source.contractors())


def test_a_syntax_error_is_reported_with_the_line_it_is_on(
    fake: PlainSqlFake, engine: sa.Engine
) -> None:
    """Each backend's syntax error points at the admin's line, quoted, with no traceback."""
    query = QUERY_BY_FEATURE.replace("FROM customers c", "FORM customers c")
    line = query.splitlines().index("FORM customers c") + 1
    (problem,) = source_for(fake, engine, query=query).check().problems
    assert problem.startswith(f"source.query: line {line} (FORM customers c): ")
    assert "FORM" in problem.split("):", 1)[1]
    assert "Traceback" not in problem


def test_a_missing_table_and_column_are_named_with_their_lines(
    fake: PlainSqlFake, engine: sa.Engine
) -> None:
    """A table that does not exist and a wrong column in contacts_query: one line each."""
    query = QUERY_BY_FEATURE.replace("JOIN salespeople s", "JOIN sales_people s")
    line = next(n for n, text in enumerate(query.splitlines(), 1) if "sales_people" in text)
    contacts = "SELECT p.customer_id AS contractor_key,\n  p.nazwisko AS last_name\nFROM contacts p"
    problems = source_for(fake, engine, query=query, contacts_query=contacts).check().problems
    assert problems[0].startswith(f"source.query: line {line} (LEFT JOIN sales_people s ON")
    assert "sales_people" in problems[0].split("):", 1)[1]
    assert problems[1].startswith("source.contacts_query: line 2 (p.nazwisko AS last_name): ")


def test_describe_explains_scope_by_key_or_symbol(fake: PlainSqlFake, engine: sa.Engine) -> None:
    """describe() finds by key or symbol and says why a returned contractor is out of scope."""
    source = source_for(fake, engine)
    found = source.describe("K001")
    assert found is not None
    assert (found.key, found.in_scope, found.name) == ("1", True, EXPECTED["1"].name)
    assert found.scope == "in scope: the contractor query returns it and it carries 'b2b'"
    supplier = source.describe("3")
    assert supplier is not None
    assert not supplier.in_scope
    assert "is_customer is" in supplier.scope
    untagged = source.describe("K004")
    assert untagged is not None
    assert "does not carry the feature 'b2b' (its features: 'inne')" in untagged.scope
    assert dict(untagged.details)["features"] == "'inne'"
    assert source.describe("K999") is None


def test_an_abandoned_stream_returns_both_connections(
    fake: PlainSqlFake, engine: sa.Engine
) -> None:
    """Stopping after one contractor closes both streams at once, not at garbage collection."""
    stream = cast(Generator[SourceContractor], source_for(fake, engine).contractors())
    assert next(stream).key == "1"
    assert engine.pool.checkedout() == 2
    stream.close()
    assert engine.pool.checkedout() == 0


def test_validate_online_lists_the_problems_for_check_config(fake: PlainSqlFake) -> None:
    """validate_online() builds its own engine, returns the problems and disposes of it."""
    config = SqlSourceConfig.model_validate(
        {**fake.source_config("b2b"), "query": QUERY_BY_FEATURE.replace("AS symbol", "AS sym")}
    )
    problems = validate_online(config)
    assert problems[0].startswith('source.query: the column "sym" is not a contractor field')
    assert any('no column aliased "symbol"' in p for p in problems)


def test_an_unreachable_database_raises_without_its_password() -> None:
    """A refused connection is SourceUnavailable naming the server, never the password."""
    config = SqlSourceConfig.model_validate(
        {"kind": "sql", "url": "postgresql+psycopg://syncd@127.0.0.1:1/erp",
         "password": "Zaq1@wsx-secret", "query": "SELECT 1 AS k"}
    )  # fmt: skip
    source = SqlSource.from_config(config)
    with pytest.raises(SourceUnavailable) as caught:
        source.check()
    source.close()
    assert "127.0.0.1:1" in str(caught.value)
    assert "Zaq1@wsx-secret" not in str(caught.value)


def test_without_a_contacts_query_one_stream_is_read(fake: PlainSqlFake, engine: sa.Engine) -> None:
    """contacts_query is optional: contractors then have no contacts, at two statements."""
    sent: list[str] = []
    sa.event.listen(engine, "before_cursor_execute", lambda *args: sent.append(args[2]))
    got = {c.key: c for c in source_for(fake, engine, contacts_query=None).contractors()}
    assert got == {key: dataclasses.replace(c, contacts=()) for key, c in EXPECTED.items()}
    assert len(sent) == 2
