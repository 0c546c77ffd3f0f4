"""Portal passwords: generating them, hashing them for the portal, checking typed ones.

A plaintext password lives only in memory between ``generate_password`` and the SMTP
hand-off (spec section 2), so nothing here logs, stores or puts a password into an error.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import random
import secrets
import unicodedata

import bcrypt

from syncd.errors import ConfigError, PasswordRejected

# Customers copy these from a mail or type them from a printout, so every character that a
# font can confuse with another is left out: 0/O/o, 1/l/I/i, 2/Z/z, 5/S/s, 6/G, 8/B, 9/g/q.
LOWER = "abcdefhjkmnprtuvwxy"
UPPER = "ACDEFHJKLMNPQRTUVWXY"
DIGITS = "346789"
ALPHABET = LOWER + UPPER + DIGITS

MIN_LENGTH = 12
BCRYPT_MAX_BYTES = 72  # bcrypt ignores (bcrypt>=5: refuses) everything past 72 bytes
BCRYPT_ROUNDS = 12
PBKDF2_ITERATIONS = 600_000  # OWASP's 2023 recommendation for PBKDF2-HMAC-SHA256

PASSWORD_SCHEMES = ("bcrypt", "pbkdf2_sha256")


def generate_password(length: int = 14, *, rng: random.Random | None = None) -> str:
    """A fresh password with at least one lower-case letter, upper-case letter and digit.

    14 characters of a 45-symbol alphabet give about 77 bits. ``rng`` exists for tests;
    the default is the operating system's CSPRNG (``secrets.SystemRandom``).
    """
    if length < MIN_LENGTH:
        message = f"a password must have at least {MIN_LENGTH} characters (asked for {length})"
        raise ValueError(message)
    chooser = rng if rng is not None else secrets.SystemRandom()
    chars = [chooser.choice(LOWER), chooser.choice(UPPER), chooser.choice(DIGITS)]
    chars += [chooser.choice(ALPHABET) for _ in range(length - len(chars))]
    chooser.shuffle(chars)
    return "".join(chars)


def check_typed_password(password: str) -> None:
    """Refuse a password a salesperson typed if the customer could not use it reliably.

    Raises ``PasswordRejected`` (whose message never contains the password) when it is
    shorter than 12 characters, longer than bcrypt's 72 bytes, holds control characters
    or starts or ends with a space.
    """
    problem = _typed_password_problem(password)
    if problem is not None:
        message = f"this password cannot be used: {problem}"
        raise PasswordRejected(message)


def _typed_password_problem(password: str) -> str | None:
    size = len(password.encode("utf-8"))
    if len(password) < MIN_LENGTH:
        return f"it has {len(password)} characters; type at least {MIN_LENGTH}"
    if size > BCRYPT_MAX_BYTES:
        return (
            f"it takes {size} bytes in UTF-8 and bcrypt uses only the first "
            f"{BCRYPT_MAX_BYTES}; type a shorter one (or fewer accented letters)"
        )
    if any(unicodedata.category(char).startswith("C") for char in password):
        return "it contains a control character (a tab or line break?); type it on one line"
    if password != password.strip():
        return "it starts or ends with a space, which nobody would type at login; remove it"
    return None


def hash_password(password: str, scheme: str = "bcrypt") -> str:
    """The hash the portal stores, in the format of ``scheme`` (``portal.password_scheme``).

    ``bcrypt`` gives ``$2b$12$...``; ``pbkdf2_sha256`` gives Django's
    ``pbkdf2_sha256$<iterations>$<salt>$<base64 digest>``.
    """
    if scheme == "bcrypt":
        secret = password.encode("utf-8")
        if len(secret) > BCRYPT_MAX_BYTES:
            message = f"a bcrypt password cannot be longer than {BCRYPT_MAX_BYTES} bytes"
            raise PasswordRejected(message)
        return bcrypt.hashpw(secret, bcrypt.gensalt(BCRYPT_ROUNDS)).decode("ascii")
    if scheme == "pbkdf2_sha256":
        salt = secrets.token_hex(11)
        return _pbkdf2(password, salt, PBKDF2_ITERATIONS)
    choices = ", ".join(PASSWORD_SCHEMES)
    raise ConfigError([f"portal.password_scheme: must be one of {choices} (got {scheme!r})"])


def verify_password(password: str, hashed: str) -> bool:
    """Whether ``password`` matches ``hashed`` (either scheme); False for unknown formats."""
    if hashed.startswith(("$2a$", "$2b$", "$2y$")):
        try:
            return bcrypt.checkpw(password.encode("utf-8"), hashed.encode("ascii"))
        except ValueError:  # over 72 bytes, or a malformed hash
            return False
    if hashed.startswith("pbkdf2_sha256$"):
        try:
            _, iterations, salt, _ = hashed.split("$")
            expected = _pbkdf2(password, salt, int(iterations))
        except ValueError:
            return False
        return hmac.compare_digest(expected.encode("ascii"), hashed.encode("ascii"))
    return False


def _pbkdf2(password: str, salt: str, iterations: int) -> str:
    digest = hashlib.pbkdf2_hmac("sha256", password.encode("utf-8"), salt.encode(), iterations)
    encoded = base64.b64encode(digest).decode("ascii")
    return f"pbkdf2_sha256${iterations}${salt}${encoded}"
