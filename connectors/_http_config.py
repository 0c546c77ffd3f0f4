"""The keys every HTTP portal kind (``scim``, ``rest``) shares: where, who, how fast.

Import-cheap (pydantic and ``syncd.config.base`` only): a kind's ``config.py`` subclasses
``HttpPortalSection`` and the registry imports it on every config parse.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any

from pydantic import AfterValidator, model_validator

from syncd.config.base import (
    NO_VALUE,
    FieldProblems,
    HttpUrl,
    PortalSection,
    PositiveDuration,
    Secret,
    Text,
)


def _concurrency(value: int) -> int:
    if not 1 <= value <= 64:
        raise ValueError("must be a whole number from 1 to 64 (requests in flight at once)")
    return value


class HttpPortalSection(PortalSection):
    """A portal reached over HTTP(S): its base URL, a bearer token or basic auth, and how
    hard syncd may push it (``concurrency`` requests in flight, ``retry_budget`` of waiting
    for 429/5xx/timeouts per cycle before the cycle stops with the portal unavailable)."""

    url: HttpUrl
    token: Secret = None  # bearer token (or the API key's value, for kinds that take one)
    username: Text | None = None  # basic auth, with password
    password: Secret = None
    timeout: PositiveDuration = timedelta(seconds=30)
    concurrency: Annotated[int, AfterValidator(_concurrency)] = 4
    retry_budget: PositiveDuration = timedelta(minutes=2)

    @property
    def safe_url(self) -> str:
        return self.url

    @model_validator(mode="after")
    def _credentials(self) -> Any:
        problems: list[tuple[tuple[str, ...], str, Any]] = []
        if self.token is None:
            if self.username is None and self.password is None:
                message = f"kind {self.kind} needs token, or username and password"
                problems.append((("token",), message, NO_VALUE))
            elif self.username is None or self.password is None:
                missing = "username" if self.username is None else "password"
                given = "password" if missing == "username" else "username"
                message = f"required with {given} (or give token instead)"
                problems.append(((missing,), message, NO_VALUE))
        if problems:
            raise FieldProblems(problems)
        return self
