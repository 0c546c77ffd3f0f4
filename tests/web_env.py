"""The support console for the web tests: the demo ERP synced once, served by a real uvicorn
on a free loopback port, and ``Visitor``, one person's cookie jar that reads each page's
CSRF token the way a browser submits the form it shows.

``console_site`` serves it with ``syncd.web.server.BackgroundConsole`` (the same thread
``syncd run`` starts), so the tests go through the real server, sessions and headers.
"""

from __future__ import annotations

import io
import re
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path
from typing import Any

import requests
import sqlalchemy as sa
import yaml

from syncd.config import Config, load_config
from syncd.demo import DEMO_PASSWORD, DEMO_USERS, run_demo

ADMIN, SUPPORT, AGNIESZKA, MICHAL = (email for _, email, _ in DEMO_USERS)
NAMES = {email: name for name, email, _ in DEMO_USERS}
ZURAW_KEY = "101"  # Przedsiębiorstwo Handlowe „Żuraw”: Agnieszka Zielińska's customer
KRAKBUD_KEY = "102"  # Krakbud S.A.: Michał Łukaszewicz's customer
CSRF = re.compile(r'name="csrf" value="([^"]+)"')


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def build_synced_demo(directory: Path, **web: Any) -> Path:
    """The demo (ERP, portal, state, outbox) synced once; ``web`` overrides ``web`` keys."""
    run_demo(directory, as_json=True, out=io.StringIO())
    config = directory / "config.yaml"
    data = yaml.safe_load(config.read_text(encoding="utf-8"))
    data["web"].update({"listen": f"127.0.0.1:{free_port()}", **web})
    config.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return config


@dataclass
class Site:
    """A running console and the demo behind it."""

    url: str
    config: Config
    directory: Path

    def visitor(self, who: str | None = None) -> Visitor:
        """A new visitor, signed in as ``who`` (an e-mail of ``DEMO_USERS``) when given."""
        visitor = Visitor(self.url)
        if who is not None:
            answer = visitor.login(who)
            assert answer.status_code == 200, answer.text[:500]
            assert "/login" not in answer.url
        return visitor

    def state(self, sql: str, **params: Any) -> list[tuple[Any, ...]]:
        """Rows of the state store (bindings, audit, outbox) straight from SQLite."""
        return _rows(self.directory / "state.db", sql, params)

    def portal(self, sql: str, **params: Any) -> list[tuple[Any, ...]]:
        return _rows(self.directory / "portal.db", sql, params)

    def emails(self) -> list[str]:
        """Each .eml of the outbox directory as its recipient and decoded plain-text part."""
        found = []
        for path in sorted((self.directory / "outbox").glob("*.eml")):
            message = BytesParser(policy=policy.default).parsebytes(path.read_bytes())
            body = message.get_body(("plain",))
            text = body.get_content() if isinstance(body, EmailMessage) else ""
            found.append(f"To: {message['To']}\n\n{text}")
        return found

    def snapshot(self) -> tuple[Any, ...]:
        """Everything an action could change: accounts, bindings, audit, outbox, mail files."""
        return (
            self.portal("SELECT id, login, status, block_reason, password_hash FROM b2b_account"),
            self.state("SELECT * FROM syncd_binding ORDER BY contractor_key"),
            self.state("SELECT count(*) FROM syncd_audit"),
            self.state("SELECT count(*) FROM syncd_outbox"),
            len(self.emails()),
        )


def _rows(path: Path, sql: str, params: dict[str, Any]) -> list[tuple[Any, ...]]:
    engine = sa.create_engine(f"sqlite:///{path}")
    try:
        with engine.connect() as connection:
            return [tuple(row) for row in connection.execute(sa.text(sql), params)]
    finally:
        engine.dispose()


class Visitor:
    """One person's session: cookies kept, the last page's CSRF token remembered."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.http = requests.Session()
        self.token: str | None = None
        self.pages: list[str] = []  # every page this visitor was shown

    def get(self, path: str, **params: str) -> requests.Response:
        answer = self.http.get(self.url + path, params=params, timeout=30)
        self._seen(answer)
        return answer

    def post(
        self, path: str, data: dict[str, str], *, csrf: str | None = None
    ) -> requests.Response:
        """Submit a form with the token of the page last shown (or ``csrf``, to forge one)."""
        form = {"csrf": csrf if csrf is not None else (self.token or ""), **data}
        answer = self.http.post(self.url + path, data=form, timeout=60)
        self._seen(answer)
        return answer

    def login(self, who: str, password: str = DEMO_PASSWORD) -> requests.Response:
        self.get("/login")
        return self.post("/login", {"who": who, "password": password, "next": "/"})

    def _seen(self, answer: requests.Response) -> None:
        self.pages.append(answer.text)
        found = CSRF.search(answer.text)
        if found:
            self.token = found.group(1)


@contextmanager
def console_site(directory: Path, **web: Any) -> Iterator[Site]:
    """The synced demo in ``directory``, its console served on a free loopback port."""
    from syncd.web.server import BackgroundConsole

    config = load_config(build_synced_demo(directory, **web))
    console = BackgroundConsole(config)
    try:
        yield Site(f"http://{config.web.listen}", config, directory)
    finally:
        console.close()
