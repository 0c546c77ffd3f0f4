"""Contract suite of the Subiekt nexo source over SQLite, PostgreSQL and MariaDB nexo-shaped DBs."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from decimal import Decimal

import pytest
import sqlalchemy as sa

from connectors._sql import make_engine
from connectors.fake import FakeContact, FakeContractor, FakeSalesperson
from connectors.subiekt_gt.fake import GtFake
from connectors.subiekt_gt.source import SubiektGtSource
from connectors.subiekt_nexo.config import NexoTables, SubiektNexoConfig
from connectors.subiekt_nexo.fake import FAKE_TABLES, NexoFake
from connectors.subiekt_nexo.source import SubiektNexoSource
from syncd.errors import SourceUnavailable
from syncd.model import Contact, SourceContractor

ANNA = FakeSalesperson("Anna", "Nowak", "anna.nowak@hurtownia.pl")
PIOTR = FakeSalesperson("Piotr", "Wiśniewski", None)
ZURAW = "Przedsiębiorstwo Handlowe „Żuraw” Sp. z o.o."

CONTRACTORS = [
    FakeContractor(
        1, " K001 ", ZURAW, email="  Biuro@Zuraw.PL ", tax_id="PL 521-301-72-28",
        phone=" 22 123 45 67 ", street="ul. Świętokrzyska", house="12", flat="3a",
        postcode="00-916", city="Warszawa", country="Polska", price_level="Hurtowa",
        discount=Decimal("12.5"), salesperson=ANNA, features=("b2b",),
        contacts=(
            FakeContact("Zofia", "Łęcka", email="z.lecka@zuraw.pl", phone="601 000 001",
                        position="Zaopatrzenie"),
            FakeContact("Adam", "Ąbel", phone="602 000 002", primary=True),
            FakeContact(None, " ", email="faktury@zuraw.pl"),
            FakeContact(),
        ),
    ),
    FakeContractor(
        2, "K002", "", features=(" B2B ",), city="Kraków", postcode="30-001",
        price_level=" Dystrybutor ", salesperson=PIOTR,
    ),
    FakeContractor(3, "K003", "Dostawca S.A.", customer=False, features=("b2b",)),
    FakeContractor(4, "K004", "Bez Cechy Sp. j.", features=("inne",)),
    FakeContractor(
        5, "K005", "Müller GmbH", email="info@mueller.de", street="Hauptstraße", house="5",
        postcode="10115", city="Berlin", country="Niemcy", blocked=True,
        features=("b2b", "inne"), contacts=(FakeContact("Hans", "Müller", phone="+49 30 1234"),),
    ),
    FakeContractor(6, "K006", "Nasza Firma Sp. z o.o.", features=("b2b",)),
    FakeContractor(
        7, "K007", "Gospodarstwo Rolne", email="", house="15", postcode="05-500",
        city="Zalesie", features=("B2b",),
    ),
    FakeContractor(8, "K008", "Archiwalny", features=("b2b",)),
]  # fmt: skip

EXPECTED = {
    "1": SourceContractor(
        key="1", symbol="K001", name=ZURAW, tax_id="PL 521-301-72-28",
        email_raw="  Biuro@Zuraw.PL ", phone="22 123 45 67",
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
    "2": SourceContractor(
        key="2", symbol="K002", name="K002", address="30-001 Kraków",
        price_level="Dystrybutor", owner_name="Piotr Wiśniewski",
    ),
    "5": SourceContractor(
        key="5", symbol="K005", name="Müller GmbH", email_raw="info@mueller.de",
        address="Hauptstraße 5, 10115 Berlin, Niemcy", erp_blocked=True,
        contacts=(Contact("Hans Müller", phone="+49 30 1234"),),
    ),
    "7": SourceContractor(
        key="7", symbol="K007", name="Gospodarstwo Rolne", email_raw="",
        address="Zalesie 15, 05-500 Zalesie",
    ),
}  # fmt: skip


@pytest.fixture
def engine(db_url: str) -> Iterator[sa.Engine]:
    """An engine on a fresh database; fails the test if a connection leaked."""
    engine = make_engine(db_url)
    try:
        yield engine
        assert engine.pool.checkedout() == 0
    finally:
        engine.dispose()


@pytest.fixture
def fake(db_url: str) -> Iterator[NexoFake]:
    """A nexo-shaped database with ``CONTRACTORS``; 6 is the own company, 8 is inactive."""
    fake = NexoFake(db_url)
    fake.create()
    fake.add(CONTRACTORS)
    fake.update(6, kind=2, subkind=11)
    fake.update(8, active=False)
    yield fake
    fake.close()


def nexo(engine: sa.Engine, feature: str = "b2b", **tables: str | None) -> SubiektNexoSource:
    """A source on ``engine`` in the login's default schema, ``tables`` overriding names."""
    names = NexoTables.model_validate(tables)
    return SubiektNexoSource("unused://", feature=feature, engine=engine, schema=None, tables=names)


