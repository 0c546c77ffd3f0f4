"""The outbox mailer end to end: GT-shaped ERP, SQL portal, state store, real SMTP server."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
import structlog

from syncd.config import Config, load_config
from syncd.cycle import CycleRequest, run_cycle
from syncd.mail.mailer import MailerOptions, mail_after_sync, send_due_mail
from syncd.passwords import verify_password
from syncd.wiring import open_services
from tests.gt_env import GtEnv, gt_env
from tests.mail_env import FAST_RETRY, Clock, received, smtp_section
from tests.smtp_server import Server, free_port

LOGINS = {
    "1": "biuro@zuraw.pl",
    "2": "zamowienia@kowalski.com.pl",
    "3": "sklep@podlipa.pl",
    "6": "kontrola@kontrolna.pl",
}

pytestmark = pytest.mark.usefixtures("quick_bcrypt")


@pytest.fixture
def env(tmp_path: Path, capsys: pytest.CaptureFixture[str], smtp: Server) -> Iterator[GtEnv]:
    """The GT test ERP (contractors 1, 2, 3, 6 in scope), mail to ``smtp``, no send delay."""
    with gt_env(tmp_path, capsys, mail=smtp_section(smtp)) as environment:
        yield environment


def env_config(env: GtEnv) -> Config:
    return load_config(env.config_path)


def _outbox(env: GtEnv) -> dict[str, list[dict[str, object]]]:
    by_key: dict[str, list[dict[str, object]]] = {}
    for row in sorted(env.state_rows("syncd_outbox"), key=lambda r: r["id"]):
        by_key.setdefault(row["contractor_key"], []).append(row)
    return by_key


def test_sync_delivers_one_activation_per_new_account_and_activates_it(
    env: GtEnv, smtp: Server
) -> None:
    """One sync: one English activation per account, to its login; the password verifies."""
    sync = env.cli("sync", "--json")
    assert sync.code == 0, sync.err
    assert sync.doc["mail"]["sent"] == 4
    mails = received(smtp)
    assert sorted(rcpt for m in mails for rcpt in m.to) == sorted(LOGINS.values())
    accounts = env.accounts()
    bindings = {row["contractor_key"]: row for row in env.state_rows("syncd_binding")}
    for mail in mails:
        key = next(k for k, login in LOGINS.items() if mail.to == [login])
        assert mail.subject.startswith("Your B2B portal access for ")
        assert f"Login: {LOGINS[key]}" in mail.part("plain")
        assert LOGINS[key] in mail.part("html")
        assert mail.message["Content-Language"] == "en"
        assert verify_password(mail.password, accounts[key]["password_hash"])
        assert accounts[key]["status"] == "active"
        assert (bindings[key]["status"], bindings[key]["activated"]) == ("active", True)
    zuraw = next(m for m in mails if m.to == [LOGINS["1"]])
    assert "Anna Nowak" in zuraw.part("plain")
    again = env.cli("sync", "--json")
    assert again.doc["mail"]["sent"] == 0
    assert len(received(smtp)) == 4


def test_no_plaintext_password_in_the_state_store_the_portal_or_the_logs(
    env: GtEnv, smtp: Server, capsys: pytest.CaptureFixture[str]
) -> None:
    """The password of a sent mail is in no database file, no WAL and no log line."""
    sync = env.cli("--log-level", "debug", "sync")  # the CLI's own JSON log lines
    assert sync.code == 0, sync.err
    with env.edit() as w:
        w.add_contractor(20, "K020", "Nowy Klient", email="nowy@klient.pl", features=["b2b"])
    with (
        structlog.testing.capture_logs() as logs,
        open_services(env_config(env)) as services,
    ):
        cycle = run_cycle(services, CycleRequest())
        mail = mail_after_sync(services, cycle.exit_code)
        # Read while the connections are open: SQLite's WAL still holds the last writes.
        files = {
            path.name: path.read_bytes()
            for path in env.directory.iterdir()
            if path.name.startswith(("state.db", "portal.db"))
        }
    assert mail.document["sent"] == 1
    assert "state.db-wal" in files
    passwords = [m.password for m in received(smtp)]
    assert len(passwords) == 5
    text = sync.out + sync.err + repr(logs) + "".join(capsys.readouterr())
    assert "mail.sent" in text
    for password in passwords:
        assert password not in text
        for name, data in files.items():
            assert password.encode() not in data, name


def test_feature_taken_away_within_the_send_delay_means_no_mail_ever(
    env: GtEnv, smtp: Server
) -> None:
    """Default send_delay: removed before it was due, the mail is cancelled, never sent."""
    env.write_config(mail={**smtp_section(smtp), "send_delay": "5m"})
    assert env.cli("sync").code == 0
    assert env.cli("sync", "--json").doc["mail"]["sent"] == 0  # nothing due yet
    env.set_in_scope(3, present=False)
    assert env.cli("sync").code == 0
    clock = Clock()
    clock.advance(timedelta(hours=1))
    with open_services(env_config(env), clock) as services:
        report = send_due_mail(services)
    assert report.count("sent") == 3
    assert LOGINS["3"] not in [rcpt for m in received(smtp) for rcpt in m.to]
    assert [row["status"] for row in _outbox(env)["3"]] == ["cancelled"]
    listing = env.cli("mail", "list", "--status", "cancelled", "--json")
    assert [m["to"] for m in listing.doc["mail"]] == [LOGINS["3"]]


def test_mail_whose_binding_is_gone_is_cancelled_not_sent(env: GtEnv, smtp: Server) -> None:
    """A due mail whose account was removed without cancelling it is cancelled at send time."""
    env.write_config(mail={**smtp_section(smtp), "send_delay": "5m"})
    assert env.cli("sync").code == 0
    clock = Clock()
    clock.advance(timedelta(hours=1))
    with open_services(env_config(env), clock) as services:
        services.store.commit_batch(deletes=["3"])  # a removal racing the mailer
        report = send_due_mail(services)
    assert {o.key: o.result for o in report.outcomes}["3"] == "cancelled"
    assert len(received(smtp)) == 3
    assert "removed" in str(_outbox(env)["3"][0]["last_error"])


def test_temporary_failures_are_retried_and_each_mail_arrives_once(
    env: GtEnv, smtp: Server
) -> None:
    """451 for a while: retried with backoff, within the run and then in a later run."""
    env.write_config(mail={**smtp_section(smtp), "send_delay": "5m"})
    assert env.cli("sync").code == 0
    clock = Clock()
    clock.advance(timedelta(hours=1))
    pauses: list[float] = []
    options = MailerOptions(policy=FAST_RETRY, sleep=pauses.append)
    smtp.handler.defer = 4  # 3 attempts: the first mail is deferred, the second gets through
    with open_services(env_config(env), clock) as services:
        first = send_due_mail(services, options=options)
        assert [first.count(r) for r in ("sent", "deferred")] == [3, 1]
        deferred = next(o for o in first.outcomes if o.result == "deferred")
        assert deferred.retry_at is not None
        assert deferred.retry_at > clock.now
        assert "451" in str(deferred.error)
        assert pauses == [1.0, 2.0, 1.0]
        assert send_due_mail(services, options=options).outcomes == []  # not due yet
        clock.advance(timedelta(minutes=2))
        second = send_due_mail(services, options=options)
    assert [o.result for o in second.outcomes] == ["sent"]
    assert sorted(rcpt for m in received(smtp) for rcpt in m.to) == sorted(LOGINS.values())
    row = _outbox(env)[deferred.key][0]
    assert (row["status"], row["attempts"]) == ("sent", 2)


def test_permanent_rejection_fails_that_mail_and_delivers_the_others(
    env: GtEnv, smtp: Server
) -> None:
    """550 for one recipient: failed with the answer (mail list, status); others delivered."""
    smtp.handler.reject = {LOGINS["3"]}
    sync = env.cli("sync", "--json")
    assert sync.code == 1  # decided: a mail refused for good is a failed record
    assert (sync.doc["mail"]["sent"], sync.doc["mail"]["failed"]) == (3, 1)
    assert len(received(smtp)) == 3
    answer = "550 5.1.1 <sklep@podlipa.pl>: Recipient address rejected: User unknown"
    failed = env.cli("mail", "list", "--status", "failed", "--json").doc["mail"]
    assert [(m["to"], m["last_error"]) for m in failed] == [(LOGINS["3"], answer)]
    status = env.cli("status", "--json").doc
    assert status["mail_queue"]["failed"] == 1
    assert status["failed_mail"][0]["last_error"] == answer
    assert env.accounts()["3"]["status"] == "pending"
    assert env.cli("sync", "--json").code == 0  # an old failure does not fail later syncs


def test_unreachable_server_leaves_the_mail_queued(env: GtEnv, smtp: Server) -> None:
    """Nothing listening: every due mail stays pending with a retry time; no account active."""
    nobody = {"host": "127.0.0.1", "port": free_port(), "security": "none"}
    env.write_config(mail={**smtp_section(smtp), "smtp": nobody, "send_delay": "5m"})
    assert env.cli("sync").code == 0
    clock = Clock()
    clock.advance(timedelta(hours=1))
    pauses: list[float] = []
    with open_services(env_config(env), clock) as services:
        report = send_due_mail(services, options=MailerOptions(FAST_RETRY, sleep=pauses.append))
    assert report.count("deferred") == 4
    assert report.stopped is not None
    assert "unavailable" in report.stopped
    assert pauses == [1.0, 2.0]  # one mail's retries, then the whole batch waits
    rows = env.state_rows("syncd_outbox")
    assert {r["status"] for r in rows} == {"pending"}
    assert all(r["not_before"] > clock.now for r in rows)
    assert all("connection refused" in r["last_error"] for r in rows)
    assert {a["status"] for a in env.accounts().values()} == {"pending"}


def test_login_change_mails_the_new_address(env: GtEnv, smtp: Server) -> None:
    """A changed e-mail changes the login and sends login_changed to the new address."""
    assert env.cli("sync").code == 0
    with env.edit() as w:
        w.set_email(3, "Nowy@PodLipa.pl")
    sync = env.cli("sync", "--json")
    assert sync.code == 0, sync.err
    last = received(smtp)[-1]
    assert last.to == ["nowy@podlipa.pl"]
    assert last.subject == "Your B2B portal login has changed"
    assert "sklep@podlipa.pl" in last.part("plain")
    assert env.accounts()["3"]["login"] == "nowy@podlipa.pl"
    explained = env.cli("explain", "3", "--json").doc
    assert [(m["template"], m["status"]) for m in explained["mail"]] == [
        ("login_changed", "sent"),
        ("activation", "sent"),
    ]
    assert explained["mail"][0]["sent_at"] is not None


def test_check_config_rejects_a_template_that_fails_to_render(env: GtEnv, smtp: Server) -> None:
    """An override with an unknown variable is a configuration error (exit 2) at check-config."""
    templates = env.directory / "templates"
    (templates / "en").mkdir(parents=True)
    (templates / "en" / "activation.txt").write_text("Hi {{ no_such_thing }}\n", encoding="utf-8")
    env.write_config(mail={**smtp_section(smtp), "templates_dir": str(templates)})
    checked = env.cli("check-config")
    assert checked.code == 2
    assert "en/activation.txt" in checked.err
    assert "no_such_thing" in checked.err
