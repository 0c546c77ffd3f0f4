"""Contract suite of the Subiekt GT source over SQLite, PostgreSQL and MariaDB GT-shaped DBs."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal

import pytest
import sqlalchemy as sa
from structlog.testing import capture_logs

from connectors._sql import make_engine
from connectors.subiekt_gt.fake import (
    KIND_BOTH,
    KIND_SUPPLIER,
    GtContact,
    GtContractor,
    GtWriter,
    create_gt_schema,
)
from connectors.subiekt_gt.source import SubiektGtSource
from syncd.errors import SourceUnavailable
from syncd.model import Contact, SourceContractor


def populate(engine: sa.Engine) -> None:
    """Seven contractors covering every rule; 1, 2, 5 and 7 are in scope for ``b2b``."""
    with engine.begin() as conn:
        w = GtWriter(conn)
        w.set_price_names(["Detaliczna", "Hurtowa", " Dystrybutor "])
        d12 = w.add_discount("Stały klient", Decimal("12.5"))
        anna = w.add_salesperson("Anna", "Nowak", "anna.nowak@hurtownia.pl")
        piotr = w.add_salesperson("Piotr", "Wiśniewski", None)
        w.add_country("Polska", "PL")
        de = w.add_country("Niemcy", "DE")
        w.add_contractor(
            1, " K001 ", "Przedsiębiorstwo Handlowe „Żuraw” Sp. z o.o.", short_name="Żuraw",
            email="  Biuro@Zuraw.PL ", nip="PL 521-301-72-28", phone=" 22 123 45 67 ",
            street="ul. Świętokrzyska", house="12", flat="3a", postcode="00-916",
            city="Warszawa", price=2, discount_id=d12, owner_id=anna, features=["b2b"],
            contacts=[
                GtContact("Zofia", "Łęcka", email="z.lecka@zuraw.pl", phone="601 000 001",
                          position="Zaopatrzenie"),
                GtContact("Adam", "Ąbel", mobile="602 000 002", primary=True),
                GtContact("Stary", "Kontakt", email="old@zuraw.pl", blocked=True),
                GtContact(None, " ", email="faktury@zuraw.pl"),
            ],
        )  # fmt: skip
        w.add_contractor(
            2, "K002", "", short_name="", person=True, first_name="Łukasz",
            last_name="Żółć", email=None, kind=KIND_BOTH, price=3, owner_id=piotr,
            features=[" B2B "], city="Kraków", postcode="30-001",
        )  # fmt: skip
        w.add_contractor(3, "K003", "Dostawca S.A.", kind=KIND_SUPPLIER, features=["b2b"])
        w.add_contractor(4, "K004", "Bez Cechy Sp. j.", features=["inne"])
        w.add_contractor(
            5, "K005", "Müller GmbH", email="info@mueller.de", street="Hauptstraße",
            house="5", postcode="10115", city="Berlin", country_id=de, price=0,
            blocked=True, features=["b2b", "inne"],
            contacts=[GtContact("Hans", "Müller", phone=" ", mobile="+49 30 1234")],
        )  # fmt: skip
        w.add_contractor(6, "K006", "Usunięty", features=["b2b"])
        w.delete_contractor(6)
        w.add_contractor(
            7, "K007", "Gospodarstwo Rolne", house="15", postcode="05-500", city="Zalesie",
            price=11, features=["B2b"],
        )  # fmt: skip


EXPECTED = {
    "1": SourceContractor(
        key="1", symbol="K001", name="Przedsiębiorstwo Handlowe „Żuraw” Sp. z o.o.",
        tax_id="PL 521-301-72-28", email_raw="  Biuro@Zuraw.PL ", phone="22 123 45 67",
        address="ul. Świętokrzyska 12/3a, 00-916 Warszawa", price_level="Hurtowa",
        discount=Decimal("12.5"), owner_name="Anna Nowak",
        owner_email="anna.nowak@hurtownia.pl", erp_blocked=False,
        contacts=(
            Contact("Adam Ąbel", phone="602 000 002", is_primary=True),
            Contact("faktury@zuraw.pl", email="faktury@zuraw.pl"),
            Contact("Zofia Łęcka", email="z.lecka@zuraw.pl", phone="601 000 001",
                    position="Zaopatrzenie"),
        ),
    ),
    "2": SourceContractor(
        key="2", symbol="K002", name="Łukasz Żółć", address="30-001 Kraków",
        price_level="Dystrybutor", owner_name="Piotr Wiśniewski",
    ),
    "5": SourceContractor(
        key="5", symbol="K005", name="Müller GmbH", email_raw="info@mueller.de",
        address="Hauptstraße 5, 10115 Berlin, Niemcy", erp_blocked=True,
        contacts=(Contact("Hans Müller", phone="+49 30 1234"),),
    ),
    "7": SourceContractor(
        key="7", symbol="K007", name="Gospodarstwo Rolne", address="Zalesie 15, 05-500 Zalesie",
    ),
}  # fmt: skip


@pytest.fixture
def engine(db_url: str) -> Iterator[sa.Engine]:
    """An engine on a fresh GT-shaped database; fails the test if a connection leaked."""
    engine = make_engine(db_url)
    try:
        yield engine
        assert engine.pool.checkedout() == 0
    finally:
        engine.dispose()


@pytest.fixture
def gt(engine: sa.Engine) -> Iterator[SubiektGtSource]:
    """A source reading the populated GT database with feature ``b2b``."""
    create_gt_schema(engine)
    populate(engine)
    source = SubiektGtSource("unused://", feature="b2b", engine=engine)
    yield source
    source.close()


def test_reads_exactly_the_in_scope_contractors_with_every_field(gt: SubiektGtSource) -> None:
    """Feature (any case/whitespace) + customer kinds 0/2 select; every field maps as specified."""
    got = list(gt.contractors())
    assert [c.key for c in got] == ["1", "2", "5", "7"]
    for contractor in got:
        assert contractor == EXPECTED[contractor.key]


def test_discount_is_a_decimal_and_strings_keep_diacritics(gt: SubiektGtSource) -> None:
    """Discounts come back as Decimal on every backend and Polish letters survive the trip."""
    first = next(iter(gt.contractors()))
    assert isinstance(first.discount, Decimal)
    assert first.discount == Decimal("12.5")
    assert "Żuraw" in first.name
    assert first.contacts[0].name == "Adam Ąbel"


def test_keys_restrict_the_read_and_ignore_unknown_ids(gt: SubiektGtSource) -> None:
    """``keys=`` returns only those in-scope ids; out-of-scope, missing and junk keys vanish."""
    got = list(gt.contractors(keys={"5", "1", "3", "4", "999", "abc"}))
    assert got == [EXPECTED["1"], EXPECTED["5"]]
    assert list(gt.contractors(keys=[])) == []


def test_check_counts_scope_and_reports_matching_feature_entries(gt: SubiektGtSource) -> None:
    """check() finds the feature, counts 4 in scope and notes the messy duplicate entries."""
    info = gt.check()
    assert info.problems == ()
    assert info.in_scope == 4
    assert any("found as ' B2B ', 'B2b', 'b2b'" in fact for fact in info.facts), info.facts


def test_check_reports_a_missing_feature(engine: sa.Engine) -> None:
    """A feature absent from sl_CechaKh is reported with what to do, and nothing is in scope."""
    create_gt_schema(engine)
    populate(engine)
    source = SubiektGtSource("unused://", feature="sklep", engine=engine)
    info = source.check()
    assert info.in_scope == 0
    assert info.problems[0].startswith("source.feature: the feature 'sklep' is not in sl_CechaKh")
    assert "create it in Subiekt GT" in info.problems[0]
    assert list(source.contractors()) == []


def test_older_gt_without_optional_contact_columns(engine: sa.Engine) -> None:
    """Without pk_EMail/pk_TelKomorka/pk_Zablokowany contacts are read without them, and said so."""
    create_gt_schema(engine, optional_contact_columns=False)
    populate(engine)
    source = SubiektGtSource("unused://", feature="b2b", engine=engine)
    with capture_logs() as logs:
        got = {c.key: c for c in source.contractors()}
    assert [e["missing"] for e in logs if e["event"] == "subiekt_gt.optional_columns_missing"] == [
        ["pk_EMail", "pk_TelKomorka", "pk_Zablokowany"]
    ]
    assert got["1"].contacts == (
        Contact("Adam Ąbel", is_primary=True),
        Contact("Stary Kontakt"),
        Contact("Zofia Łęcka", phone="601 000 001", position="Zaopatrzenie"),
    )
    assert got["5"].contacts == (Contact("Hans Müller"),)
    assert any("kh_Pracownik lacks" in fact for fact in source.check().facts)


def test_changes_in_child_rows_are_seen(gt: SubiektGtSource, engine: sa.Engine) -> None:
    """Edits to the discount definition, salesperson, feature and contractor show on next read."""
    with engine.begin() as conn:
        w = GtWriter(conn)
        w.set_discount_percent(1, "7")
        w.set_feature(1, "b2b", False)
        w.set_feature(4, "b2b", True)
        w.set_blocked(5, False)
        w.set_email(7, "rolnik@zalesie.pl")
    got = {c.key: c for c in gt.contractors()}
    assert sorted(got) == ["2", "4", "5", "7"]
    assert got["4"].name == "Bez Cechy Sp. j."
    assert not got["5"].erp_blocked
    assert got["7"].email_raw == "rolnik@zalesie.pl"
    with engine.begin() as conn:
        GtWriter(conn).set_feature(1, "b2b", True)
    assert next(iter(gt.contractors(keys=["1"]))).discount == Decimal(7)


def test_closing_the_stream_early_releases_both_connections(gt: SubiektGtSource) -> None:
    """A consumer that stops after one record leaves no connection checked out."""
    stream = gt.contractors()
    assert next(stream).key == "1"
    stream.close()  # the engine fixture asserts checkedout() == 0


def test_not_a_gt_database_is_unavailable_with_advice(engine: sa.Engine) -> None:
    """Pointing the source at a database without GT tables says what to fix."""
    source = SubiektGtSource("unused://", feature="b2b", engine=engine)
    with pytest.raises(SourceUnavailable, match="must point at a Subiekt GT"):
        source.check()


def _statements(engine: sa.Engine) -> list[str]:
    """Record every SQL statement ``engine`` sends from now on."""
    sent: list[str] = []

    @sa.event.listens_for(engine, "before_cursor_execute")
    def record(conn: object, cursor: object, statement: str, *rest: object) -> None:
        sent.append(statement)

    return sent


def _bulk(engine: sa.Engine, count: int, *, start: int = 1) -> None:
    """``count`` in-scope contractors with two contacts each, through the bulk writer."""
    with engine.begin() as conn:
        w = GtWriter(conn)
        w.set_price_names(["Detaliczna", "Hurtowa"])
        w.add_many(
            GtContractor(
                i, f"K{i:06d}", f"Firma {i} Sp. z o.o.", email=f"k{i}@example.pl", price=2,
                features=["b2b"], contacts=[GtContact("Jan", f"Nowak{i}"), GtContact("Ewa", "Lis")],
            )
            for i in range(start, start + count)
        )  # fmt: skip


@pytest.mark.parametrize("count", [10, 300])
def test_the_number_of_queries_does_not_grow_with_contractors(sqlite_url: str, count: int) -> None:
    """10 or 300 contractors cost the same 3 statements (+ one-off column inspection)."""
    engine = make_engine(sqlite_url)
    create_gt_schema(engine)
    _bulk(engine, count)
    source = SubiektGtSource("unused://", feature="b2b", engine=engine)
    source.check()  # the one-off inspection and the count, not measured
    sent = _statements(engine)
    got = list(source.contractors())
    assert len(got) == count
    assert all(len(c.contacts) == 2 for c in got)
    assert len(sent) == 3
    assert not any("uz_Haslo" in s for s in sent)  # the ERP users' passwords are never read
    assert engine.pool.checkedout() == 0
    engine.dispose()


def test_keys_are_read_in_chunks_below_the_sql_server_parameter_limit(sqlite_url: str) -> None:
    """2,500 keys are read in three chunks of at most 1,000 ids, in id order, none lost."""
    engine = make_engine(sqlite_url)
    create_gt_schema(engine)
    _bulk(engine, 2600)
    source = SubiektGtSource("unused://", feature="b2b", engine=engine)
    source.check()
    sent = _statements(engine)
    keys = [str(i) for i in range(2500, 0, -1)]
    got = [c.key for c in source.contractors(keys=keys)]
    assert got == [str(i) for i in range(1, 2501)]
    assert len(sent) == 1 + 2 * 3
    assert max(s.count("?") for s in sent) <= 1000 + 10
    engine.dispose()


def test_an_unreachable_erp_is_unavailable_and_names_the_server_not_the_password() -> None:
    """A closed port raises SourceUnavailable naming host:port and database, never the password."""
    for url in (
        "postgresql+psycopg://syncd@127.0.0.1:9/gt_firma",
        "mysql+pymysql://syncd@127.0.0.1:9/gt_firma",
    ):
        source = SubiektGtSource(url, feature="b2b", password="Tajne-Hasło-123")  # noqa: S106
        with pytest.raises(SourceUnavailable) as caught:
            source.contractors().__next__()
        message = str(caught.value)
        assert "127.0.0.1:9" in message
        assert "gt_firma" in message
        assert "source.url" in message
        assert "Tajne-Hasło-123" not in message
        assert "Tajne" not in repr(caught.value.args)
        with pytest.raises(SourceUnavailable):
            source.check()
        source.close()


@pytest.mark.postgres
def test_a_connection_lost_mid_stream_is_unavailable(pg_url: str) -> None:
    """When the server drops the connection after some rows, the stream raises SourceUnavailable."""
    engine = make_engine(pg_url)
    create_gt_schema(engine)
    _bulk(engine, 2500)  # more than one fetch batch, so reading on needs the server
    source = SubiektGtSource("unused://", feature="b2b", engine=engine)
    stream = source.contractors()
    assert next(stream).key == "1"
    database = sa.make_url(pg_url).database
    admin = make_engine(pg_url)
    with admin.connect() as conn:
        conn.execute(
            sa.text(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = :db AND pid <> pg_backend_pid()"
            ),
            {"db": database},
        )
    admin.dispose()
    with pytest.raises(SourceUnavailable, match="cannot reach the Subiekt GT database"):
        list(stream)
    assert engine.pool.checkedout() == 0
    engine.dispose()


def test_contact_roles_come_from_the_configured_columns_and_billing_from_adr_email(
    gt: SubiektGtSource, engine: sa.Engine
) -> None:
    """GT's default: the main contact person (pk_Podstaw) receives mail; `represents` reads
    a bit column someone added; the billing e-mail is the main address's adr_Email row."""
    from connectors.subiekt_gt.config import SubiektGtConfig
    from connectors.subiekt_gt.fake import ROLE_COLUMNS

    with engine.begin() as conn:
        w = GtWriter(conn)
        anna = w.add_contact(5, GtContact("Anna", "Prokurent", email="a@mueller.de"))
        w.update_contact(anna, **{ROLE_COLUMNS["represents"]: True})
        w.set_billing_email(5, "rechnung@mueller.de")
    config = SubiektGtConfig.model_validate(
        {"url": "unused://", "feature": "b2b", "contact_represents": ROLE_COLUMNS["represents"]}
    )
    assert config.contact_receives_mail == "pk_Podstaw"
    source = SubiektGtSource(
        "unused://",
        feature="b2b",
        engine=engine,
        roles={"receives_mail": "PK_PODSTAW", "represents": ROLE_COLUMNS["represents"]},
    )
    try:
        got = {c.key: c for c in source.contractors()}
        assert source.check().problems == ()
    finally:
        source.close()
    roles = [(p.name, p.is_primary, p.receives_mail, p.represents) for p in got["5"].contacts]
    assert roles == [
        ("Anna Prokurent", False, False, True),
        ("Hans Müller", False, False, False),
    ]
    assert [(p.name, p.receives_mail) for p in got["1"].contacts if p.is_primary] == [
        ("Adam Ąbel", True)
    ]
    assert got["5"].billing_email == "rechnung@mueller.de"
    assert got["1"].billing_email is None


def test_a_role_column_gt_lacks_is_a_problem_naming_its_key(
    gt: SubiektGtSource, engine: sa.Engine
) -> None:
    """A misspelt role column is reported by doctor under its YAML key; nobody has the role
    meanwhile and everything else is still read."""
    source = SubiektGtSource(
        "unused://", feature="b2b", engine=engine, roles={"represents": "pk_Reprezentuje"}
    )
    try:
        problems = source.check().problems
        got = {c.key: c for c in source.contractors()}
    finally:
        source.close()
    assert problems == (
        "source.contact_represents: kh_Pracownik has no column 'pk_Reprezentuje': name a bit "
        "column of kh_Pracownik that marks the role, or null when nobody has it",
    )
    assert sorted(got) == ["1", "2", "5", "7"]
    assert not any(p.represents for c in got.values() for p in c.contacts)
