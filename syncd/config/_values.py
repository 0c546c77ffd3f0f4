"""Parsers for the configuration's scalar values: durations, limits, addresses, URLs, enums.

Each parser turns what YAML (or an environment variable) gave into a typed value, or raises
``ValueError`` with a message that says what a valid value looks like. The models in
``syncd.config`` attach them with ``PlainValidator`` so that pydantic's own coercions (ISO
8601 durations, ``"1"`` as ``True``...) never surprise an admin.
"""

from __future__ import annotations

import ipaddress
import math
import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import timedelta
from decimal import Decimal, InvalidOperation
from email.utils import getaddresses
from enum import StrEnum
from typing import TypeVar
from urllib.parse import urlsplit

from syncd._email import plain_login
from syncd.config._url import UrlError, parse_database_url, render


class SecretMarker:
    """Marks a field as secret in the schema: never printed, may be given as ``<key>_file``."""

    def __repr__(self) -> str:
        return "SECRET"


SECRET = SecretMarker()

E = TypeVar("E", bound=StrEnum)

# 1d, 2h, 5m, 30s, 1h30m, 1.5h; parts in this order, each at most once.
_DURATION = re.compile(
    r"(?:(?P<d>\d+(?:\.\d+)?)\s*d)?\s*(?:(?P<h>\d+(?:\.\d+)?)\s*h)?\s*"
    r"(?:(?P<m>\d+(?:\.\d+)?)\s*m)?\s*(?:(?P<s>\d+(?:\.\d+)?)\s*s)?"
)
_UNIT_SECONDS = {"d": 86400, "h": 3600, "m": 60, "s": 1}
_DURATION_HINT = "must be a duration like 30s, 5m, 2h, 1d or 1h30m"


def parse_duration(value: object) -> timedelta:
    """``"1h30m"`` -> ``timedelta(minutes=90)``; a bare number means seconds."""
    if isinstance(value, timedelta):
        seconds = Decimal(str(value.total_seconds()))
    elif isinstance(value, bool):
        raise ValueError(_DURATION_HINT)
    elif isinstance(value, int | float):
        seconds = Decimal(str(value))
    elif isinstance(value, str):
        seconds = _duration_seconds(value.strip().lower())
    else:
        raise ValueError(_DURATION_HINT)
    if seconds < 0:
        raise ValueError(_DURATION_HINT + " (not negative)")
    return timedelta(seconds=float(seconds))


def parse_positive_duration(value: object) -> timedelta:
    """A duration that must be longer than zero (an interval, a timeout)."""
    duration = parse_duration(value)
    if duration <= timedelta(0):
        raise ValueError(_DURATION_HINT + ", longer than zero")
    return duration


def _duration_seconds(text: str) -> Decimal:
    try:
        return Decimal(text)  # "300", e.g. from an environment variable
    except InvalidOperation:
        pass
    match = _DURATION.fullmatch(text)
    if not text or match is None or not any(match.groups()):
        raise ValueError(_DURATION_HINT)
    return sum(
        (
            Decimal(amount) * _UNIT_SECONDS[unit]
            for unit, amount in match.groupdict().items()
            if amount is not None
        ),
        Decimal(0),
    )


