"""Bounce tracking against a real mail system: Postfix bounces, Dovecot serves the mailbox.

The end-to-end test sends an activation through the loopback Postfix to an address that
does not exist; Postfix accepts it, then returns a real RFC 3464 report into the sender's
Maildir, which Dovecot serves over IMAP; one ``syncd mail bounces`` pass must mark that
mail ``bounced`` with Postfix's diagnostic and touch nothing else in the mailbox.
"""

from __future__ import annotations

import re
import smtplib
import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import pytest

from syncd.clock import utcnow
from syncd.errors import UnavailableError
from syncd.mail._dsn import outbox_message_id
from syncd.mail.bounces import run_pass
from syncd.wiring import open_store
from tests.conftest import unavailable
from tests.gt_env import GtEnv, gt_env
from tests.mta import (
    IMAP_SECRET,
    IMAP_USER,
    MAILBOX_DOMAIN,
    SENDER,
    Mta,
    MtaUnavailable,
    running_mta,
    self_signed,
)
from tests.smtp_server import free_port
from tests.support import write_config

LOCAL = "podlipa.pl"  # contractor 3's domain: Postfix's own, where unknown users bounce
PROCESSED = "syncd-processed"
FIX_IT = "fix the e-mail in the ERP"


@contextmanager
def mail_system(tls: tuple[Path, Path] | None = None) -> Iterator[Mta]:
    """``running_mta``, or a skip (a failure under SYNCD_REQUIRE_DB=1) when it cannot run."""
    try:
        with running_mta((LOCAL,), tls=tls) as started:
            yield started
    except MtaUnavailable as error:
        unavailable("Postfix and Dovecot (Debian: postfix, dovecot-imapd)", error)


@pytest.fixture
def mta() -> Iterator[Mta]:
    """Postfix and Dovecot on loopback, fresh for each test (plain IMAP)."""
    with mail_system() as started:
        yield started


def bounces_section(mta: Mta, **extra: Any) -> dict[str, Any]:
    return {
        "host": "127.0.0.1",
        "port": mta.imap_port,
        "security": "none",
        "username": IMAP_USER,
        "password": IMAP_SECRET,
        "folder": "INBOX",
        "processed_folder": PROCESSED,
        **extra,
    }


def smtp_mail(mta: Mta, **extra: Any) -> dict[str, Any]:
    """``mail:`` sending through the loopback Postfix, bounces read from Dovecot."""
    return {
        "transport": "smtp",
        "smtp": {"host": "127.0.0.1", "port": mta.smtp_port, "security": "none"},
        "sender": f"B2B <{SENDER}>",
        "language": "en",
        "send_delay": "0s",
        "bounces": bounces_section(mta),
        **extra,
    }


def file_mail(tmp_path: Path, mta: Mta) -> dict[str, Any]:
    """``mail:`` written to files (the mail counts as sent), bounces read from Dovecot."""
    return {
        "transport": "file",
        "directory": str(tmp_path / "outbox"),
        "sender": f"B2B <{SENDER}>",
        "send_delay": "0s",
        "bounces": bounces_section(mta),
    }


def mailbox_state(mta: Mta) -> dict[str, dict[str, set[str]]]:
    """Each folder's messages as {Message-ID: flags}, read without changing anything."""
    conn = mta.imap()
    try:
        state: dict[str, dict[str, set[str]]] = {}
        for folder in ("INBOX", PROCESSED):
            status, count = conn.select(f'"{folder}"', readonly=True)
            if status != "OK":
                continue
            if count[0] == b"0":
                state[folder] = {}
                continue
            _, data = conn.fetch("1:*", "(FLAGS BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)])")
            messages: dict[str, set[str]] = {}
            for item in data:
                if isinstance(item, tuple):
                    flags = re.search(rb"FLAGS \(([^)]*)\)", item[0])
                    found = set((flags.group(1) if flags else b"").decode().split())
                    message_id = item[1].decode().partition(":")[2].strip()
                    messages[message_id] = found - {"\\Recent"}
            state[folder] = messages
        return state
    finally:
        conn.logout()


def plant(mta: Mta, raw: str, flags: str = "") -> None:
    """Put a message into the INBOX as a mail client would (APPEND)."""
    conn = mta.imap()
    try:
        status, data = conn.append("INBOX", flags, None, raw.replace("\n", "\r\n").encode())
        assert status == "OK", data
    finally:
        conn.logout()


