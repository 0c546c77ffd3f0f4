"""Builds the connectors, the state store and the clock a command needs from the config.

It knows no kind's arguments: the registry (``connectors.SOURCES``/``PORTALS``) names each
kind's class, and the class builds itself from its own config section (``from_config``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy.engine import make_url

from connectors import PORTALS, SOURCES
from syncd.clock import new_run_id, utcnow
from syncd.config import Config
from syncd.config.base import secret_value
from syncd.store import StateStore

if TYPE_CHECKING:
    from connectors.base import Portal, Source
    from syncd.mail.transports import MailTransport


@dataclass(slots=True)
class Services:
    """The open connections of one command; closed together by ``open_services``."""

    config: Config
    store: StateStore
    source: Source
    portal: Portal
    clock: Callable[[], datetime] = utcnow
    run_ids: Callable[[], str] = field(default=new_run_id)


def make_source(config: Config) -> Source:
    """The configured ERP connector (its module, and so its driver, imported only now)."""
    cls = SOURCES[config.source.kind].load_connector()
    source: Source = cls.from_config(config.source)
    return source


def make_portal(config: Config, clock: Callable[[], datetime] = utcnow) -> Portal:
    """The configured portal connector."""
    cls = PORTALS[config.portal.kind].load_connector()
    portal: Portal = cls.from_config(config.portal, clock=clock)
    return portal


def open_store(config: Config, clock: Callable[[], datetime] = utcnow) -> StateStore:
    """The state store, migrated to the current schema (migrations run on every start)."""
    url = config.state.url
    password = secret_value(config.state.password)
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
    from syncd.mail.transports import FileTransport, SmtpTransport

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
        password=secret_value(smtp.password),
        timeout=smtp.timeout.total_seconds(),
        rate_limit=mail.rate_limit,
    )