def format_duration(value: timedelta) -> str:
    """The canonical spelling: ``timedelta(minutes=90)`` -> ``"1h30m"``, zero -> ``"0s"``."""
    micro = value // timedelta(microseconds=1)
    whole, fraction = divmod(micro, 1_000_000)
    days, rest = divmod(whole, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, seconds = divmod(rest, 60)
    text = "".join(f"{n}{unit}" for n, unit in ((days, "d"), (hours, "h"), (minutes, "m")) if n)
    if fraction:
        text += f"{seconds}.{fraction:06d}".rstrip("0") + "s"
    elif seconds or not text:
        text += f"{seconds}s"
    return text


@dataclass(frozen=True, slots=True)
class RemovalLimit:
    """``safety.max_removals``: at most ``count`` removals per cycle, or ``percent`` of all.

    A percentage is rounded up, so ``10%`` of 5 managed accounts still allows one removal.
    """

    count: int | None = None
    percent: Decimal | None = None

    def limit(self, managed: int) -> int:
        """How many removals one cycle may apply when ``managed`` accounts are bound."""
        if self.percent is None:
            return self.count or 0
        return math.ceil(Decimal(managed) * self.percent / 100)

    def __str__(self) -> str:
        if self.percent is None:
            return str(self.count)
        return f"{self.percent.normalize():f}%"


_LIMIT_HINT = "must be a count like 25 or a percentage like 10%"


def parse_removal_limit(value: object) -> RemovalLimit:
    """``25`` -> at most 25 removals; ``"10%"`` -> at most 10 % of the managed accounts."""
    if isinstance(value, RemovalLimit):
        return value
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ValueError(_LIMIT_HINT)
    text = str(value).strip()
    if text.endswith("%"):
        try:
            percent = Decimal(text[:-1].strip())
        except InvalidOperation:
            raise ValueError(_LIMIT_HINT) from None
        if not percent.is_finite() or not 0 <= percent <= 100:
            raise ValueError("must be a percentage from 0% to 100%")
        return RemovalLimit(percent=percent)
    if not re.fullmatch(r"\d+", text):
        raise ValueError(_LIMIT_HINT + (" (not negative)" if text.startswith("-") else ""))
    return RemovalLimit(count=int(text))


@dataclass(frozen=True, slots=True)
class ListenAddress:
    """``observability.listen``: where /metrics and /healthz are served."""

    host: str
    port: int

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


_LISTEN_HINT = "must be host:port like 127.0.0.1:9464 or [::1]:9464"
_HOSTNAME = re.compile(r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)(?:\.(?!-)[A-Za-z0-9-]{1,63}(?<!-))*")


def parse_listen(value: object) -> ListenAddress:
    """``"127.0.0.1:9464"`` -> ``ListenAddress("127.0.0.1", 9464)``; IPv6 in brackets."""
    if isinstance(value, ListenAddress):
        return value
    if not isinstance(value, str):
        raise ValueError(_LISTEN_HINT)
    match = re.fullmatch(
        r"\[(?P<v6>[^\]]+)\]:(?P<p6>\d+)|(?P<host>[^:\[\]]+):(?P<port>\d+)", value.strip()
    )
    if match is None:
        raise ValueError(_LISTEN_HINT)
    host = match["v6"] or match["host"]
    port = int(match["p6"] or match["port"])
    if not 1 <= port <= 65535:
        raise ValueError(_LISTEN_HINT + " (port 1-65535)")
    try:
        ipaddress.ip_address(host)
    except ValueError:
        if match["v6"] or not _HOSTNAME.fullmatch(host):
            raise ValueError(_LISTEN_HINT) from None
    return ListenAddress(host, port)


def parse_mailbox(value: object) -> str:
    """``"B2B <b2b@example.com>"`` or ``"b2b@example.com"``, checked for syntax (no DNS)."""
    if not isinstance(value, str):
        raise ValueError("must be an e-mail address like 'B2B <b2b@example.com>'")
    text = value.strip()
    addresses = getaddresses([text])
    if len(addresses) != 1 or not addresses[0][1]:
        raise ValueError("must be one e-mail address like 'B2B <b2b@example.com>'")
    if plain_login(addresses[0][1]) is not None:
        return text  # email-validator accepts it (syncd._email): no need to load it
    from email_validator import EmailNotValidError, validate_email

    try:
        validate_email(addresses[0][1], check_deliverability=False)
    except EmailNotValidError as error:
        reason = str(error).rstrip(".")
        reason = reason[:1].lower() + reason[1:]
        message = f"must be an e-mail address like 'B2B <b2b@example.com>': {reason}"
        raise ValueError(message) from None
    return text


def parse_crontab(value: object) -> str:
    """A standard 5-field crontab line (minute hour day month weekday), as APScheduler reads it."""
    hint = "must be a 5-field crontab like '0 3 * * *' (minute hour day month weekday)"
    if not isinstance(value, str):
        raise ValueError(hint)
    text = " ".join(value.split())
    # Imported here: APScheduler (and the asyncio it brings) is the daemon's, and only a
    # configuration that sets a crontab needs its parser to check it.
    from apscheduler.triggers.cron import CronTrigger  # type: ignore[import-untyped]

    try:
        CronTrigger.from_crontab(text, timezone="UTC")
    except ValueError as error:
        raise ValueError(f"{hint}: {error}") from None
    return text


_AMBIGUOUS_AT = (
    "has more than one @ before the host: percent-encode an @ in the user or password as %40, "
    "or give the password separately (password or password_file)"
)


def _ambiguous_userinfo(url: str) -> bool:
    """True when ``user:p@ss@host`` leaves it unclear where the password ends."""
    authority = re.split(r"[/?#]", url.partition("://")[2], maxsplit=1)[0]
    return authority.count("@") > 1


def check_database_url(value: str) -> str:
    """Accept any URL SQLAlchemy can parse (``sqlite:///...``, ``mssql+pyodbc://...``)."""
    if _ambiguous_userinfo(value):
        raise ValueError(_AMBIGUOUS_AT)
    try:
        parse_database_url(value)
    except UrlError:
        raise ValueError(
            "must be an SQLAlchemy database URL like postgresql+psycopg://user@host/db"
        ) from None
    return value


def check_http_url(value: str) -> str:
    """Accept an absolute ``http://`` or ``https://`` URL."""
    if _ambiguous_userinfo(value):
        raise ValueError(_AMBIGUOUS_AT)
    parts = urlsplit(value)
    if parts.scheme not in {"http", "https"} or not parts.netloc:
        raise ValueError("must be an http:// or https:// URL like https://b2b.example.com")
    return value


# Query-string parameters whose values are credentials, in any URL.
_SECRET_PARAMS = {"password", "pwd", "passwd", "token", "access_token", "api_key", "secret"}
_ODBC_SECRET = re.compile(r"(?i)\b(pwd|password)\s*=\s*(\{[^}]*\}|[^;]*)")


def hide_url_secrets(url: str) -> str | None:
    """The URL with its password (and password-like query values) as ``***``; None if invalid.

    Covers ``user:password@`` and ODBC connection strings (``odbc_connect=...PWD=...``).
    """
    if _ambiguous_userinfo(url):
        return None
    try:
        parsed = parse_database_url(url)
    except UrlError:
        return None
    query: dict[str, str | tuple[str, ...]] = {}
    for key, values in parsed.query.items():
        items = (values,) if isinstance(values, str) else tuple(values)
        if key.lower() in _SECRET_PARAMS:
            items = tuple("***" for _ in items)
        elif key.lower() == "odbc_connect":
            items = tuple(_ODBC_SECRET.sub(r"\1=***", item) for item in items)
        query[key] = items[0] if len(items) == 1 else items
    if query != parsed.query:
        parsed = replace(parsed, query=query)
    elif parsed.password is None:
        return url  # nothing to hide: keep the admin's exact spelling
    return render(parsed, hide_password=True)


def url_secrets(url: str) -> list[str]:
    """The credential parts of a URL, so that messages can be scrubbed of them."""
    try:
        parsed = parse_database_url(url)
    except UrlError:
        return []
    try:
        raw_password = urlsplit(url).password  # as written, possibly %-encoded
    except ValueError:
        raw_password = None
    found = [str(parsed.password or ""), raw_password or ""]
    for key, values in parsed.query.items():
        items = (values,) if isinstance(values, str) else tuple(values)
        for item in items:
            if key.lower() in _SECRET_PARAMS:
                found.append(item)
            found.extend(m.group(2) for m in _ODBC_SECRET.finditer(item))
    return [secret for secret in found if secret]


def enum_parser(cls: type[E]) -> Callable[[object], E]:
    """A validator accepting a member's value (trimmed, any case) with a one-of message."""
    choices = ", ".join(member.value for member in cls)

    def parse(value: object) -> E:
        if isinstance(value, cls):
            return value
        if isinstance(value, str):
            for member in cls:
                if member.value == value.strip().lower():
                    return member
        raise ValueError(f"must be one of {choices}")

    return parse
