"""A real SMTP server (aiosmtpd) on a free loopback port, for the mail tests.

``Recorder`` is the server's handler: it records what it accepted and can misbehave on
purpose (answer 451 for a while, 550 for some recipients, hang up on NOOP), so the
transports and the mailer meet the real protocol, not a mock.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

USER = "syncd"
SECRET = "Smtp-Secret-4u7"  # noqa: S105 - the test server's credential, nothing real


@dataclass
class Recorder:
    """An aiosmtpd handler (hooks named as aiosmtpd wants) that records and misbehaves."""

    defer: int = 0  # answer 451 to the next N messages
    reject: set[str] = field(default_factory=set)  # answer 550 to these recipients
    drop_on_noop: bool = False  # hang up when the client next probes with NOOP
    accepted: list[tuple[str, list[str], bytes]] = field(default_factory=list)
    peers: list[Any] = field(default_factory=list)  # one entry per TCP connection seen

    async def handle_MAIL(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: Any
    ) -> str:
        if session.peer not in self.peers:
            self.peers.append(session.peer)
        envelope.mail_from = address
        return "250 OK"

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: Any
    ) -> str:
        if address in self.reject:
            return f"550 5.1.1 <{address}>: Recipient address rejected: User unknown"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        if self.defer > 0:
            self.defer -= 1
            return "451 4.3.0 Temporary local problem, try again later"
        assert isinstance(envelope.content, bytes)
        self.accepted.append((str(envelope.mail_from), list(envelope.rcpt_tos), envelope.content))
        return "250 2.0.0 Ok: queued"

    async def handle_NOOP(
        self, server: SMTP, session: Session, envelope: Envelope, arg: str
    ) -> str:
        if self.drop_on_noop:
            self.drop_on_noop = False
            assert server.transport is not None
            server.transport.close()
        return "250 OK"


def authenticate(
    server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any
) -> AuthResult:
    ok = isinstance(data, LoginPassword) and (data.login, data.password) == (
        USER.encode(),
        SECRET.encode(),
    )
    return AuthResult(success=ok, handled=False)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@dataclass
class Server:
    handler: Recorder
    port: int


@contextmanager
def running(handler: Recorder, **kwargs: Any) -> Iterator[Server]:
    """An aiosmtpd server with ``handler`` and AUTH on a free loopback port, then stopped."""
    port = free_port()
    controller = Controller(
        handler,
        hostname="127.0.0.1",
        port=port,
        authenticator=authenticate,
        auth_require_tls=False,
        **kwargs,
    )
    controller.start()
    try:
        yield Server(handler, port)
    finally:
        controller.stop()
