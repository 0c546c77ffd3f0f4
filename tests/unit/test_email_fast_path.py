"""The plain-address fast path agrees with email-validator on every address it accepts."""

from __future__ import annotations

from email_validator import EmailNotValidError, validate_email
from hypothesis import given, settings
from hypothesis import strategies as st

from syncd.mapping import normalise_email, plain_login

_LOCAL = st.text(alphabet='aZ09._+-!#~"ą ', min_size=0, max_size=70)
_LABEL = st.text(alphabet="aZ09-ąxn", min_size=0, max_size=66)
_TLD = st.sampled_from(["pl", "COM", "test", "local", "x", "c0m", "xn--p1ai", "onion", "de"])


def _library(candidate: str) -> str | None:
    try:
        return validate_email(candidate, check_deliverability=False).normalized.lower()
    except EmailNotValidError:
        return None


@settings(max_examples=3000, deadline=None)
@given(_LOCAL, st.lists(_LABEL, min_size=0, max_size=4), _TLD)
def test_fast_path_accepts_only_what_the_library_accepts_alike(
    local: str, labels: list[str], tld: str
) -> None:
    """Whatever the fast path accepts, email-validator accepts and normalises the same way."""
    candidate = f"{local}@{'.'.join([*labels, tld])}"
    fast = plain_login(candidate)
    if fast is not None:
        assert fast == _library(candidate)


def test_common_addresses_take_the_fast_path() -> None:
    """Ordinary ERP addresses are recognised without the library, lower-cased."""
    assert (
        plain_login("Jan.Kowalski+b2b@Firma-Handlowa.COM.PL")
        == "jan.kowalski+b2b@firma-handlowa.com.pl"
    )
    assert plain_login("biuro@example.com") == "biuro@example.com"


def test_unusual_addresses_go_to_the_library() -> None:
    """IDNA, special-use names, doubled dots and quoted local parts are left to the library."""
    for address in ("ab@xn--p1ai.ru", "a@x.test", "a..b@x.pl", '"a b"@x.pl', "a@x-.pl", "a@x.y1"):
        assert plain_login(address) is None
    assert normalise_email("ab@xn--p1ai.ru") == "ab@рф.ru"
    assert normalise_email("a..b@x.pl") is None
