"""Who may use the console: the people of ``web.users``, their password hashes, the login limit.

A person signs in with their name or e-mail and a password checked against the argon2 (or
bcrypt) hash in the YAML, or arrives through a reverse proxy that puts their name or
e-mail in ``web.trusted_header``. A salesperson's e-mail is what picks their customers:
the contractors whose salesperson (``owner_email``) it is, compared without case.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from email.utils import parseaddr

import bcrypt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from syncd.config import WebConfig
from syncd.config.sections import Role, WebUser

_HASHER = PasswordHasher()
# Checked when nobody has the name typed, so a wrong name takes as long as a wrong password.
_DUMMY_HASH = _HASHER.hash("no such person: this hash only evens out the timing")


def hash_password(password: str) -> str:
    """The argon2id hash ``web.users[].password_hash`` holds (``syncd web hash-password``)."""
    return _HASHER.hash(password)


def _matches(password: str, stored: str) -> bool:
    if stored.startswith("$argon2"):
        try:
            return _HASHER.verify(stored, password)
        except (VerificationError, InvalidHashError):
            return False
    try:
        return bcrypt.checkpw(password.encode("utf-8"), stored.encode("ascii"))
    except ValueError:
        return False


@dataclass(frozen=True, slots=True)
class Person:
    """A signed-in user, as the pages need them; never holds the hash."""

    name: str
    email: str  # the bare address, lower-case
    role: Role
    language: str
    timezone: str

    @property
    def is_admin(self) -> bool:
        return self.role is Role.ADMIN

    @property
    def is_salesperson(self) -> bool:
        return self.role is Role.SALESPERSON

    def sees(self, owner_email: object) -> bool:
        """Whether this person may see and act on a contractor with this salesperson."""
        if not self.is_salesperson:
            return True
        return isinstance(owner_email, str) and owner_email.strip().casefold() == self.email


class People:
    """The people of ``web.users``, looked up by name or e-mail, without case."""

    def __init__(self, web: WebConfig, *, default_language: str) -> None:
        self._users: dict[str, WebUser] = {}
        for user in web.users:
            self._users[user.name.casefold()] = user
            self._users[_address(user.email)] = user
        self.default_language = web.language.value if web.language else default_language
        self._timezone = web.timezone

    def __bool__(self) -> bool:
        return bool(self._users)

    def person(self, who: str) -> Person | None:
        """The person named ``who`` (name or e-mail), or None."""
        user = self._users.get(who.strip().casefold())
        if user is None:
            return None
        return Person(
            name=user.name,
            email=_address(user.email),
            role=user.role,
            language=user.language.value if user.language else self.default_language,
            timezone=user.timezone or self._timezone,
        )

    def authenticate(self, who: str, password: str) -> Person | None:
        """The person when ``password`` matches their hash; None otherwise (same time)."""
        user = self._users.get(who.strip().casefold())
        stored = user.password_hash.get_secret_value() if user and user.password_hash else None
        if not _matches(password, stored or _DUMMY_HASH) or stored is None:
            return None
        return self.person(who)

    def stamp(self, name: str) -> str:
        """A short digest of the person's hash: a session made before the hash changed (a new
        password, or the user removed) no longer matches, so it ends."""
        user = self._users.get(name.casefold())
        stored = user.password_hash.get_secret_value() if user and user.password_hash else ""
        return hashlib.sha256(f"{name}\0{stored}".encode()).hexdigest()[:16]


def _address(email: str) -> str:
    return (parseaddr(email)[1] or email).strip().casefold()


class LoginLimiter:
    """Failed sign-ins per IP address and per name typed, over a sliding window.

    ``wait(keys)`` says how many seconds are left before any of the keys may try again;
    a success clears the name's count (not the address's: a guesser who knows one
    password must not reset their budget for the others).
    """

    def __init__(
        self,
        *,
        per_user: int = 5,
        per_address: int = 20,
        window_s: float = 900.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._limits = {"user": per_user, "ip": per_address}
        self._window = window_s
        self._clock = clock
        self._failures: dict[str, list[float]] = {}
        self._lock = threading.Lock()

    def wait(self, keys: Iterable[str]) -> int:
        """Seconds until every key may try again; 0 when none is over its limit."""
        now = self._clock()
        longest = 0.0
        with self._lock:
            for key in keys:
                recent = self._recent(key, now)
                limit = self._limits[key.split(":", 1)[0]]
                if len(recent) >= limit:
                    longest = max(longest, recent[-limit] + self._window - now)
        return max(1, int(longest + 0.999)) if longest > 0 else 0

    def failed(self, keys: Iterable[str]) -> None:
        now = self._clock()
        with self._lock:
            if len(self._failures) > 10_000:  # bounded memory: forget whoever stopped trying
                for key in list(self._failures):
                    self._recent(key, now)
            for key in keys:
                self._failures.setdefault(key, []).append(now)

    def succeeded(self, user_key: str) -> None:
        with self._lock:
            self._failures.pop(user_key, None)

    def _recent(self, key: str, now: float) -> list[float]:
        recent = [at for at in self._failures.get(key, []) if at > now - self._window]
        if recent:
            self._failures[key] = recent
        else:
            self._failures.pop(key, None)
        return recent


def limiter_keys(address: str, who: str) -> tuple[str, str]:
    """The rate limiter's keys for one attempt: the client's address and the name typed."""
    return f"ip:{address}", f"user:{who.strip().casefold()}"
