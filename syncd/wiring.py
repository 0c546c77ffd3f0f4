"""Builds the connectors, the state store and the clock a command needs from the config."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy.engine import make_url

from connectors import PORTALS, SOURCES
from connectors.base import Portal, Source
from syncd.config import Config
from syncd.errors import ConfigError
from syncd.store import StateStore
from syncd.transports import FileTransport, MailTransport, SmtpTransport


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(slots=True)
class Services:
    """The open connections of one command; closed together by ``open_services``."""

    config: Config
    store: StateStore
    source: Source
    portal: Portal
    clock: Callable[[], datetime]


def _secret(value: object) -> str | None:
    if value is None:
        return None
    getter = getattr(value, "get_secret_value", None)
    return str(getter()) if getter else str(value)


def check_kinds(config: Config) -> None:
    """Reject kinds the configuration accepts but this version does not build yet."""
    problems = []
    for section, kind, registry in (
        ("source", config.source.kind.value, SOURCES),
        ("portal", config.portal.kind.value, PORTALS),
    ):
        if kind not in registry:
            available = ", ".join(sorted(registry))
            problems.append(
                f"{section}.kind: {kind!r} is not available in this version yet "
                f"(available: {available})"
            )
    if problems:
        raise ConfigError(problems)


def make_source(config: Config) -> Source:
    """The configured ERP connector."""
    check_kinds(config)
    factory = SOURCES[config.source.kind.value]
    return factory(
        _secret(config.source.url) or "",
        feature=config.source.feature,
        password=_secret(config.source.password),
    )


def make_portal(config: Config, clock: Callable[[], datetime] = utcnow) -> Portal:
    """The configured portal connector."""
    check_kinds(config)
    factory = PORTALS[config.portal.kind.value]
    return factory(
        _secret(config.portal.url) or "", password=_secret(config.portal.password), clock=clock
    )


def open_store(config: Config, clock: Callable[[], datetime] = utcnow) -> StateStore:
    """The state store, migrated to the current schema (migrations run on every start)."""
    url = config.state.url
    password = _secret(config.state.password)
    if password is not None:
        url = make_url(url).set(password=password).render_as_string(hide_password=False)
    store = StateStore.open(url, clock=clock)
    try:
        store.migrate()
    except BaseException:
        store.close()
        raise
    return store


@contextmanager
def open_services(config: Config, clock: Callable[[], datetime] = utcnow) -> Iterator[Services]:
    """Open everything a cycle needs, and close it all on the way out, whatever happens."""
    source = make_source(config)
    try:
        portal = make_portal(config, clock)
        try:
            store = open_store(config, clock)
            try:
                yield Services(config, store, source, portal, clock)
            finally:
                store.close()
        finally:
            portal.close()
    finally:
        source.close()


def make_transport(config: Config) -> MailTransport:
    """The configured mail transport: an SMTP server, or a directory of ``.eml`` files."""
    mail = config.mail
    if mail.transport.value == "file":
        assert mail.directory is not None  # the config guarantees it
        return FileTransport(mail.directory)
    smtp = mail.smtp
    assert smtp.host is not None  # the config guarantees it
    return SmtpTransport(
        smtp.host,
        smtp.port,
        security=smtp.security.value,
        username=smtp.username,
        password=_secret(smtp.password),
        timeout=smtp.timeout.total_seconds(),
        rate_limit=mail.rate_limit,
    )
