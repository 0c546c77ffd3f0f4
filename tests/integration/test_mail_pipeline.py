"""The password-mail pipeline: passwords set a chunk at a time while the chunk before is
sent, over one SMTP connection for the whole run (GT-shaped ERP, SQL portal, aiosmtpd)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from connectors.base import OpOutcome, Portal, PortalOp, SetPassword
from syncd.config import load_config
from syncd.errors import UnavailableError
from syncd.mail._rules import chunks
from syncd.mail.mailer import MailerOptions, send_due_mail
from syncd.passwords import verify_password
from syncd.wiring import open_services
from tests.gt_env import GtEnv, gt_env
from tests.mail_env import Clock, received, smtp_section
from tests.smtp_server import Server

pytestmark = pytest.mark.usefixtures("quick_bcrypt")

CHUNK = 3
EXTRA = 14  # with the GT test ERP's 4: 18 activation mails, 6 chunks of 3


class Watching:
    """A portal that notes, at each password call, how many ops it got and how many mails
    the SMTP server had accepted by then; everything else goes to the real portal."""

    def __init__(self, portal: Portal, server: Server) -> None:
        self._portal = portal
        self._server = server
        self.calls: list[tuple[int, int]] = []  # (SetPassword ops, mails accepted so far)

    def apply(self, ops: Sequence[PortalOp]) -> list[OpOutcome]:
        passwords = sum(isinstance(op, SetPassword) for op in ops)
        if passwords:
            self.calls.append((passwords, len(self._server.handler.accepted)))
        return self._portal.apply(ops)

    def __getattr__(self, name: str) -> object:
        return getattr(self._portal, name)


@pytest.fixture
def env(tmp_path: Path, capsys: pytest.CaptureFixture[str], smtp: Server) -> Iterator[GtEnv]:
    """The GT test ERP with 14 more contractors; mail due 5 minutes after the sync."""
    mail = {**smtp_section(smtp), "send_delay": "5m"}
    with gt_env(tmp_path, capsys, mail=mail) as environment:
        with environment.edit() as w:
            for n in range(EXTRA):
                name = f"Hurt {n} Sp. z o.o."
                w.add_contractor(100 + n, f"H{n}", name, email=f"k{n}@hurt.pl", features=["b2b"])
        assert environment.cli("sync").code == 0
        yield environment


def test_mails_leave_while_later_passwords_are_still_being_set(env: GtEnv, smtp: Server) -> None:
    """Chunks of 3: mail goes out before the last passwords are set, all on one connection,
    and every password verifies against the portal's hash."""
    clock = Clock()
    clock.advance(timedelta(hours=1))
    with open_services(load_config(env.config_path), clock) as services:
        watching = Watching(services.portal, smtp)
        services.portal = watching  # type: ignore[assignment]
        report = send_due_mail(services, options=MailerOptions(chunk=CHUNK))
    assert report.count("sent") == 4 + EXTRA
    assert [ops for ops, _ in watching.calls] == [CHUNK] * 6
    assert watching.calls[0][1] == 0  # nothing can go before the first chunk's passwords
    assert watching.calls[-1][1] >= 4 * CHUNK  # the last chunk is set after 4 were sent
    assert len(smtp.handler.peers) == 1
    accounts = env.accounts()
    for mail in received(smtp):
        key = next(k for k, a in accounts.items() if [a["login"]] == mail.to)
        assert verify_password(mail.password, accounts[key]["password_hash"])
        assert accounts[key]["status"] == "active"


def test_a_stopped_run_mails_every_password_it_set(env: GtEnv, smtp: Server) -> None:
    """SIGTERM after the first mail: the chunks whose passwords are set still go, the rest
    stays pending with no password set, to be mailed by the next run."""
    stop = threading.Event()
    clock = Clock()
    clock.advance(timedelta(hours=1))
    with open_services(load_config(env.config_path), clock) as services:
        watching = Watching(services.portal, smtp)
        services.portal = watching  # type: ignore[assignment]
        original = watching.apply

        def stop_after_second_call(ops: Sequence[PortalOp]) -> list[OpOutcome]:
            outcomes = original(ops)
            if len(watching.calls) == 2:
                stop.set()
            return outcomes

        watching.apply = stop_after_second_call  # type: ignore[method-assign]
        report = send_due_mail(services, options=MailerOptions(chunk=CHUNK), stop_event=stop)
        assert report.stopped == "asked to stop"
        set_passwords = sum(ops for ops, _ in watching.calls)
        assert report.count("sent") == set_passwords == 2 * CHUNK
        hashed = {k for k, a in env.accounts().items() if a["password_hash"]}
        assert len(hashed) == 2 * CHUNK
        rest = send_due_mail(services)
    assert rest.count("sent") == 4 + EXTRA - 2 * CHUNK
    assert len({rcpt for m in received(smtp) for rcpt in m.to}) == 4 + EXTRA


def test_chunks_cut_after_every_n_password_mails() -> None:
    """Other mails ride along in the chunk they fall into; no chunk is empty."""

    class Row:
        def __init__(self, template: str) -> None:
            self.template = template

    names = ["activation", "blocked", "activation", "password_reset", "unblocked", "activation"]
    live = [(Row(name), None) for name in names]
    cut = [[row.template for row, _ in part] for part in chunks(live, 2)]  # type: ignore[arg-type]
    assert cut == [
        ["activation", "blocked", "activation"],
        ["password_reset", "unblocked", "activation"],
    ]
    assert list(chunks([], 2)) == []


def test_a_mail_is_accepted_only_once_the_one_before_is_marked_sent(
    env: GtEnv, smtp: Server
) -> None:
    """The next mail's final "." waits for the previous "sent" commit: the server never
    holds two accepted mails that the outbox has not marked sent (the duplicate window)."""
    clock = Clock()
    clock.advance(timedelta(hours=1))
    seen: list[tuple[int, int]] = []  # (commits before this one, mails accepted by then)
    with open_services(load_config(env.config_path), clock) as services:
        store = services.store
        commit = store.record_sent

        def slow_commit(mail_id: int, **kw: Any) -> None:
            time.sleep(0.05)  # time enough for the next mail to be accepted, were it not held
            seen.append((len(seen), len(smtp.handler.accepted)))
            commit(mail_id, **kw)

        store.record_sent = slow_commit  # type: ignore[method-assign]
        report = send_due_mail(services, options=MailerOptions(chunk=CHUNK))
    assert report.count("sent") == 4 + EXTRA
    assert seen == [(n, n + 1) for n in range(4 + EXTRA)]


def test_a_failed_sent_commit_leaves_the_next_mail_unaccepted(env: GtEnv, smtp: Server) -> None:
    """The state store fails while marking a mail sent: the run stops with that error, and
    the mail being transferred meanwhile is never accepted (it stays pending)."""
    clock = Clock()
    clock.advance(timedelta(hours=1))
    with open_services(load_config(env.config_path), clock) as services:
        store = services.store
        commit = store.record_sent

        def failing_second(mail_id: int, **kw: Any) -> None:
            if len(smtp.handler.accepted) == 2:
                raise UnavailableError("the state store is gone")
            commit(mail_id, **kw)

        store.record_sent = failing_second  # type: ignore[method-assign]
        with pytest.raises(UnavailableError, match="the state store is gone"):
            send_due_mail(services, options=MailerOptions(chunk=CHUNK))
    assert len(smtp.handler.accepted) == 2  # the third was transferred but never accepted
    statuses = [row["status"] for row in env.state_rows("syncd_outbox")]
    assert statuses.count("sent") == 1
    assert statuses.count("pending") == 4 + EXTRA - 1