@contextmanager
def statements(engine: sa.Engine) -> Iterator[list[str]]:
    """Record every SQL statement ``engine`` sends inside the block."""
    sent: list[str] = []

    def record(conn: object, cursor: object, statement: str, *rest: object) -> None:
        sent.append(statement)

    sa.event.listen(engine, "before_cursor_execute", record)
    try:
        yield sent
    finally:
        sa.event.remove(engine, "before_cursor_execute", record)


def test_reads_exactly_the_in_scope_contractors_with_every_field(
    fake: NexoFake, engine: sa.Engine
) -> None:
    """Feature (any case/whitespace), contractor, active, not own company; every field maps."""
    got = list(nexo(engine).contractors())
    assert [c.key for c in got] == ["1", "2", "5", "7"]
    for contractor in got:
        assert contractor == EXPECTED[contractor.key]
    assert isinstance(got[0].discount, Decimal)


def test_the_same_contractors_read_from_subiekt_gt_give_equal_records(
    fake: NexoFake, db_url: str, tmp_path: object
) -> None:
    """Nexo yields, field for field, what GT yields for the same FakeContractor records."""
    gt_fake = GtFake(f"sqlite:///{tmp_path}/gt.db")
    gt_fake.create()
    gt_fake.add(c for c in CONTRACTORS if c.key not in (6, 8))
    gt = SubiektGtSource("unused://", feature="b2b", engine=gt_fake.engine)
    source = SubiektNexoSource.from_config(
        SubiektNexoConfig.model_validate(fake.source_config("b2b"))
    )
    try:
        assert list(source.contractors()) == list(gt.contractors())
    finally:
        source.close()
        gt_fake.close()


def test_the_email_is_the_primary_email_contact_then_the_lowest_id(
    fake: NexoFake, engine: sa.Engine
) -> None:
    """Several e-mail rows: a primary one wins, else the first written; other kinds never."""
    fake.add([FakeContractor(9, "K009", "Wiele Adresów", features=("b2b",))])
    fake.add_email(9, "pierwszy@example.pl")
    fake.add_email(9, "drugi@example.pl")
    source = nexo(engine)
    assert next(iter(source.contractors(keys=["9"]))).email_raw == "pierwszy@example.pl"
    fake.add_email(9, "glowny@example.pl", primary=True)
    assert next(iter(source.contractors(keys=["9"]))).email_raw == "glowny@example.pl"


def test_edits_and_deletions_show_on_the_next_read(fake: NexoFake, engine: sa.Engine) -> None:
    """A deleted contractor disappears; replaced rows and features are read afresh."""
    source = nexo(engine)
    fake.delete(5)
    fake.set_features(4, ["B2B"])
    fake.replace(
        FakeContractor(
            1, "K001", "Żuraw S.A.", email="nowy@zuraw.pl", discount=Decimal(7),
            salesperson=PIOTR, features=("b2b",), contacts=(FakeContact("Ewa", "Lis"),),
        )
    )  # fmt: skip
    got = {c.key: c for c in source.contractors()}
    assert sorted(got) == ["1", "2", "4", "7"]
    assert got["1"].name == "Żuraw S.A."
    assert got["1"].discount == Decimal(7)
    assert got["1"].owner_name == "Piotr Wiśniewski"
    assert got["1"].contacts == (Contact("Ewa Lis"),)
    assert got["4"].name == "Bez Cechy Sp. j."


