"""Bad input from the ERP (issue 9, the bad-input suite's generated half): a hypothesis-made
Subiekt GT full of NULLs, empty and 10,000-character strings, control characters, emoji,
right-to-left text, SQL metacharacters, broken e-mails, near-duplicate logins and NIPs in
any format, synced by real cycles into the SQL portal on SQLite, PostgreSQL and MariaDB
(the state store in the same database).

The property: every cycle finishes (exit 0), and afterwards every in-scope contractor is
either synced (a binding, and a portal account whose fields are the mapped values) or a
conflict with a reason, nothing else: no record failed, in backoff or quarantined, no
account without a binding or the other way round, nobody out of scope with an account.
A second cycle after an ERP edit must hold it too, and a third with no edit changes
nothing. The ERP is a SQLite file (GT's column lengths are not enforced there, so the
10,000-character values reach syncd as a SQL Server ``nvarchar(max)`` view would).
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from connectors.fake import FakeContact, FakeContractor, FakeSalesperson
from connectors.sql_portal.schema import account, contact
from connectors.subiekt_gt.fake import GtFake
from syncd.config import Config
from syncd.cycle import CycleRequest, CycleResult, run_cycle
from syncd.errors import ExitCode
from syncd.mapping import map_contractor
from syncd.model import DesiredAccount
from syncd.store.schema import metadata as state_tables
from syncd.wiring import Services, open_services
from tests.support import write_config

LONG = "x" * 10_000
# Text a person (or an import script) leaves in an ERP field.
NASTY = [
    "", " ", "  padded  ", "\x00", "a\x00b", "\t", "line\nbreak", "\r\n", "\x07bell\x1b[0m",
    "\u202egnp.exe", "\u200b", "\ufeffBOM", "😀", "👨‍👩‍👧 rodzina", "שלום", "مرحبا بكم",
    "Zażółć gęślą jaźń", "Příliš žluťoučký kůň", "Ştefan Ţară", "'; DROP TABLE b2b_account; --",
    "O'Brien", '"quoted"', "50% off_", "back\\slash", "NULL", "None", "<b>bold</b>", LONG,
    "ą" * 300, "Firma " * 60,
]  # fmt: skip
TEXT = st.one_of(st.none(), st.sampled_from(NASTY), st.text(max_size=20))
NAME = st.one_of(st.sampled_from(NASTY), st.text(max_size=30))  # NOT NULL in GT
# Pieces that make the same login (or one that looks the same) several ways.
# (MariaDB's *_ci collations hold kąsia = kasia and straße = strasse as one login.)
LOCALS = ["kasia", "KASIA", "Kasia", "k\u0430sia", "kąsia", "straße", "strasse", "jan.kowalski",
          "j'o", "łukasz", "x" * 70]  # fmt: skip
DOMAINS = ["firma.pl", "FIRMA.PL", "żółw.pl", "xn--w-uga1v8h.pl", "fіrma.pl", "例え.jp"]
BROKEN = [
    "", "   ", "a", "@", "a@", "@firma.pl", "a@b", "a@@firma.pl", "a b@firma.pl", "a@firma..pl",
    ".a@firma.pl", "a.@firma.pl", "a@-firma.pl", "<a@firma.pl>", "Jan <a@firma.pl>",
    "a@[127.0.0.1]", "a@localhost", "mailto:a@firma.pl", "a@firma.pl'--", "a\x00@firma.pl",
    "\u202ea@firma.pl", "x" * 300 + "@firma.pl", "a@" + "b" * 300 + ".pl", LONG,
    "a@firma.pl; b@firma.pl", "a@firma.pl,a@firma.pl", "nie ma", "brak@", "😀@firma.pl",
]  # fmt: skip
EMAIL = st.one_of(
    st.none(),
    st.sampled_from(BROKEN),
    st.builds(
        lambda local, domain, pad: f"{pad}{local}@{domain}{pad}",
        st.sampled_from(LOCALS),
        st.sampled_from(DOMAINS),
        st.sampled_from(["", " ", "\t"]),
    ),
    st.builds(lambda local, domain: f"{local}@{domain}", st.sampled_from(LOCALS),
              st.sampled_from(["firma.pl", "FIRMA.PL"])),  # near-duplicates, more often
)  # fmt: skip
NIP = st.one_of(
    TEXT,
    st.sampled_from(["1234563218", "123-456-32-18", "PL 123 456 32 18", "pl1234563218",
                     "1234563219", "DE123456789", "PL", "--", "0" * 40, "１２３４５６３２１８",
                     "١٢٣٤٥٦٣٢١٨", "123.456.32.18"]),
)  # fmt: skip
# GT names 10 price levels (tw_Parametr); these are the names a messy GT gives them.
PRICE_LEVELS = ["Hurtowa", "", " ", "😀", "'; DROP TABLE b2b_account; --", LONG, "\x00",
                "שלום", "ą" * 300, "Zażółć gęślą jaźń"]  # fmt: skip
DISCOUNT = st.sampled_from(["0", "5", "12.5", "0.001", "100", "999.99", "1000", "-5", "99999"])
CONTACT = st.builds(
    FakeContact,
    first_name=TEXT,
    last_name=TEXT,
    email=st.one_of(EMAIL, TEXT),
    phone=TEXT,
    position=TEXT,
    primary=st.booleans(),
)
SALESPERSON = st.one_of(st.none(), st.builds(FakeSalesperson, NAME, NAME, st.one_of(EMAIL, TEXT)))
FEATURES = st.sampled_from([("b2b",), ("b2b",), ("b2b",), (" B2B ",), ("b2b", "vip"), (), ("b2c",)])


@st.composite
def contractors(draw: st.DrawFn, first: int = 1) -> list[FakeContractor]:
    """One to eight contractors, keys ``first``.. in order, every field drawn badly."""
    count = draw(st.integers(1, 8))
    return [
        FakeContractor(
            key=first + n,
            symbol=draw(NAME),
            name=draw(NAME),
            email=draw(EMAIL),
            tax_id=draw(NIP),
            phone=draw(TEXT),
            street=draw(TEXT),
            house=draw(TEXT),
            flat=draw(TEXT),
            postcode=draw(TEXT),
            city=draw(TEXT),
            country=draw(st.one_of(st.none(), st.sampled_from(["Polska", "Niemcy", "😀", LONG]))),
            price_level=draw(st.one_of(st.none(), st.sampled_from(PRICE_LEVELS))),
            discount=Decimal(draw(DISCOUNT)),
            salesperson=draw(SALESPERSON),
            blocked=draw(st.booleans()),
            customer=draw(st.booleans()) or draw(st.booleans()),
            features=draw(FEATURES),
            contacts=tuple(draw(st.lists(CONTACT, max_size=2))),
        )
        for n in range(count)
    ]


@st.composite
def scenarios(draw: st.DrawFn) -> tuple[list[FakeContractor], list[FakeContractor]]:
    """A first ERP, then an edit: some contractors rewritten (same keys), some added."""
    first = draw(contractors())
    rewritten = draw(st.lists(st.sampled_from(first), max_size=len(first), unique_by=id))
    edits = draw(contractors(first=1000))
    renamed = [
        FakeContractor(**{**_fields(new), "key": old.key})
        for old, new in zip(rewritten, edits, strict=False)
    ]
    edit = renamed + edits[len(renamed) :]
    first = _unique_symbols(first, set())
    edited = {c.key for c in edit}
    return first, _unique_symbols(edit, {c.symbol for c in first if c.key not in edited})


def _unique_symbols(contractors: list[FakeContractor], taken: set[str]) -> list[FakeContractor]:
    """GT keeps ``kh_Symbol`` unique: a symbol already ``taken`` gets the key appended."""
    found: list[FakeContractor] = []
    for contractor in contractors:
        symbol = contractor.symbol
        if symbol in taken:
            symbol = f"{symbol}~{contractor.key}"
        taken.add(symbol)
        found.append(FakeContractor(**{**_fields(contractor), "symbol": symbol}))
    return found


def _fields(contractor: FakeContractor) -> dict[str, Any]:
    return {name: getattr(contractor, name) for name in FakeContractor.__dataclass_fields__}


# -- the site: a fresh GT file per example; portal and state store in one database per test --


class Site:
    """A GT ERP file for one example, and the portal and the state store in ``database``
    (its own file unless given: emptied before each example by ``_empty``)."""

    def __init__(self, directory: Path, database: str | None = None) -> None:
        self.erp = GtFake(f"sqlite:///{directory}/erp.db")
        self.erp.create()
        database = database or f"sqlite:///{directory}/portal.db"
        self.config: Config = write_config(
            directory,
            portal={"url": database, "password_cost": 4},
            state={"url": database},
            mail={"send_delay": "0s"},
        )

    def edit(self, contractors: list[FakeContractor]) -> None:
        for contractor in contractors:
            self.erp.delete(contractor.key)
        self.erp.add(contractors)


def _empty(url: str) -> None:
    """Delete every row of the portal's and the state store's tables (the tables stay)."""
    tables = [*reversed(state_tables.sorted_tables), contact, account]
    engine = sa.create_engine(url)
    try:
        with engine.begin() as conn:
            present = set(sa.inspect(conn).get_table_names())
            for table in tables:
                if table.name in present:
                    conn.execute(table.delete())
    finally:
        engine.dispose()


@pytest.fixture(
    params=[
        pytest.param("sqlite", id="sqlite"),
        pytest.param("postgres", id="postgres", marks=pytest.mark.postgres),
        pytest.param("mariadb", id="mariadb", marks=pytest.mark.mariadb),
    ]
)
def portal_url(request: pytest.FixtureRequest) -> Iterator[str]:
    """One database for the portal and the state store of all of a test's examples."""
    if request.param == "sqlite":
        with tempfile.TemporaryDirectory() as directory:
            yield f"sqlite:///{directory}/portal.db"
        return
    yield str(
        request.getfixturevalue({"postgres": "pg_url", "mariadb": "mariadb_url"}[request.param])
    )


