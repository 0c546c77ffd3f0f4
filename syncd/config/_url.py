"""SQLAlchemy's database URL grammar, without importing SQLAlchemy.

Loading the configuration checks every ``url`` and collects its secrets, and ``syncd
status``, ``check-config`` and ``--help`` load the configuration: importing SQLAlchemy for
``make_url`` alone cost them a third of a second. ``parse_database_url`` and ``render`` are
``sqlalchemy.engine.url``'s ``_parse_url`` and ``URL.render_as_string`` (SQLAlchemy 2.1),
line for line; ``tests/unit/test_config_url.py`` checks with hypothesis that both agree
with SQLAlchemy's own on any string, so an upgrade that changes the grammar fails there.

The pattern and the rendering follow SQLAlchemy's code: Copyright (C) 2005-2026 the
SQLAlchemy authors and contributors, released under the MIT License.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, quote, quote_plus, unquote

# sqlalchemy/engine/url.py, _parse_url.
_PATTERN = re.compile(
    r"""
        (?P<name>[\w\+]+)://
        (?:
            (?P<username>[^:/]*)
            (?::(?P<password>[^@]*))?
        @)?
        (?:
            (?:
                \[(?P<ipv6host>[^/\?]+)\] |
                (?P<ipv4host>[^/:\?]+)
            )?
            (?::(?P<port>[^/\?]*))?
        )?
        (?:/(?P<database>[^\?]*))?
        (?:\?(?P<query>.*))?
    """,
    re.X,
)


class UrlError(ValueError):
    """The text is not a database URL (SQLAlchemy raises ``ArgumentError`` for it)."""


@dataclass(frozen=True, slots=True)
class DatabaseUrl:
    """The parts of a database URL, as ``sqlalchemy.engine.URL`` holds them."""

    drivername: str
    username: str | None = None
    password: str | None = None
    host: str | None = None
    port: int | None = None
    database: str | None = None
    query: dict[str, str | tuple[str, ...]] = field(default_factory=dict)

    @property
    def backend(self) -> str:
        """``URL.get_backend_name()``: ``postgresql`` of ``postgresql+psycopg``."""
        return self.drivername.partition("+")[0]


def parse_database_url(text: str) -> DatabaseUrl:
    """``sqlalchemy.make_url(text)``'s parts. Raises ``UrlError`` where SQLAlchemy raises
    ``ArgumentError``, and ``ValueError`` for a port that is not a number (as it does)."""
    match = _PATTERN.match(text)
    if match is None:
        message = "Could not parse SQLAlchemy URL from given URL string"
        raise UrlError(message)
    parts = match.groupdict()
    query: dict[str, str | tuple[str, ...]] = {}
    if parts["query"] is not None:
        for key, value in parse_qsl(parts["query"]):
            earlier = query.get(key)
            if earlier is None:
                query[key] = value
            else:
                query[key] = (*((earlier,) if isinstance(earlier, str) else earlier), value)
    username, password, database = (
        None if parts[name] is None else unquote(parts[name])
        for name in ("username", "password", "database")
    )
    return DatabaseUrl(
        drivername=parts["name"],
        username=username,
        password=password,
        host=parts["ipv4host"] or parts["ipv6host"],
        port=None if parts["port"] is None else int(parts["port"]),  # "h:/db" raises too
        database=database,
        query=query,
    )


def render(url: DatabaseUrl, *, hide_password: bool = True) -> str:
    """``URL.render_as_string``: the URL as text, its password as ``***`` unless asked."""
    text = url.drivername + "://"
    if url.username is not None:
        text += quote(url.username, safe=" +")
        if url.password is not None:
            text += ":" + ("***" if hide_password else quote(url.password, safe=" +"))
        text += "@"
    if url.host is not None:
        text += f"[{url.host}]" if ":" in url.host else url.host
    if url.port is not None:
        text += ":" + str(url.port)
    if url.database is not None:
        text += "/" + quote(url.database, safe=" +/")
    if url.query:
        text += "?" + "&".join(
            f"{quote_plus(key)}={quote_plus(element)}"
            for key in sorted(url.query)
            for element in _as_tuple(url.query[key])
        )
    return text


def _as_tuple(value: str | tuple[str, ...]) -> tuple[str, ...]:
    return (value,) if isinstance(value, str) else value