def test_keys_restrict_the_read_and_ignore_unknown_ids(fake: NexoFake, engine: sa.Engine) -> None:
    """``keys=`` returns only those in-scope ids; out-of-scope, missing and junk keys vanish."""
    source = nexo(engine)
    got = list(source.contractors(keys={"5", "1", "3", "6", "8", "999", "abc"}))
    assert got == [EXPECTED["1"], EXPECTED["5"]]
    assert list(source.contractors(keys=[])) == []


def test_the_number_of_statements_does_not_grow_with_contractors(
    db_url: str, engine: sa.Engine
) -> None:
    """100 or 1,000 contractors with two contacts each cost the same three statements
    (contact kinds, main, contacts), with no catalogue look-up on a good configuration."""
    fake = NexoFake(db_url)
    fake.create()
    source = nexo(engine)
    counts = []
    for start, count in ((1, 100), (101, 900)):
        fake.add(
            FakeContractor(
                i, f"K{i:06d}", f"Firma {i}", email=f"k{i}@example.pl", price_level="Hurtowa",
                salesperson=ANNA, features=("b2b",),
                contacts=(FakeContact("Jan", f"Nowak{i}"), FakeContact("Ewa", "Lis")),
            )
            for i in range(start, start + count)
        )  # fmt: skip
        with statements(engine) as sent:
            got = list(source.contractors())
        assert len(got) == start + count - 1
        assert all(len(c.contacts) == 2 for c in got)
        counts.append(len(sent))
    fake.close()
    assert counts == [3, 3]


def test_closing_the_stream_early_releases_both_connections(
    fake: NexoFake, engine: sa.Engine
) -> None:
    """A consumer that stops after one record leaves no connection checked out."""
    stream = nexo(engine).contractors()
    assert next(stream).key == "1"
    stream.close()  # the engine fixture asserts checkedout() == 0


def test_check_counts_the_scope_and_names_the_feature_spellings(
    fake: NexoFake, engine: sa.Engine
) -> None:
    """check() passes, counts 4 in scope and lists every spelling of the feature."""
    result = nexo(engine).check()
    assert result.problems == ()
    assert result.in_scope == 4
    assert "feature 'b2b' found as ' B2B ', 'B2b', 'b2b'" in result.facts


def test_check_reports_a_missing_feature_and_contact_kind(
    fake: NexoFake, engine: sa.Engine
) -> None:
    """A feature or e-mail kind not in its dictionary is a problem naming the key to fix."""
    result = nexo(engine, "sklep", email_kind="Poczta").check()
    assert result.in_scope == 0
    assert len(result.problems) == 2
    assert result.problems[0].startswith("source.tables.email_kind: RodzajeKontaktu has no")
    assert result.problems[1].startswith("source.feature: the feature 'sklep' is not in")
    assert "Klienci – Popraw – Cechy" in result.problems[1]
    with pytest.raises(SourceUnavailable, match=r"source\.tables\.email_kind"):
        list(nexo(engine, email_kind="Poczta").contractors())


def test_a_feature_link_table_elsewhere_fails_check_and_is_discovered(
    db_url: str, engine: sa.Engine
) -> None:
    """Defaults against a nexo whose link table is CechyKontrahentow: check() names the table
    and key, a read refuses, discover() offers the real table, and naming it fixes all."""
    fake = NexoFake(db_url, tables=NexoTables(feature_link="CechyKontrahentow"))
    fake.create()
    fake.add(CONTRACTORS[:2])
    source = nexo(engine)
    result = source.check()
    assert result.problems == (
        "source.tables.feature_link: table CechyPodmiotowPodmiot does not exist; run "
        "`syncd doctor --discover` to list candidate tables, then set source.tables.feature_link",
    )
    with pytest.raises(SourceUnavailable, match=r"source\.tables\.feature_link: table Cechy"):
        next(iter(source.contractors()))
    offered = [c for c in source.discover() if c.setting == "source.tables.feature_link"]
    real = next(c for c in offered if c.table == "CechyKontrahentow")
    assert real.columns == ("Cechy_Id", "Podmioty_Id")
    assert "name matches %Cech%" in real.why
    assert "foreign key Podmioty_Id -> Podmioty.Id" in real.why
    config = SubiektNexoConfig.model_validate(fake.source_config("b2b"))
    assert config.tables.feature_link == "CechyKontrahentow"
    fixed = nexo(engine, feature_link="CechyKontrahentow")
    assert fixed.check().problems == ()
    assert [c.key for c in fixed.contractors()] == ["1", "2"]
    fake.close()