# -- the property ---------------------------------------------------------------------------


def _cycle(services: Services) -> CycleResult:
    result = run_cycle(services, CycleRequest())
    assert result.exit_code == ExitCode.OK, (result.error, _failures(result))
    return result


def _failures(result: CycleResult) -> dict[Any, str]:
    if result.report is None:
        return {}
    return dict(result.report.errors)


def _in_scope(services: Services) -> dict[str, DesiredAccount | None]:
    """Every in-scope contractor as the ERP holds it now: its mapped account (None for a
    contractor the mapping already makes a conflict)."""
    mapped: dict[str, DesiredAccount | None] = {}
    for contractor in services.source.contractors():
        account = map_contractor(contractor)
        mapped[contractor.key] = account if isinstance(account, DesiredAccount) else None
    return mapped


def _portal_accounts(services: Services) -> dict[str, Any]:
    return {account.id: account for account in services.portal.accounts()}


def _holds(services: Services) -> None:
    """Every in-scope contractor is synced or a conflict with a reason; nothing else."""
    store = services.store
    in_scope = _in_scope(services)
    bindings = store.load_bindings()
    conflicts = {c.key: c for c in store.conflicts()}
    accounts = _portal_accounts(services)
    stored = services.portal.stored_fields
    assert store.record_failures() == {}, "nothing failed, in backoff or quarantined"
    assert set(bindings) <= set(in_scope), "nobody out of scope keeps an account"
    assert {b.account_id for b in bindings.values()} == set(accounts), "bindings = accounts"
    for key, desired in in_scope.items():
        conflict = conflicts.get(key)
        if conflict is not None:
            assert conflict.reason.strip(), f"contractor {key}: a conflict without a reason"
            continue
        assert desired is not None, f"contractor {key}: a mapping conflict not recorded"
        assert key in bindings, f"contractor {key}: neither synced nor a conflict"
        account = accounts[bindings[key].account_id]
        assert account.contractor_key == key
        assert account.login == desired.login
        want = {name: value for name, value in desired.fields().items() if name in stored}
        have = {name: value for name, value in account.fields.items() if name in stored}
        assert have == want, f"contractor {key}: the portal holds other values"
    assert not set(conflicts) - set(in_scope), "a conflict of someone out of scope"


