"""What the crash-consistency suite builds and looks at, behind syncd's back.

A loopback SMTP server that counts its open connections (after a kill the test waits for
the dead client's connection to close, an event, before comparing what the server accepted
with the outbox), views of the portal (the SQL portal's table, the REST test server's
users), and the GT-shaped ERP the test changes between kills, with the portal it should
end in (``Erp.expected``), worked out from how the test wrote it, not by syncd's mapping.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import sqlalchemy as sa
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP

from connectors.subiekt_gt.fake import GtWriter
from tests.bench._erp import FIRST_ID, ErpFacts, build_erp, edit_terms
from tests.daemon_support import contractor
from tests.smtp_server import Recorder, Server, authenticate, free_port

# -- an SMTP server that says when no connection is open --------------------------------


@dataclass
class CountingRecorder(Recorder):
    """A ``Recorder`` that also counts open connections, so that after a kill the test can
    wait (on an event, not a clock) until the dead client's connection is gone: only then
    can no more mail from it be accepted."""

    open: int = 0
    changed: threading.Condition = field(default_factory=threading.Condition)

    def wait_idle(self, timeout: float) -> None:
        with self.changed:
            if not self.changed.wait_for(lambda: self.open == 0, timeout):
                message = f"{self.open} SMTP connections still open after {timeout}s"
                raise AssertionError(message)


class _CountingSMTP(SMTP):
    def connection_made(self, transport: Any) -> None:
        handler = self.event_handler
        with handler.changed:
            handler.open += 1
        super().connection_made(transport)

    def connection_lost(self, error: Exception | None) -> None:
        try:
            super().connection_lost(error)
        finally:
            handler = self.event_handler
            with handler.changed:
                handler.open -= 1
                handler.changed.notify_all()


class _CountingController(Controller):  # type: ignore[misc] # aiosmtpd is untyped here
    def factory(self) -> SMTP:
        return _CountingSMTP(self.handler, **self.SMTP_kwargs)


@contextmanager
def counting_smtp() -> Iterator[Server]:
    """``tests.smtp_server.running`` with a ``CountingRecorder`` handler."""
    handler = CountingRecorder()
    port = free_port()
    controller = _CountingController(
        handler,
        hostname="127.0.0.1",
        port=port,
        authenticator=authenticate,
        auth_require_tls=False,
    )
    controller.start()
    try:
        yield Server(handler, port)
    finally:
        controller.stop()


# -- what the portal holds ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PortalAccount:
    id: str
    key: str | None
    login: str
    status: str


class PortalView(Protocol):
    """How the test looks at a portal behind syncd's back."""

    def writes(self) -> object:
        """A value that changes whenever the portal is written."""

    def accounts(self) -> list[PortalAccount]:
        """Every account the portal holds."""


class SqlPortalView:
    """The SQL portal's ``b2b_account`` table."""

    def __init__(self, url: str) -> None:
        self.engine = sa.create_engine(url)

    def writes(self) -> object:
        query = "SELECT count(*), max(id), max(updated_at) FROM b2b_account"
        try:
            with self.engine.connect() as conn:
                return tuple(conn.execute(sa.text(query)).one())
        except (sa.exc.ProgrammingError, sa.exc.OperationalError):
            return None  # the table is not there yet (syncd creates it at its first start)

    def accounts(self) -> list[PortalAccount]:
        query = "SELECT id, contractor_key, login, status FROM b2b_account"
        with self.engine.connect() as conn:
            rows = conn.execute(sa.text(query)).all()
        return [PortalAccount(str(r[0]), r[1], r[2], r[3]) for r in rows]

    def close(self) -> None:
        self.engine.dispose()


class RestPortalView:
    """The users of the in-process REST test server (``tests.rest_server``)."""

    def __init__(self, store: Any) -> None:
        self.store = store

    def writes(self) -> object:
        return self.store.count() - self.store.count("GET")

    def accounts(self) -> list[PortalAccount]:
        with self.store.lock:
            users = [(user_id, dict(user)) for user_id, user in self.store.users.items()]
        return [
            PortalAccount(
                str(user_id),
                (user.get("b2b") or {}).get("contractor_key"),
                user["username"],
                user["status"],
            )
            for user_id, user in users
        ]

    def close(self) -> None:
        pass


# -- the ERP the test changes between kills -----------------------------------------------


class Erp:
    """A GT ERP on SQLite built by ``tests.bench._erp``, and what it should become in the
    portal: ``expected`` maps each in-scope contractor with a valid, unique e-mail to its
    login, worked out here from how the test wrote it, not by syncd's mapping."""

    def __init__(self, path: Path, contractors: int) -> None:
        self.url = f"sqlite:///{path}"
        self.engine = sa.create_engine(self.url)
        self.facts: ErpFacts = build_erp(self.engine, contractors)
        self.expected: dict[str, str] = {}
        for kh_id in self.facts.clean_ids:
            index = kh_id - FIRST_ID
            self.expected[str(kh_id)] = f"zamowienia.{index}@firma-{index % 5000}.com.pl"
        self.next_id = FIRST_ID + contractors + 1000
        self.recent: list[int] = []  # added in the last round: likely still in flight
        self.renames = 0

    def add(self, count: int) -> None:
        added = list(range(self.next_id, self.next_id + count))
        self.next_id += count
        with self.engine.begin() as conn:
            GtWriter(conn).add_many(contractor(kh_id) for kh_id in added)
        for kh_id in added:
            self.expected[str(kh_id)] = f"k{kh_id}@firma.pl"
        self.recent = added

    def edit_terms(self, share: float) -> None:
        edit_terms(self.engine, self.facts, share)

    def change_email(self, kh_id: int) -> None:
        """A new e-mail in the ERP: the account's login changes (and a mail says so)."""
        self.renames += 1
        login = f"nowy.{self.renames}.{kh_id}@firma.pl"
        with self.engine.begin() as conn:
            GtWriter(conn).set_email(kh_id, login)
        self.expected[str(kh_id)] = login

    def drop(self, kh_ids: list[int]) -> None:
        """Take the feature away: the contractor leaves scope (its account is deleted)."""
        with self.engine.begin() as conn:
            writer = GtWriter(conn)
            for kh_id in kh_ids:
                writer.set_feature(kh_id, "b2b", present=False)
        for kh_id in kh_ids:
            self.expected.pop(str(kh_id), None)

    def close(self) -> None:
        self.engine.dispose()