def test_check_reports_a_missing_column_with_its_key_and_the_columns_there(
    fake: NexoFake, engine: sa.Engine
) -> None:
    """A wrong column name is a problem naming key, table.column and the real columns."""
    result = nexo(engine, feature_link_contractor="Kontrahent_Id", blocked="Blokada").check()
    assert result.problems == (
        "source.tables.blocked: column Podmioty.Blokada does not exist (the table has: Id, "
        "Sygnatura_PelnaSygnatura, NazwaSkrocona, NIP, Telefon, Kontrahent, Aktywny, Typ, "
        "Podtyp, Podmiot_PoziomCen_Id, Zablokowany, Grupa_Id); set source.tables.blocked to "
        "one of them "
        "(run `syncd doctor --discover` to list candidate tables and their columns), or to "
        "null if this nexo keeps no such column",
        "source.tables.feature_link_contractor: column CechyPodmiotowPodmiot.Kontrahent_Id "
        "does not exist (the table has: Cechy_Id, Podmioty_Id); set "
        "source.tables.feature_link_contractor to one of them (run `syncd doctor --discover` "
        "to list candidate tables and their columns)",
    )


def test_a_database_that_is_not_nexo_is_a_problem_naming_the_schema(engine: sa.Engine) -> None:
    """An empty database is one problem that points at source.url and source.schema."""
    result = nexo(engine).check()
    assert len(result.problems) == 1
    assert result.problems[0].startswith("source.schema: the login's default schema has no")


def test_contact_roles_and_the_billing_kind_are_read_where_source_tables_names_them(
    fake: NexoFake, engine: sa.Engine
) -> None:
    """The person-link role columns and the billing e-mail's Kontakty kind are read when
    named; a billing kind the dictionary lacks is a check problem but no read failure."""
    names = {
        "contact_person_receives_mail": FAKE_TABLES.contact_person_receives_mail,
        "contact_person_represents": FAKE_TABLES.contact_person_represents,
        "billing_email_kind": " e-mail DO faktur ",
    }
    fake.replace(
        replace(
            CONTRACTORS[0],
            billing_email="faktury@zuraw.pl",
            contacts=(
                FakeContact("Ola", "Poczta", email="ola@zuraw.pl", receives_mail=True),
                FakeContact("Piotr", "Prezes", represents=True, primary=True),
            ),
        )
    )
    got = {c.key: c for c in nexo(engine, **names).contractors()}
    roles = [(p.name, p.is_primary, p.receives_mail, p.represents) for p in got["1"].contacts]
    assert roles == [("Piotr Prezes", True, False, True), ("Ola Poczta", False, True, False)]
    assert got["1"].billing_email == "faktury@zuraw.pl"
    unnamed = {c.key: c for c in nexo(engine).contractors()}
    assert unnamed["1"].billing_email is None
    assert not any(p.receives_mail or p.represents for p in unnamed["1"].contacts)
    typo = nexo(engine, billing_email_kind="Faktury")
    assert [p.split(":")[0] for p in typo.check().problems] == ["source.tables.billing_email_kind"]
    assert {c.key for c in typo.contractors()} == set(got)


def test_null_settings_read_without_discounts_contacts_or_blocking(
    fake: NexoFake, engine: sa.Engine
) -> None:
    """discounts, contact_persons and blocked set to null are simply not read."""
    source = nexo(engine, discounts=None, contact_persons=None, blocked=None)
    assert source.check().problems == ()
    got = {c.key: c for c in source.contractors()}
    assert got["1"].discount == Decimal(0)
    assert all(c.contacts == () for c in got.values())
    assert not got["5"].erp_blocked