@settings(
    max_examples=8,
    deadline=None,
    derandomize=True,
    # No shrinking: each example is three real cycles, and shrinking one takes minutes;
    # the failing example is printed whole (and its contractors are at most 8 + 8).
    phases=[Phase.explicit, Phase.reuse, Phase.generate],
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(scenario=scenarios())
@pytest.mark.filterwarnings("ignore:Generating overly large repr")  # a failure's 10 kB values
def test_a_generated_erp_ends_synced_or_in_conflict_with_a_reason(
    scenario: tuple[list[FakeContractor], list[FakeContractor]], portal_url: str
) -> None:
    """Whatever the ERP holds, each cycle exits 0 and leaves every in-scope contractor
    synced with the mapped values or a conflict with a reason, through an edit and a
    quiet cycle after it."""
    first, edit = scenario
    _empty(portal_url)
    with tempfile.TemporaryDirectory() as directory:
        site = Site(Path(directory), portal_url)
        try:
            site.edit(first)
            with open_services(site.config) as services:
                _cycle(services)
                _holds(services)
                site.edit(edit)
                _cycle(services)
                _holds(services)
                quiet = _cycle(services)
                assert quiet.plan is not None
                assert quiet.plan.counts()["create"] == quiet.plan.counts()["update"] == 0
        finally:
            site.erp.close()


# -- what the generated ERP found, each pinned by a test of its own ----------------------


def _site(directory: Path, database: str | None, contractors: list[FakeContractor]) -> Site:
    site = Site(directory, database)
    site.edit(contractors)
    return site


def _conflicts(services: Services) -> dict[str, str]:
    return {c.key: c.reason for c in services.store.conflicts()}


@pytest.mark.parametrize(
    ("changes", "said"),
    [
        ({"street": LONG}, "address is 10"),
        ({"name": "N" * 300}, "name is 300 characters long but the portal holds at most 255"),
        ({"contacts": (FakeContact("C" * 300),)}, "contact #1 name is 300 characters long"),
        ({"discount": Decimal(99999)}, "discount 99999.00% is out of range"),
        ({"name": "Firma\x00"}, "name contains a NUL character"),
    ],
    ids=["address", "name", "contact", "discount", "nul"],
)
def test_a_value_the_portal_cannot_hold_is_a_conflict_naming_it_not_a_refusal(
    tmp_path: Path, changes: dict[str, Any], said: str
) -> None:
    """A 10,000-character address (a 300-character name or contact, a 99,999 % discount, a
    NUL) is a conflict whose reason names the field, found while planning: exit 0, no
    record.failed, no backoff or quarantine; the other contractor is synced."""
    bad = FakeContractor(1, "K1", "Firma 1", email="k1@firma.pl", features=("b2b",))
    good = FakeContractor(2, "K2", "Firma 2", email="k2@firma.pl", features=("b2b",))
    site = _site(tmp_path, None, [
        FakeContractor(**{**_fields(bad), **changes}), good])  # fmt: skip
    with open_services(site.config) as services:
        result = _cycle(services)
        assert result.report is not None
        assert result.report.refused == 0
        assert said in _conflicts(services)["1"]
        assert "in the ERP" in _conflicts(services)["1"]
        assert set(services.store.load_bindings()) == {"2"}
        assert services.store.record_failures() == {}
    site.erp.close()


@pytest.mark.postgres
def test_a_synced_contractor_whose_value_grows_too_long_keeps_its_account_in_conflict(
    tmp_path: Path, pg_url: str
) -> None:
    """On PostgreSQL: a synced contractor whose name becomes 300 characters long (then gets
    a NUL) is a conflict naming the field, its account keeps the old values, nothing is
    quarantined however many cycles run; shortened, it is updated."""
    first = FakeContractor(1, "K1", "Firma 1", email="k1@firma.pl", features=("b2b",))
    site = _site(tmp_path, pg_url, [first])
    with open_services(site.config) as services:
        _cycle(services)
        for name, said in (("N" * 300, "name is 300 characters"), ("A\x00B", "NUL character")):
            site.edit([FakeContractor(**{**_fields(first), "name": name})])
            for _ in range(6):
                _cycle(services)
            assert said in _conflicts(services)["1"]
            assert services.store.record_failures() == {}
            (account,) = services.portal.accounts()
            assert account.fields["name"] == "Firma 1"
        site.edit([FakeContractor(**{**_fields(first), "name": "Firma Nowa"})])
        _cycle(services)
        assert _conflicts(services) == {}
        (account,) = services.portal.accounts()
        assert account.fields["name"] == "Firma Nowa"
    site.erp.close()


@pytest.mark.postgres
def test_a_conflict_with_a_300_character_symbol_or_a_nul_is_recorded_in_postgresql(
    tmp_path: Path, pg_url: str
) -> None:
    """The state store on PostgreSQL records conflicts whose symbol is longer than its column
    or whose name holds a NUL (both the ERP's doing): the cycle exits 0 instead of failing
    with "the state store refused writing", and each reason says what to fix."""
    site = _site(tmp_path, pg_url, [
        FakeContractor(1, "S" * 300, "Firma 1", email="brak", features=("b2b",)),
        FakeContractor(2, "K2", "Firma\x00 2", email="k2@firma.pl", features=("b2b",)),
    ])  # fmt: skip
    with open_services(site.config) as services:
        _cycle(services)
        reasons = _conflicts(services)
    assert "invalid e-mail address 'brak'" in reasons["1"]
    assert "NUL character" in reasons["2"]
    site.erp.close()


@pytest.mark.mariadb
def test_logins_a_ci_collation_holds_equal_are_one_login_on_mariadb(
    tmp_path: Path, mariadb_url: str
) -> None:
    """On MariaDB (utf8mb4_unicode_ci) kasia@ and kąsia@, straße@ and strasse@ are one login
    to the portal's unique index: two new contractors with them are both conflicts saying
    so (not a refused write, backed off and quarantined); with one gone the other is
    synced, and the one coming back is a conflict, the synced account untouched."""
    kasia = FakeContractor(1, "K1", "Kasia", email="kasia@firma.pl", features=("b2b",))
    kasia2 = FakeContractor(2, "K2", "Kąsia", email="kąsia@firma.pl", features=("b2b",))
    site = _site(tmp_path, mariadb_url, [
        kasia, kasia2,
        FakeContractor(3, "K3", "Ulica", email="straße@firma.pl", features=("b2b",)),
        FakeContractor(4, "K4", "Ulica 2", email="strasse@firma.pl", features=("b2b",)),
    ])  # fmt: skip
    with open_services(site.config) as services:
        result = _cycle(services)
        assert result.report is None or result.report.refused == 0
        reasons = _conflicts(services)
        assert set(reasons) == {"1", "2", "3", "4"}
        assert "ignoring case and accents" in reasons["2"]
        site.erp.delete(2)
        _cycle(services)
        assert set(services.store.load_bindings()) == {"1"}
        site.erp.add([kasia2])
        for _ in range(3):
            _cycle(services)
        assert "already the login of contractor 1" in _conflicts(services)["2"]
        assert services.store.record_failures() == {}
        assert [a.login for a in services.portal.accounts()] == ["kasia@firma.pl"]
    site.erp.close()
