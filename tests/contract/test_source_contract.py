"""The source contract: every source kind, on every backend, reads the ERP the same way.

Parametrised over ``tests.contract.sources.FACTORIES`` (GT, nexo and plain SQL on SQLite,
PostgreSQL and MariaDB; GT also through ODBC), with the same contractors written into each
kind's fake ERP and the same records expected back.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace

import pytest
import sqlalchemy as sa

from connectors._rows import text
from connectors.base import Source
from connectors.fake import FakeContractor
from syncd.errors import SourceUnavailable
from tests.contract.sources import CONTRACTORS, FACTORIES, IN_SCOPE, Erp, expected, trimmed

_MARKS = {
    "postgres": [pytest.mark.postgres],
    "mariadb": [pytest.mark.mariadb],
}
PARAMS = [
    pytest.param(
        (kind, backend),
        id=f"{kind}-{backend}",
        marks=_MARKS.get(backend, []) + ([pytest.mark.odbc] if "odbc" in kind else []),
    )
    for kind, (backends, _) in FACTORIES.items()
    for backend in backends
]
_URL_FIXTURE = {"sqlite": "sqlite_url", "postgres": "pg_url", "mariadb": "mariadb_url"}


@pytest.fixture(params=PARAMS)
def erp(request: pytest.FixtureRequest) -> Iterator[Erp]:
    """A fake ERP of one kind on one backend, holding ``CONTRACTORS``."""
    kind, backend = request.param
    url = str(request.getfixturevalue(_URL_FIXTURE[backend]))
    built = FACTORIES[kind][1](request, url)
    built.fake.add(CONTRACTORS)
    yield built
    built.fake.close()


@pytest.fixture
def source(erp: Erp) -> Iterator[Source]:
    """The kind's source on ``erp``; afterwards no connection may be left checked out."""
    built = erp.source()
    yield built
    engine: sa.Engine = built._engine  # type: ignore[attr-defined]
    assert engine.pool.checkedout() == 0
    built.close()


def _read(source: Source, keys: list[str] | None = None) -> dict[str, object]:
    return {c.key: trimmed(c) for c in source.contractors(keys=keys)}


def test_scope_is_the_trimmed_case_insensitive_feature_and_customers_only(source: Source) -> None:
    """' B2B ', 'b2b' and 'B2b' are in scope; another feature, no feature, a supplier are not."""
    assert list(_read(source)) == list(IN_SCOPE)


def test_every_field_is_read_the_same_way_by_every_kind(source: Source) -> None:
    """Name, NIP, phone, address, price level, discount, salesperson, block flag, contacts
    and customer group."""
    got = _read(source)
    for contractor in CONTRACTORS:
        if str(contractor.key) in IN_SCOPE:
            assert got[str(contractor.key)] == expected(contractor), contractor.symbol


def test_keys_restrict_the_read(source: Source) -> None:
    """keys= reads only those contractors, ignoring unknown and out-of-scope ids."""
    assert list(_read(source, ["8", "1", "4", "999"])) == ["1", "8"]
    assert list(source.contractors(keys=[])) == []


def test_edits_and_deletions_show_on_the_next_read(erp: Erp, source: Source) -> None:
    """A changed field, a removed feature and a deleted contractor show on the next read."""
    first = CONTRACTORS[0]
    erp.fake.replace(replace(first, price_level="Detaliczna", discount=0, contacts=()))
    erp.fake.set_features(2, ["vip"])
    erp.fake.delete(8)
    got = _read(source)
    assert list(got) == ["1", "3", "6"]
    assert got["1"] == expected(replace(first, price_level="Detaliczna", discount=0, contacts=()))


def test_the_customer_group_is_read_by_name_and_its_change_shows(erp: Erp, source: Source) -> None:
    """The contractor group's name is ``customer_group``; moving a contractor to another
    group, or out of every group, shows on the next read."""
    got = _read(source)
    assert (got["1"].customer_group, got["2"].customer_group) == ("Hurtownie", "Budowlanka")
    assert got["3"].customer_group is None
    erp.fake.replace(replace(CONTRACTORS[0], group="Detal"))
    erp.fake.replace(replace(CONTRACTORS[1], group=None))
    again = _read(source)
    assert (again["1"].customer_group, again["2"].customer_group) == ("Detal", None)
    assert again["8"].customer_group == "Hurtownie"