def test_describe_explains_in_and_out_of_scope(fake: NexoFake, engine: sa.Engine) -> None:
    """describe() finds by id or symbol and says why each one is or is not in scope."""
    source = nexo(engine)
    zuraw = source.describe("K001")
    assert zuraw is not None
    assert (zuraw.key, zuraw.in_scope, zuraw.email) == ("1", True, "  Biuro@Zuraw.PL ")
    assert zuraw.scope == "in scope: an active contractor carrying the feature 'b2b'"
    other = source.describe("4")
    assert other is not None
    assert not other.in_scope
    assert "does not carry the feature 'b2b' (its features: 'inne')" in other.scope
    assert "Klienci – Popraw – Cechy" in other.scope
    assert dict(other.details)["features"] == "'inne'"
    own, inactive, supplier = source.describe("6"), source.describe("8"), source.describe("3")
    assert own is not None
    assert "your own company" in own.scope
    assert dict(own.details)["Typ/Podtyp"] == "2/11 (own company)"
    assert inactive is not None
    assert "inactive" in inactive.scope
    assert supplier is not None
    assert "not a contractor" in supplier.scope
    assert source.describe("999") is None
    assert source.describe("NOPE") is None


def test_an_unreachable_erp_is_unavailable_and_names_the_server_not_the_password() -> None:
    """A closed port raises SourceUnavailable naming host:port and database, never the password."""
    for url in (
        "postgresql+psycopg://syncd@127.0.0.1:9/nexo_firma",
        "mysql+pymysql://syncd@127.0.0.1:9/nexo_firma",
    ):
        source = SubiektNexoSource(url, feature="b2b", password="Tajne-Hasło-123")  # noqa: S106
        for call in (source.check, source.contractors().__next__):
            with pytest.raises(SourceUnavailable) as caught:
                call()
            message = str(caught.value)
            assert "127.0.0.1:9" in message
            assert "nexo_firma" in message
            assert "Tajne" not in message
            assert "Tajne" not in repr(caught.value.args)
        source.close()


@pytest.mark.postgres
def test_the_default_schema_is_read_when_the_tables_live_there(pg_url: str) -> None:
    """With tables in ModelDanychContainer, the default schema setting finds them."""
    fake = NexoFake(pg_url, schema="ModelDanychContainer")
    fake.create()
    fake.add(CONTRACTORS[:2])
    config = SubiektNexoConfig.model_validate(
        {"kind": "subiekt_nexo", "url": pg_url, "feature": "b2b"}
    )
    source = SubiektNexoSource.from_config(config)
    try:
        assert source.check().problems == ()
        assert [c.key for c in source.contractors()] == ["1", "2"]
    finally:
        source.close()
        fake.close()


@pytest.mark.postgres
def test_a_connection_lost_mid_stream_is_unavailable(pg_url: str) -> None:
    """When the server drops the connection after some rows, the stream raises SourceUnavailable."""
    fake = NexoFake(pg_url)
    fake.create()
    fake.add(
        FakeContractor(i, f"K{i}", f"Firma {i}", features=("b2b",), contacts=(FakeContact("A"),))
        for i in range(1, 2501)
    )
    fake.close()
    engine = make_engine(pg_url)
    stream = nexo(engine).contractors()
    assert next(stream).key == "1"
    admin = make_engine(pg_url)
    with admin.connect() as conn:
        conn.execute(
            sa.text(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = :db AND pid <> pg_backend_pid()"
            ),
            {"db": sa.make_url(pg_url).database},
        )
    admin.dispose()
    with pytest.raises(SourceUnavailable, match="cannot reach the Subiekt nexo database"):
        list(stream)
    assert engine.pool.checkedout() == 0
    engine.dispose()


def test_keys_are_read_in_chunks_below_the_sql_server_parameter_limit(sqlite_url: str) -> None:
    """2,500 keys are read in three chunks of at most 1,000 ids, in id order, none lost."""
    fake = NexoFake(sqlite_url)
    fake.create()
    fake.add(FakeContractor(i, f"K{i}", f"Firma {i}", features=("b2b",)) for i in range(1, 2601))
    fake.close()
    engine = make_engine(sqlite_url)
    source = nexo(engine)
    keys = [str(i) for i in range(2500, 0, -1)]
    with statements(engine) as sent:
        got = [c.key for c in source.contractors(keys=keys)]
    assert got == [str(i) for i in range(1, 2501)]
    assert len(sent) == 1 + 2 * 3
    assert max(s.count("?") for s in sent) <= 1000 + 20
    assert engine.pool.checkedout() == 0
    engine.dispose()