QUESTION = """\
From: Jan Kowalski <jan@kowalski.com.pl>
To: {sender}
Subject: Question about my order
Message-ID: <question-1@kowalski.com.pl>
Date: {date}

Where is my invoice?
"""


def report(message_id: str, *, to: str, recipient: str, action: str, status: str) -> str:
    """A minimal RFC 3464 report, as some relay would send it."""
    return f"""\
From: Mail Delivery System <MAILER-DAEMON@relay.example.net>
To: {to}
Subject: Delivery Status Notification
Message-ID: <report-{action}-{status}@relay.example.net>
Date: {format_datetime(utcnow())}
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status; boundary="b1"

--b1
Content-Type: text/plain

Delivery to {recipient}: {action}.

--b1
Content-Type: message/delivery-status

Reporting-MTA: dns; relay.example.net

Final-Recipient: rfc822; {recipient}
Action: {action}
Status: {status}
Diagnostic-Code: smtp; {status[0]}50 {status} the relay's own words

--b1
Content-Type: text/rfc822-headers

From: B2B <{SENDER}>
To: {recipient}
{"Message-ID: " + message_id if message_id else "Subject: (no Message-ID kept)"}

--b1--
"""


def outbox(env: GtEnv, key: str) -> list[dict[str, Any]]:
    return [row for row in env.state_rows("syncd_outbox") if row["contractor_key"] == key]


def plant_others(mta: Mta) -> None:
    """Three messages that are not bounces of syncd's mail: a customer's question, a
    flagged one, and a real Postfix bounce of a salesperson's own mail."""
    plant(mta, QUESTION.format(sender=SENDER, date=format_datetime(utcnow())))
    plant(mta, QUESTION.replace("question-1", "question-2"), flags="(\\Flagged)")
    foreign = QUESTION.replace("question-1@kowalski.com.pl", "offer-1@" + MAILBOX_DOMAIN)
    foreign = foreign.replace("From: Jan Kowalski <jan@kowalski.com.pl>", f"From: {SENDER}")
    foreign = foreign.replace(f"To: {SENDER}", f"To: oferta@{LOCAL}")
    with smtplib.SMTP("127.0.0.1", mta.smtp_port, timeout=10) as smtp:
        smtp.sendmail(SENDER, [f"oferta@{LOCAL}"], foreign.encode())
    mta.wait_for_mail(lambda raw: b"<offer-1@" in raw and b"multipart/report" in raw)


def assert_shown_everywhere(env: GtEnv, mail: dict[str, Any]) -> None:
    """``status`` counts the bounce; it, ``explain``, ``accounts show`` and ``mail list``
    say to fix the e-mail in the ERP; ``history`` has the bounce."""
    status = env.cli("status", "--json").doc
    assert status["mail_queue"]["bounced"] == 1
    [address] = status["undeliverable"]
    assert (address["key"], address["address"]) == ("3", f"sklep@{LOCAL}")
    assert FIX_IT in address["hint"]
    assert "resend-activation 3" in address["hint"]
    assert FIX_IT in env.cli("status").out
    explained = env.cli("explain", "3", "--json").doc
    assert explained["undeliverable"]["diagnostic"] == mail["last_error"]
    assert [m["status"] for m in explained["mail"]] == ["bounced"]
    assert FIX_IT in env.cli("explain", "3").out
    assert FIX_IT in env.cli("accounts", "show", "3").out
    listed = env.cli("mail", "list", "--status", "bounced")
    assert "unknown user" in listed.out
    assert FIX_IT in listed.out
    history = [row["action"] for row in env.cli("history", "3", "--json").doc["history"]]
    assert history[-1] == "mail_bounced"


