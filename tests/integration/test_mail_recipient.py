"""Where mail goes (``mail.recipient``): a contact authorised to receive mail, the billing
e-mail, the main e-mail, in the configured order; the login never changes with it.

Subiekt GT on SQLite, the SQL portal, and a real SMTP server (aiosmtpd) on loopback.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from syncd.config import load_config
from syncd.mail.mailer import send_due_mail
from syncd.wiring import open_services
from tests.gt_env import GtEnv, gt_env
from tests.mail_env import Clock, received, smtp_section
from tests.smtp_server import Server

pytestmark = pytest.mark.usefixtures("quick_bcrypt")

CHAIN = ["contact", "billing", "email"]


@pytest.fixture
def env(tmp_path: Path, capsys: pytest.CaptureFixture[str], smtp: Server) -> Iterator[GtEnv]:
    """The GT test ERP with the chain [contact, billing, email]: Jan Kowalski, contractor
    2's contact, is its main contact person (so authorised to receive mail, GT's default);
    contractor 1's main contact has no e-mail; contractor 3 has a billing e-mail."""
    mail = smtp_section(smtp, recipient=CHAIN)
    with gt_env(tmp_path, capsys, mail=mail) as environment:
        with environment.edit() as w:
            w.update_contact(environment.handles.contacts["kowalski"], pk_Podstaw=True)
            w.set_billing_email(3, " Faktury@PodLipa.pl ")
        yield environment


def _to(smtp: Server) -> dict[str, list[str]]:
    """Each received mail's recipients by the login it carries."""
    found: dict[str, list[str]] = {}
    for mail in received(smtp):
        login = next(
            line.split(": ", 1)[1]
            for line in mail.part("plain").splitlines()
            if line.startswith("Login: ")
        )
        found.setdefault(login, []).extend(mail.to)
    return found


def test_the_activation_goes_to_the_first_source_with_an_address_and_explain_says_why(
    env: GtEnv, smtp: Server
) -> None:
    """The contact authorised to receive mail gets the activation when there is one, else
    the billing e-mail, else the main e-mail; the login stays the main e-mail; explain
    names the address and the reason."""
    sync = env.cli("sync", "--json")
    assert sync.code == 0, sync.err
    assert _to(smtp) == {
        "biuro@zuraw.pl": ["biuro@zuraw.pl"],
        "zamowienia@kowalski.com.pl": ["jan@kowalski.com.pl"],
        "sklep@podlipa.pl": ["faktury@podlipa.pl"],
        "kontrola@kontrolna.pl": ["kontrola@kontrolna.pl"],
    }
    accounts = env.accounts()
    assert accounts["2"]["login"] == "zamowienia@kowalski.com.pl"
    assert accounts["2"]["status"] == "active"

    kowalski = env.cli("explain", "2", "--json").doc
    assert kowalski["recipient"] == {
        "address": "jan@kowalski.com.pl",
        "source": "contact",
        "reason": "mail goes to jan@kowalski.com.pl: contact person Jan Kowalski is "
        "authorised to receive mail (mail.recipient[0])",
    }
    assert [(m["template"], m["to"]) for m in kowalski["mail"]] == [
        ("activation", "jan@kowalski.com.pl")
    ]
    zuraw = env.cli("explain", "1", "--json").doc["recipient"]
    assert zuraw["address"] == "biuro@zuraw.pl"
    assert zuraw["reason"] == (
        "mail goes to biuro@zuraw.pl: it is the contractor's main e-mail (mail.recipient[2]); "
        "no contact person with an e-mail is authorised to receive mail (mail.recipient[0]); "
        "there is no billing e-mail (mail.recipient[1])"
    )
    text = env.cli("explain", "3")
    assert "mail goes to faktury@podlipa.pl: it is the billing e-mail (mail.recipient[1])" in (
        text.out
    )


def test_a_changed_recipient_keeps_the_account_and_pending_mail_follows_it(
    env: GtEnv, smtp: Server
) -> None:
    """Another contact authorised to receive mail changes neither the account nor its login;
    an activation still waiting out send_delay goes to the address the ERP holds when it is
    sent, and support's mail follows it too."""
    env.write_config(mail={**smtp_section(smtp, recipient=CHAIN), "send_delay": "5m"})
    assert env.cli("sync").code == 0
    before = env.accounts()["2"]
    with env.edit() as w:
        w.update_contact(env.handles.contacts["kowalski"], pk_Podstaw=False)
    sync = env.cli("sync", "--json")
    assert sync.code == 0, sync.err
    assert [item["key"] for item in sync.doc["create"]] == []
    assert [item["key"] for item in sync.doc["remove"]] == []
    after = env.accounts()["2"]
    assert (after["id"], after["login"]) == (before["id"], before["login"])

    clock = Clock()
    clock.advance(timedelta(hours=1))
    with open_services(load_config(env.config_path), clock) as services:
        report = send_due_mail(services)
    assert report.count("sent") == 4
    assert _to(smtp)["zamowienia@kowalski.com.pl"] == ["zamowienia@kowalski.com.pl"]
    mail = env.cli("explain", "2", "--json").doc["mail"]
    assert [(m["template"], m["to"], m["status"]) for m in mail] == [
        ("activation", "zamowienia@kowalski.com.pl", "sent")
    ]

    with env.edit() as w:
        w.update_contact(env.handles.contacts["kowalski"], pk_Podstaw=True)
    assert env.cli("sync").code == 0
    assert env.accounts()["2"]["id"] == before["id"]
    reset = env.cli("accounts", "reset-password", "2", "--json")
    assert reset.code == 0, reset.err
    assert received(smtp)[-1].to == ["jan@kowalski.com.pl"]
