"""Portal passwords: generating them, hashing them for the portal, checking typed ones.

A plaintext password lives only in memory between ``generate_password`` and the SMTP
hand-off (spec section 2), so nothing here logs, stores or puts a password into an error.
bcrypt and argon2 are imported by the functions that hash or verify, so a command that only
generates one (``check-config`` renders the sample mails with a password) loads neither.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import random
import secrets
import unicodedata
from typing import TYPE_CHECKING

from syncd.errors import ConfigError, PasswordRejected

if TYPE_CHECKING:
    from argon2 import PasswordHasher

# Customers copy these from a mail or type them from a printout, so every character that a
# font can confuse with another is left out: 0/O/o, 1/l/I/i, 2/Z/z, 5/S/s, 6/G, 8/B, 9/g/q.
LOWER = "abcdefhjkmnprtuvwxy"
UPPER = "ACDEFHJKLMNPQRTUVWXY"
DIGITS = "346789"
ALPHABET = LOWER + UPPER + DIGITS

MIN_LENGTH = 12
BCRYPT_MAX_BYTES = 72  # bcrypt ignores (bcrypt>=5: refuses) everything past 72 bytes
BCRYPT_ROUNDS = 12  # the default cost; tests lower it (see tests/conftest.py quick_bcrypt)
BCRYPT_MIN_ROUNDS, BCRYPT_MAX_ROUNDS = 4, 31  # what bcrypt (and PHP's password_hash) accept
# argon2id: RFC 9106's second recommended profile (argon2-cffi's default): 64 MiB of memory,
# 4 lanes, and ``cost`` passes over the memory (3 by default). PHP's password_verify reads
# the parameters from the hash, so any of them verify there.
ARGON2_PASSES = 3
ARGON2_MEMORY_KIB = 65536
ARGON2_LANES = 4
PBKDF2_ITERATIONS = 600_000  # OWASP's 2023 recommendation for PBKDF2-HMAC-SHA256

PASSWORD_SCHEMES = ("bcrypt", "bcrypt_2y", "argon2id", "pbkdf2_sha256")


def cores() -> int:
    """The cores this process may run on (its CPU affinity, which a container or systemd's
    ``CPUAffinity=`` may narrow), the number of password hashes worth running at once."""
    try:
        return len(os.sched_getaffinity(0)) or 1
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


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


def hash_password(password: str, scheme: str = "bcrypt", cost: int | None = None) -> str:
    """The hash the portal stores, in the format of ``scheme`` (``portal.password_scheme``).

    ``bcrypt`` gives ``$2b$12$...``; ``bcrypt_2y`` the same hash with the ``$2y$`` prefix
    that PHP's ``password_hash`` writes; ``argon2id`` gives ``$argon2id$v=19$m=65536,t=3,
    p=4$...`` (argon2-cffi); ``pbkdf2_sha256`` gives Django's
    ``pbkdf2_sha256$<iterations>$<salt>$<base64 digest>``. ``cost`` is bcrypt's rounds
    (``BCRYPT_ROUNDS`` when None) or argon2id's passes (``ARGON2_PASSES`` when None); the
    other schemes ignore it. Raises ``PasswordRejected`` (without the password) for a
    password bcrypt cannot take, ``ConfigError`` for an unknown scheme.
    """
    if scheme in ("bcrypt", "bcrypt_2y"):
        hashed = _bcrypt(password, BCRYPT_ROUNDS if cost is None else cost)
        return "$2y$" + hashed[4:] if scheme == "bcrypt_2y" else hashed
    if scheme == "argon2id":
        return _argon2id_hasher(ARGON2_PASSES if cost is None else cost).hash(password)
    if scheme == "pbkdf2_sha256":
        salt = secrets.token_hex(11)
        return _pbkdf2(password, salt, PBKDF2_ITERATIONS)
    choices = ", ".join(PASSWORD_SCHEMES)
    raise ConfigError([f"portal.password_scheme: must be one of {choices} (got {scheme!r})"])


def verify_password(password: str, hashed: str) -> bool:
    """Whether ``password`` matches ``hashed`` (any scheme); False for unknown formats.

    A ``$2y$`` hash is checked as PHP does: PHP's ``$2y$`` is the corrected algorithm that
    ``$2b$`` names, so it is verified as ``$2b$`` with the rest of the hash unchanged.
    """
    if hashed.startswith(("$2a$", "$2b$", "$2y$")):
        if hashed.startswith("$2y$"):
            hashed = "$2b$" + hashed[4:]
        import bcrypt

        try:
            return bcrypt.checkpw(password.encode("utf-8"), hashed.encode("ascii"))
        except ValueError:  # over 72 bytes, or a malformed hash
            return False
    if hashed.startswith("$argon2id$"):
        from argon2.exceptions import Argon2Error, InvalidHashError

        try:
            return bool(_argon2id_hasher(ARGON2_PASSES).verify(hashed, password))
        except (Argon2Error, InvalidHashError):
            return False
    if hashed.startswith("pbkdf2_sha256$"):
        try:
            _, iterations, salt, _ = hashed.split("$")
            expected = _pbkdf2(password, salt, int(iterations))
        except ValueError:
            return False
        return hmac.compare_digest(expected.encode("ascii"), hashed.encode("ascii"))
    return False


def _bcrypt(password: str, rounds: int) -> str:
    secret = password.encode("utf-8")
    if len(secret) > BCRYPT_MAX_BYTES:
        message = f"a bcrypt password cannot be longer than {BCRYPT_MAX_BYTES} bytes"
        raise PasswordRejected(message)
    if not BCRYPT_MIN_ROUNDS <= rounds <= BCRYPT_MAX_ROUNDS:
        message = (
            f"portal.password_cost: bcrypt takes {BCRYPT_MIN_ROUNDS} to {BCRYPT_MAX_ROUNDS} "
            f"rounds (got {rounds})"
        )
        raise ConfigError([message])
    import bcrypt

    return bcrypt.hashpw(secret, bcrypt.gensalt(rounds)).decode("ascii")


def _argon2id_hasher(passes: int) -> PasswordHasher:
    # Imported here: only portals configured for argon2id load the library.
    from argon2 import PasswordHasher, Type

    return PasswordHasher(
        time_cost=passes,
        memory_cost=ARGON2_MEMORY_KIB,
        parallelism=ARGON2_LANES,
        type=Type.ID,
    )


def _pbkdf2(password: str, salt: str, iterations: int) -> str:
    digest = hashlib.pbkdf2_hmac("sha256", password.encode("utf-8"), salt.encode(), iterations)
    encoded = base64.b64encode(digest).decode("ascii")
    return f"pbkdf2_sha256${iterations}${salt}${encoded}"
