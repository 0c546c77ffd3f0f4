"""Helpers for the mail tests: a config section for the loopback SMTP server, a test clock,
and the received mails parsed the way a mail client sees them."""

from __future__ import annotations

import email
import email.policy
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from typing import Any

from syncd.mail.transports import RetryPolicy
from tests.smtp_server import SECRET, USER, Server

# Retries without waiting: the pauses are recorded, never slept.
FAST_RETRY = RetryPolicy(attempts=3, initial=1.0, maximum=4.0)


def smtp_section(server: Server, **extra: Any) -> dict[str, Any]:
    """``mail:`` for the test server: English, plain SMTP with AUTH, no send delay."""
    return {
        "transport": "smtp",
        "smtp": {
            "host": "127.0.0.1",
            "port": server.port,
            "security": "none",
            "username": USER,
            "password": SECRET,
            "timeout": "5s",
        },
        "language": "en",
        "send_delay": "0s",
        **extra,
    }


class Clock:
    """A settable UTC clock, for ``not_before`` and ``send_delay``."""

    def __init__(self, start: datetime | None = None) -> None:
        self.now = start or datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, delta: timedelta) -> None:
        self.now += delta


@dataclass(frozen=True, slots=True)
class Received:
    """One message the test server accepted, parsed."""

    to: list[str]
    message: EmailMessage
    raw: bytes

    @property
    def subject(self) -> str:
        return str(self.message["Subject"])

    def part(self, subtype: str) -> str:
        body = self.message.get_body((subtype,))
        assert body is not None, f"no text/{subtype} part"
        return str(body.get_content())

    @property
    def password(self) -> str:
        found = re.search(r"^Password: (\S+)", self.part("plain"), re.MULTILINE)
        assert found is not None, "no password in the mail"
        return found.group(1)


def received(server: Server) -> list[Received]:
    """Every message the server accepted so far, oldest first."""
    return [
        Received(
            rcpt,
            email.message_from_bytes(raw, policy=email.policy.default),
            raw,
        )
        for _, rcpt, raw in server.handler.accepted
    ]
