"""Mapping: ERP contractor -> desired account or conflict."""

from __future__ import annotations

import random
import string
from decimal import Decimal

import pytest
from stdnum.pl import nip as pl_nip

from syncd.mapping import map_contractor, normalise_tax_id, pick_login
from syncd.model import Conflict, ConflictKind, Contact, DesiredAccount, SourceContractor


def contractor(**overrides: object) -> SourceContractor:
    values: dict[str, object] = {
        "key": "42",
        "symbol": "K0042",
        "name": "ACME Sp. z o.o.",
        "email_raw": "biuro@acme.pl",
    }
    values.update(overrides)
    return SourceContractor(**values)  # type: ignore[arg-type]


def test_login_is_trimmed_lower_case() -> None:
    """The login is the e-mail trimmed and lower-cased."""
    account = map_contractor(contractor(email_raw="  Jan.Kowalski@ACME.PL "))
    assert isinstance(account, DesiredAccount)
    assert account.login == "jan.kowalski@acme.pl"
    assert account.email == account.login


@pytest.mark.parametrize("separator", [";", ",", " ", " ; "])
def test_first_valid_of_several_addresses_is_used_with_a_warning(separator: str) -> None:
    """A field with several addresses uses the first valid one and says so."""
    raw = f"not-an-address{separator}Sklep@Acme.pl{separator}biuro@acme.pl"
    login, warnings, problem = pick_login(raw)
    assert login == "sklep@acme.pl"
    assert problem is None
    assert len(warnings) == 1
    assert "sklep@acme.pl" in warnings[0]


def test_missing_email_is_a_conflict_that_says_what_to_do() -> None:
    """No e-mail: a conflict naming the contractor and asking for an address in the ERP."""
    result = map_contractor(contractor(email_raw="   "))
    assert isinstance(result, Conflict)
    assert result.kind is ConflictKind.MISSING_EMAIL
    assert "42" in result.reason
    assert "K0042" in result.reason
    assert "add one in the ERP" in result.reason


def test_invalid_email_is_a_conflict_quoting_the_value() -> None:
    """An invalid e-mail: a conflict quoting what the ERP holds."""
    result = map_contractor(contractor(email_raw="biuro(at)acme.pl"))
    assert isinstance(result, Conflict)
    assert result.kind is ConflictKind.INVALID_EMAIL
    assert "biuro(at)acme.pl" in result.reason


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("526-000-12-46", "5260001246"),
        ("PL5260001246", "5260001246"),
        ("pl 526 000 12 46", "5260001246"),
    ],
)
def test_nip_in_any_formatting_is_compacted(raw: str, expected: str) -> None:
    """A valid NIP with dashes, spaces or a PL prefix becomes ten digits."""
    assert normalise_tax_id(raw) == (expected, None)


def test_bad_nip_is_a_warning_not_a_conflict() -> None:
    """A NIP failing its checksum keeps the account and adds a warning."""
    result = map_contractor(contractor(tax_id="123-456-78-90"))
    assert isinstance(result, DesiredAccount)
    assert result.tax_id == "123-456-78-90"
    assert any("checksum" in w for w in result.warnings)


def test_fields_and_fingerprint_cover_every_synced_value() -> None:
    """Changing any synced value changes the fingerprint; warnings do not."""
    common: dict[str, object] = {
        "discount": Decimal("5"),
        "price_level": "Hurtowa",
        "contacts": (Contact("Anna Nowak", "Anna@Acme.pl", "600100200", "Zakupy", True),),
    }
    base = map_contractor(contractor(**common))
    assert isinstance(base, DesiredAccount)
    assert base.fields()["discount"] == "5.00"
    assert base.fields()["contacts"][0]["email"] == "anna@acme.pl"
    variants: list[dict[str, object]] = [
        {"discount": Decimal("5.5")},
        {"price_level": "Detaliczna"},
        {"owner_name": "Ewa Wiśniewska"},
        {"erp_blocked": True},
        {"contacts": ()},
        {"email_raw": "inny@acme.pl"},
    ]
    prints = {base.fingerprint()}
    for variant in variants:
        mapped = map_contractor(contractor(**{**common, **variant}))
        assert isinstance(mapped, DesiredAccount)
        prints.add(mapped.fingerprint())
    assert len(prints) == 1 + len(variants)
    with_warning = map_contractor(contractor(**common, tax_id="123-456-78-90"))
    same_but_nip = map_contractor(contractor(**common, tax_id="123-456-78-90"))
    assert isinstance(with_warning, DesiredAccount)
    assert isinstance(same_but_nip, DesiredAccount)
    assert with_warning.fingerprint() == same_but_nip.fingerprint()


def test_cached_validation_never_leaks_one_contractors_warning_into_another() -> None:
    """The remembered e-mail result is shared, so a NIP warning must not stick to it."""
    email = "handel@firma.pl; biuro@firma.pl"
    first = map_contractor(contractor(key="1", email_raw=email, tax_id="123-456-78-90"))
    second = map_contractor(contractor(key="2", email_raw=email, tax_id="5260001246"))
    assert isinstance(first, DesiredAccount)
    assert isinstance(second, DesiredAccount)
    assert len(first.warnings) == 2
    assert len(second.warnings) == 1
    assert "addresses" in second.warnings[0]


def test_symbol_login_is_the_trimmed_symbol_and_mail_goes_to_the_email() -> None:
    """portal.login: symbol: the symbol (case kept, trimmed) is the login, the e-mail stays."""
    account = map_contractor(
        contractor(symbol="  Kow-01 ", email_raw=" Biuro@ACME.pl"), login_by="symbol"
    )
    assert isinstance(account, DesiredAccount)
    assert (account.login, account.email) == ("Kow-01", "biuro@acme.pl")


@pytest.mark.parametrize("symbol", ["", "   ", "K\t01", "K0\n1"])
def test_a_symbol_nobody_can_type_is_a_conflict_when_it_is_the_login(symbol: str) -> None:
    """An empty symbol or one with a control character cannot be a login: a conflict."""
    result = map_contractor(contractor(symbol=symbol), login_by="symbol")
    assert isinstance(result, Conflict)
    assert result.kind is ConflictKind.INVALID_SYMBOL
    assert "correct the symbol in the ERP" in result.reason


def test_symbol_logins_still_need_an_email_for_the_mail() -> None:
    """Without an e-mail there is nowhere to send the activation: a conflict that says so."""
    result = map_contractor(contractor(email_raw=None), login_by="symbol")
    assert isinstance(result, Conflict)
    assert result.kind is ConflictKind.MISSING_EMAIL
    assert "mail goes there" in result.reason


def test_switching_the_login_mode_changes_the_raw_fingerprint() -> None:
    """So that the cycle maps every contractor again (renaming its login) after a switch."""
    row = contractor()
    assert row.raw_fingerprint("symbol") != row.raw_fingerprint()
    assert row.raw_fingerprint("email") == row.raw_fingerprint()


def test_nip_checksum_agrees_with_stdnum() -> None:
    """The NIP checksum done in syncd accepts and refuses exactly what python-stdnum does."""
    rng = random.Random(10)
    numbers = ["".join(rng.choice(string.digits) for _ in range(10)) for _ in range(20_000)]
    numbers += ["526-000-12-46", "5260001246", "123456789", "12345678901", "١٢٣٤٥٦٧٨٩٠"]
    for raw in numbers:
        compact, warning = normalise_tax_id(raw)
        assert (warning is None) == pl_nip.is_valid(raw), raw
        if warning is None:
            assert compact == pl_nip.compact(raw)