def test_a_real_bounce_is_tracked_and_nothing_else_is_touched(
    mta: Mta, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An activation to a mailbox that does not exist comes back from Postfix as a real
    DSN; one pass marks the mail bounced with Postfix's diagnostic, ``status`` counts it,
    ``explain``, ``accounts show`` and ``mail list`` say to fix the e-mail in the ERP, the
    report moves to the processed folder, every other message keeps its folder and flags,
    and a changed e-mail in the ERP clears the undeliverable address."""
    with gt_env(tmp_path, capsys, mail=smtp_mail(mta)) as env:
        plant_others(mta)
        assert env.cli("sync", "--contractor", "3").code == 0
        [mail] = outbox(env, "3")
        assert mail["status"] == "sent"
        dsn = mta.wait_for_mail(lambda raw: b"syncd.outbox." in raw and b"Status: 5.1.1" in raw)
        assert b'unknown user: "sklep"' in dsn
        before = mailbox_state(mta)
        assert len(before["INBOX"]) == 4

        done = env.cli("mail", "bounces", "--json")
        assert done.code == 0, done.err
        assert [item["mail_id"] for item in done.doc["bounced"]] == [mail["id"]]
        assert done.doc["untouched"] == 3

        [mail] = outbox(env, "3")
        assert mail["status"] == "bounced"
        assert mail["last_error"].startswith('5.1.1 X-Postfix; unknown user: "sklep"')
        after = mailbox_state(mta)
        ours = set(before["INBOX"]) - set(after["INBOX"])
        assert len(ours) == 1
        assert after["INBOX"] == {k: v for k, v in before["INBOX"].items() if k not in ours}
        assert set(after[PROCESSED]) == ours  # kept for inspection, not deleted

        assert_shown_everywhere(env, mail)

        again = env.cli("mail", "bounces", "--json").doc
        assert (again["bounced"], again["moved"], again["untouched"]) == ([], 0, 3)
        assert mailbox_state(mta) == after

        with env.edit() as w:
            w.set_email(3, f"zamowienia@{LOCAL}")
        assert env.cli("sync", "--contractor", "3").code == 0
        assert env.cli("status", "--json").doc["undeliverable"] == []
        assert env.cli("explain", "3", "--json").doc["undeliverable"] is None


def test_verp_return_path_is_the_envelope_sender(
    mta: Mta, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """With ``mail.return_path`` each mail leaves with its own envelope sender: Postfix
    returns the report to ``bounces+<id>@...`` (not in a header of the sent mail), and the
    pass matches it."""
    verp = f"bounces+{{id}}@{MAILBOX_DOMAIN}"
    with gt_env(tmp_path, capsys, mail=smtp_mail(mta, return_path=verp)) as env:
        assert env.cli("sync", "--contractor", "3").code == 0
        [mail] = outbox(env, "3")
        dsn = mta.wait_for_mail(lambda raw: b"multipart/report" in raw)
        address = f"bounces+{mail['id']}@{MAILBOX_DOMAIN}".encode()
        assert b"To: " + address in dsn
        assert dsn.count(b"Return-Path: <" + address + b">") == 1  # Postfix's, in the copy
        assert env.cli("mail", "bounces").code == 0
        assert outbox(env, "3")[0]["status"] == "bounced"


def test_report_matched_by_verp_alone_and_only_for_its_recipient(
    mta: Mta, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A report that returns nothing of the original is matched by the VERP address it
    was sent to, but only when its recipient is that mail's; another stays untouched."""
    verp = "bounces+{id}@" + MAILBOX_DOMAIN
    mail_config = {**file_mail(tmp_path, mta), "return_path": verp}
    with gt_env(tmp_path, capsys, mail=mail_config) as env:
        assert env.cli("sync", "--contractor", "3").code == 0
        [mail] = outbox(env, "3")
        to = f"bounces+{mail['id']}@{MAILBOX_DOMAIN}"
        plant(
            mta, report("", to=to, recipient="other@example.org", action="failed", status="5.1.1")
        )
        recipient = f"sklep@{LOCAL}"
        plant(mta, report("", to=to, recipient=recipient, action="failed", status="5.2.1"))
        done = env.cli("mail", "bounces", "--json").doc
        assert [item["status"] for item in done["bounced"]] == ["5.2.1"]
        assert done["untouched"] == 1
        assert outbox(env, "3")[0]["last_error"].startswith("5.2.1 smtp; 550 5.2.1")


def test_a_delay_is_recorded_once_and_the_mail_stays_sent(
    mta: Mta, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A 4.x.x report is written to the audit trail (once, even if seen again) and moved;
    the mail stays sent and the address is not marked undeliverable."""
    with gt_env(tmp_path, capsys, mail=file_mail(tmp_path, mta)) as env:
        assert env.cli("sync", "--contractor", "3").code == 0
        [mail] = outbox(env, "3")
        ident = outbox_message_id(mail["id"], mail["created_at"], MAILBOX_DOMAIN, fresh=True)
        delay = report(
            ident, to=SENDER, recipient=f"sklep@{LOCAL}", action="delayed", status="4.4.1"
        )
        plant(mta, delay)
        assert [d["status"] for d in env.cli("mail", "bounces", "--json").doc["delayed"]] == [
            "4.4.1"
        ]
        plant(mta, delay)  # the same report once more (a crash before the move)
        env.cli("mail", "bounces")
        assert outbox(env, "3")[0]["status"] == "sent"
        actions = [
            row["action"] for row in env.state_rows("syncd_audit") if row["contractor_key"] == "3"
        ]
        assert actions.count("mail_delayed") == 1
        assert env.cli("status", "--json").doc["undeliverable"] == []
        state = mailbox_state(mta)
        assert state["INBOX"] == {}
        assert list(state[PROCESSED]) == ["<report-delayed-4.4.1@relay.example.net>"]


def test_starttls_and_a_wrong_password(tmp_path: Path) -> None:
    """STARTTLS with a verified certificate works; a wrong password or an untrusted
    certificate is ``UnavailableError`` saying what to check, never the password."""
    cert, key = self_signed(tmp_path)
    with mail_system(tls=(cert, key)) as mta:
        mail = {**file_mail(tmp_path, mta)}
        mail["bounces"] = bounces_section(mta, security="starttls")
        config = write_config(tmp_path, mail=mail)
        store = open_store(config)
        try:
            trusted = ssl.create_default_context(cafile=str(cert))
            assert run_pass(config, store, ssl_context=trusted).moved == 0
            with pytest.raises(UnavailableError, match="TLS failed") as untrusted:
                run_pass(config, store)
            assert "mail.bounces.security" in str(untrusted.value)
            wrong = "Wrong-Secret-77"
            mail["bounces"] = bounces_section(mta, security="starttls", password=wrong)
            config = write_config(tmp_path, mail=mail)
            with pytest.raises(UnavailableError, match=r"mail\.bounces\.password") as refused:
                run_pass(config, store, ssl_context=trusted)
            assert wrong not in str(refused.value)
        finally:
            store.close()


def test_unreachable_mailbox_exits_4_and_unset_mailbox_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``syncd mail bounces`` with nothing listening exits 4 naming what to check; without
    ``mail.bounces`` it is a configuration error (exit 2)."""
    port = free_port()
    mail = {"bounces": {"host": "127.0.0.1", "port": port, "security": "none",
                        "username": "b2b", "password": IMAP_SECRET, "timeout": "5s"}}  # fmt: skip
    with gt_env(tmp_path, capsys, mail=mail) as env:
        done = env.cli("mail", "bounces")
        assert done.code == 4
        assert "check mail.bounces.host and mail.bounces.port" in done.err
        assert IMAP_SECRET not in done.err + done.out
        env.write_config(mail={"bounces": None})
        assert env.cli("mail", "bounces").code == 2


def test_the_daemon_polls_only_when_a_mailbox_is_set(tmp_path: Path) -> None:
    """``mail.bounces`` adds a ``bounces`` job on the work thread every ``interval``; a
    reload without it removes the job."""
    from apscheduler.schedulers.background import (  # type: ignore[import-untyped]
        BackgroundScheduler,
    )

    from syncd.daemon.jobs import DaemonContext, Jobs
    from syncd.daemon.leadership import Leadership, lease_ttl
    from syncd.daemon.metrics import Metrics
    from syncd.daemon.notify import Notifier

    mail = {"bounces": {"host": "imap.example.com", "username": "b2b", "password": "x",
                        "interval": "3m"}}  # fmt: skip
    config = write_config(tmp_path, mail=mail)
    store = open_store(config)
    scheduler = BackgroundScheduler()
    scheduler.start(paused=True)
    try:
        context = DaemonContext(
            config,
            Leadership(store, lease_ttl(config.schedule.interval)),
            Notifier({}),
            Metrics(),
            threading.Event(),
            utcnow,
        )
        jobs = Jobs(context, services=None)  # type: ignore[arg-type] - no job runs here
        jobs.schedule(scheduler, config, first=False)
        job = scheduler.get_job("bounces")
        assert job is not None
        assert job.trigger.interval == timedelta(minutes=3)
        assert job.executor == "work"
        without = write_config(tmp_path, mail={"bounces": None})
        jobs.schedule(scheduler, without, first=False)
        assert scheduler.get_job("bounces") is None
    finally:
        scheduler.shutdown()
        store.close()
