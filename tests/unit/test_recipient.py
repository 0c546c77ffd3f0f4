"""``mail.recipient``: validating the chain, and choosing the address mail goes to."""

from __future__ import annotations

from typing import Any

import pytest

from syncd.config import ConfigError, MailRecipient, parse_config
from syncd.mapping import map_contractor
from syncd.model import Contact, DesiredAccount, SourceContractor
from syncd.recipient import choose_recipient
from tests.unit.test_config import minimal

CHAIN = (MailRecipient.CONTACT, MailRecipient.BILLING, MailRecipient.EMAIL)


def _problems(value: Any) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse_config(minimal(mail={"recipient": value}), environ={})
    return caught.value.problems


def test_the_default_chain_is_the_main_email() -> None:
    """Without mail.recipient, mail goes to the main e-mail, as before the option existed."""
    assert parse_config(minimal(), environ={}).mail.recipient == (MailRecipient.EMAIL,)


def test_a_chain_is_read_in_order_any_case_and_one_source_may_stand_alone() -> None:
    """[Contact, billing, EMAIL] keeps its order; `recipient: email` is a chain of one."""
    config = parse_config(minimal(mail={"recipient": ["Contact", "billing", "EMAIL"]}), environ={})
    assert config.mail.recipient == CHAIN
    alone = parse_config(minimal(mail={"recipient": "email"}), environ={})
    assert alone.mail.recipient == (MailRecipient.EMAIL,)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (
            ["contact", "biling", "email"],
            "mail.recipient.1: must be one of contact, billing, email",
        ),
        (["contact", "contact", "email"], "mail.recipient: names contact twice"),
        (["contact", "billing"], "mail.recipient: must include email"),
        ([], "mail.recipient: must include email"),
        (None, "mail.recipient: must be a list of sources"),
    ],
)
def test_a_bad_chain_is_an_error_naming_the_key(value: Any, expected: str) -> None:
    """Unknown, repeated or missing sources are reported at mail.recipient, with what to do."""
    found = _problems(value)
    assert len(found) == 1
    assert found[0].startswith(expected), found


def _fields(**changes: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "key": "7",
        "login": "biuro@firma.pl",
        "symbol": "K7",
        "name": "Firma",
        "email": "biuro@firma.pl",
        **changes,
    }
    desired = DesiredAccount(**values)
    return {**desired.fields(), **desired.mail_fields()}


ANNA = Contact("Anna Nowak", "Anna@Firma.pl", receives_mail=True)


def test_the_first_source_with_a_valid_address_wins() -> None:
    """A contact authorised to receive mail beats billing and the main e-mail; without one
    the billing e-mail; without either the main e-mail."""
    both = _fields(contacts=(ANNA,), billing_email="faktury@firma.pl")
    assert choose_recipient(CHAIN, both, login="biuro@firma.pl").address == "anna@firma.pl"
    billing = _fields(billing_email="faktury@firma.pl")
    assert choose_recipient(CHAIN, billing, login="x").address == "faktury@firma.pl"
    chosen = choose_recipient(CHAIN, _fields(), login="biuro@firma.pl")
    assert (chosen.address, chosen.source) == ("biuro@firma.pl", MailRecipient.EMAIL)


def test_contacts_without_the_role_or_without_a_valid_address_are_passed_over() -> None:
    """Only a contact authorised to receive mail counts, and only with a valid e-mail; the
    first such one in the ERP's order (main contact first) wins."""
    contacts = (
        Contact("Bez Roli", "bez@firma.pl"),
        Contact("Zły Adres", "nie-adres", receives_mail=True),
        Contact("Ewa Druga", "ewa@firma.pl", receives_mail=True),
        Contact("Olga Trzecia", "olga@firma.pl", receives_mail=True),
    )
    chosen = choose_recipient(CHAIN, _fields(contacts=contacts), login="biuro@firma.pl")
    assert chosen.address == "ewa@firma.pl"
    assert chosen.reason == (
        "mail goes to ewa@firma.pl: contact person Ewa Druga is authorised to receive mail "
        "(mail.recipient[0])"
    )


def test_the_reason_names_the_sources_that_had_nothing() -> None:
    """Falling back says why each earlier source was passed over, by its index."""
    chosen = choose_recipient(CHAIN, _fields(), login="biuro@firma.pl")
    assert chosen.reason == (
        "mail goes to biuro@firma.pl: it is the contractor's main e-mail (mail.recipient[2]); "
        "no contact person with an e-mail is authorised to receive mail (mail.recipient[0]); "
        "there is no billing e-mail (mail.recipient[1])"
    )
    default = choose_recipient((MailRecipient.EMAIL,), _fields(), login="biuro@firma.pl")
    assert default.reason == "mail goes to biuro@firma.pl: it is the contractor's main e-mail"


def test_mapping_keeps_the_roles_and_normalises_the_billing_email() -> None:
    """The roles pass through mapping; a billing field is trimmed and lower-cased, and an
    invalid one is a warning, not a conflict (mail then goes to the next source)."""
    row = SourceContractor(
        key="1",
        symbol="K1",
        name="Firma",
        email_raw="biuro@firma.pl",
        contacts=(Contact("Adam", "Adam@Firma.pl", represents=True, receives_mail=True),),
        billing_email=" Faktury@Firma.PL ",
    )
    desired = map_contractor(row)
    assert isinstance(desired, DesiredAccount)
    assert desired.billing_email == "faktury@firma.pl"
    assert desired.contacts[0].as_dict()["represents"] is True
    assert desired.contacts[0].as_dict()["receives_mail"] is True
    assert "billing_email" not in desired.fields()  # not a portal field
    bad = map_contractor(
        SourceContractor("2", "K2", "Firma", email_raw="a@b.pl", billing_email="x")
    )
    assert isinstance(bad, DesiredAccount)
    assert bad.billing_email is None
    assert any("billing e-mail 'x' is not valid" in w for w in bad.warnings)
