"""Passwords: generation, hashing for the portal and the checks on typed passwords."""

from __future__ import annotations

import random

import pytest

from syncd.errors import ConfigError, PasswordRejected
from syncd.passwords import (
    ALPHABET,
    DIGITS,
    LOWER,
    UPPER,
    check_typed_password,
    generate_password,
    hash_password,
    verify_password,
)

# One of each confusable pair goes: 0/O/o, 1/l/I/i, 2/Z/z, 5/S/s, 6/G, 8/B, 9/g/q.
LOOK_ALIKES = "0Oo1lIi2Zz5SsGBgq"


def test_alphabet_has_no_look_alikes() -> None:
    """No character that a font can confuse with another is ever used."""
    assert not set(ALPHABET) & set(LOOK_ALIKES)
    assert len(set(ALPHABET)) == len(ALPHABET) == 45


def test_default_password_is_14_characters_of_the_alphabet() -> None:
    """A generated password has the default length and only alphabet characters."""
    password = generate_password()
    assert len(password) == 14
    assert set(password) <= set(ALPHABET)


def test_every_password_has_lower_upper_and_digit() -> None:
    """Each character class appears at least once, even in the shortest password."""
    rng = random.Random(7)
    for _ in range(2000):
        password = generate_password(12, rng=rng)
        assert set(password) & set(LOWER)
        assert set(password) & set(UPPER)
        assert set(password) & set(DIGITS)


def test_passwords_are_unique() -> None:
    """1,000 passwords from the system CSPRNG are all different."""
    assert len({generate_password() for _ in range(1000)}) == 1000


def test_rng_is_injectable_and_deterministic() -> None:
    """The same seeded generator gives the same password, so tests can predict it."""
    assert generate_password(rng=random.Random(1)) == generate_password(rng=random.Random(1))


def test_too_short_length_is_refused() -> None:
    """Asking for fewer than 12 characters is a programming error."""
    with pytest.raises(ValueError, match="at least 12"):
        generate_password(11)


@pytest.mark.parametrize("scheme", ["bcrypt", "pbkdf2_sha256"])
def test_hash_verifies_and_rejects_other_passwords(scheme: str) -> None:
    """A hash verifies its own password and no other."""
    password = generate_password()
    hashed = hash_password(password, scheme)
    assert password not in hashed
    assert verify_password(password, hashed)
    assert not verify_password(password + "x", hashed)


def test_bcrypt_is_the_default_scheme() -> None:
    """Without a scheme, the portal gets a bcrypt hash."""
    assert hash_password(generate_password()).startswith("$2b$")


def test_unknown_scheme_is_a_config_error() -> None:
    """A misspelt portal.password_scheme names the setting and the choices."""
    with pytest.raises(ConfigError, match=r"portal\.password_scheme: must be one of bcrypt"):
        hash_password(generate_password(), "md5")


def test_verify_unknown_or_malformed_hash_is_false() -> None:
    """Garbage in the portal's hash column never verifies and never raises."""
    assert not verify_password("whatever-pass", "plain-text")
    assert not verify_password("whatever-pass", "$2b$12$broken")
    assert not verify_password("whatever-pass", "pbkdf2_sha256$x$y$z")


def test_typed_password_of_twelve_characters_is_accepted() -> None:
    """A typed password of 12 ordinary characters, accents included, passes."""
    check_typed_password("Zażółć-gęślą")


def test_typed_password_too_short_is_rejected_without_echo() -> None:
    """A short typed password is refused; the message says why but not the password."""
    with pytest.raises(PasswordRejected, match="11 characters; type at least 12") as info:
        check_typed_password("Kowalski-11")
    assert "Kowalski" not in str(info.value)


def test_typed_password_over_72_bytes_is_rejected() -> None:
    """bcrypt's 72-byte limit counts UTF-8 bytes, so 40 'ż' (80 bytes) are refused."""
    with pytest.raises(PasswordRejected, match="80 bytes"):
        check_typed_password("ż" * 40)


@pytest.mark.parametrize("typed", ["line-one\nline-two", " leading-space", "trailing-spc "])
def test_typed_password_with_invisible_trouble_is_rejected(typed: str) -> None:
    """Line breaks and outer spaces would lock the customer out: refused."""
    with pytest.raises(PasswordRejected) as info:
        check_typed_password(typed)
    assert typed.strip() not in str(info.value)