def test_describe_explains_scope_for_in_and_out_of_scope_contractors(source: Source) -> None:
    """describe() finds a contractor by id or symbol, in scope or not, and says why."""
    inside = source.describe("1")
    assert inside is not None
    assert (inside.key, inside.symbol, inside.in_scope) == ("1", "K001", True)
    by_symbol = source.describe("K002")
    assert by_symbol is not None
    assert by_symbol.key == "2"
    outside = source.describe("4")
    if outside is not None:  # a sql source whose query scopes by WHERE may not see it at all
        assert not outside.in_scope
        assert "NOT in scope" in outside.scope or "not" in outside.scope.lower()
    assert source.describe("999999") is None


def test_the_directory_lists_contractors_in_and_out_of_scope(source: Source) -> None:
    """directory() streams every contractor with what a person searches by: the in-scope
    ones and those without the feature (a supplier is listed where the kind calls it a
    contractor: GT and sql list K005, nexo's Kontrahent=0 row is not one)."""
    entries = {e.key: e for e in source.directory()}
    assert {"1", "2", "3", "4", "6", "7", "8"} <= set(entries) <= {str(c.key) for c in CONTRACTORS}
    for contractor in CONTRACTORS:
        entry = entries.get(str(contractor.key))
        if entry is None:
            continue
        assert (entry.symbol, entry.name) == (contractor.symbol, contractor.name)
        assert entry.email == text(contractor.email)
        assert entry.tax_id == text(contractor.tax_id)
        assert entry.in_scope == (entry.key in IN_SCOPE), entry.key


def test_check_counts_the_scope_without_problems(source: Source) -> None:
    """check() on a well-configured ERP reports no problem and counts the scope."""
    result = source.check()
    assert result.problems == ()
    assert result.in_scope == len(IN_SCOPE)


def test_a_wrong_feature_is_a_problem_or_an_empty_scope_never_an_error(erp: Erp) -> None:
    """A feature nobody carries is reported by check(), and reads nothing (never raises)."""
    source = erp.source(feature="no-such-feature")
    try:
        assert source.check().in_scope == 0
        assert list(source.contractors()) == []
    finally:
        source.close()


def _generated(count: int) -> list[FakeContractor]:
    return [
        replace(
            CONTRACTORS[0], key=1000 + n, symbol=f"G{n:06d}", email=f"g{n}@example.com",
            features=("b2b",), contacts=CONTRACTORS[0].contacts[:1],
        )
        for n in range(count)
    ]  # fmt: skip


@pytest.mark.parametrize("count", [100, 1000])
def test_the_number_of_statements_does_not_grow_with_contractors(erp: Erp, count: int) -> None:
    """A full read costs the same number of statements at 100 and at 1,000 contractors."""
    erp.fake.add(_generated(count))
    statements: list[str] = []

    def count_statement(*args: object) -> None:
        statements.append(str(args[2]))

    source = erp.source()
    sa.event.listen(sa.engine.Engine, "before_cursor_execute", count_statement)
    try:
        read = sum(1 for _ in source.contractors())
    finally:
        sa.event.remove(sa.engine.Engine, "before_cursor_execute", count_statement)
        source.close()
    assert read == count + len(IN_SCOPE)
    reads = [s for s in statements if s.lstrip().upper().startswith(("SELECT", "WITH"))]
    assert len(reads) <= 6, reads
    where = (erp.kind, str(erp.section["url"]).split(":", 1)[0])
    _STATEMENTS.setdefault(where, set()).add(len(reads))
    assert len(_STATEMENTS[where]) == 1, "the statement count depends on the number of rows"


# Statements per full read, by (kind, driver): the 100 and 1,000 runs must find one value.
_STATEMENTS: dict[tuple[str, str], set[int]] = {}


@pytest.mark.postgres
@pytest.mark.parametrize("kind", ["subiekt_gt", "subiekt_nexo", "sql"])
def test_a_connection_lost_mid_read_is_unavailable_after_rows(
    kind: str, pg_url: str, request: pytest.FixtureRequest
) -> None:
    """When the server drops the connection after some rows, the read raises SourceUnavailable
    (the retriable error, so the cycle discards the partial read) and leaks no connection."""
    built = FACTORIES[kind][1](request, pg_url)
    built.fake.add(_generated(3000))  # more than one fetch batch: reading on needs the server
    source = built.source()
    stream = source.contractors()
    assert next(stream).key
    admin = sa.create_engine(pg_url)
    with admin.connect() as conn:
        conn.execute(
            sa.text(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = :db AND pid <> pg_backend_pid()"
            ),
            {"db": sa.make_url(pg_url).database},
        )
    admin.dispose()
    with pytest.raises(SourceUnavailable):
        list(stream)
    engine: sa.Engine = source._engine  # type: ignore[attr-defined]
    assert engine.pool.checkedout() == 0
    source.close()
    built.fake.close()
