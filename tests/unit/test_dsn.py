"""Reading bounces of other MTAs' shapes (stored samples), and how a bounce names our mail."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from syncd.config import ConfigError
from syncd.mail._dsn import (
    Bounce,
    created_stamp,
    outbox_message_id,
    outbox_refs,
    read_bounce,
    return_path,
    verp_pattern,
)
from tests.support import write_config

SAMPLES = Path(__file__).parent.parent / "data" / "dsn"


def bounce_of(name: str) -> Bounce:
    found = read_bounce((SAMPLES / name).read_bytes())
    assert found is not None, f"{name} was not read as a bounce"
    return found


def refs_of(bounce: Bounce) -> list[tuple[int, int]]:
    return [ref for text in bounce.originals for ref in outbox_refs(text)]


@pytest.mark.parametrize(
    ("sample", "status", "recipient", "diagnostic", "mail_id"),
    [
        ("exim.eml", "5.0.0", "jan@kowalski.example.com", "User unknown in virtual mailbox", 42),
        ("exchange.eml", "5.1.10", "biuro@sklep-lipa.example.com", "RecipientNotFound", 77),
        ("gmail.eml", "5.1.1", "zamowienia@firma-nieistniejaca.example.com", "does not exist", 105),
        ("exim-plain.eml", "5.2.1", "kontakt@stary-serwer.example.com", "account disabled", 230),
    ],
)
def test_permanent_failures_of_each_shape(
    sample: str, status: str, recipient: str, diagnostic: str, mail_id: int
) -> None:
    """Exim, Exchange, Gmail and a pre-RFC 3464 Exim bounce each give a permanent failure
    with its status, recipient, diagnostic, and the outbox id of the returned original."""
    bounce = bounce_of(sample)
    assert bounce.permanent is True
    assert bounce.status == status
    assert recipient in bounce.recipients
    assert diagnostic in bounce.describe()
    assert [ref[0] for ref in refs_of(bounce)][:1] == [mail_id]


def test_diagnostic_is_unfolded_and_names_the_reporter() -> None:
    """A folded Diagnostic-Code reads as one line, with the reporting MTA after it."""
    text = bounce_of("exim.eml").describe()
    assert "\n" not in text
    assert "Recipient address rejected: User unknown in virtual mailbox table" in text
    assert text.endswith("(reported by mail.hurtownia.example.pl)")


def test_a_delay_is_not_permanent() -> None:
    """Gmail's "Delay" notice is a temporary failure (4.4.1), not a bounce."""
    bounce = bounce_of("gmail-delay.eml")
    assert (bounce.permanent, bounce.status, bounce.action) == (False, "4.4.1", "delayed")
    assert refs_of(bounce) == [(106, 1764581400500000)]


def test_an_out_of_office_reply_is_no_bounce() -> None:
    """An auto-reply that quotes our Message-ID in In-Reply-To is not a delivery report."""
    assert read_bounce((SAMPLES / "autoreply.eml").read_bytes()) is None


def test_a_bounce_of_someone_elses_mail_names_no_outbox_mail() -> None:
    """A salesperson's bounced offer in the same mailbox is a bounce, but not of our mail."""
    bounce = bounce_of("foreign.eml")
    assert bounce.permanent is True
    assert refs_of(bounce) == []


def test_only_the_returned_original_names_our_mail() -> None:
    """Exchange puts our Message-ID in its own In-Reply-To too; only the original counts,
    so a bounce is matched by what it returns, not by how it is threaded."""
    bounce = bounce_of("exchange.eml")
    assert all("In-Reply-To" not in text for text in bounce.originals)
    assert refs_of(bounce) == [(77, 1764580800000000)]


def test_a_report_without_the_original_is_found_by_its_verp_address() -> None:
    """A report that returns nothing of the original reaches our VERP return path, and
    that address alone names the mail."""
    bounce = bounce_of("verp-headers-only.eml")
    assert refs_of(bounce) == []
    pattern = verp_pattern("bounces+{id}@hurtownia.example.pl")
    found = {int(m.group(1)) for a in bounce.addressed_to for m in pattern.finditer(a)}
    assert found == {318}


def test_message_ids_name_the_outbox_row_and_its_creation() -> None:
    """Our Message-ID round-trips to (id, creation µs); a password mail's is fresh each
    time yet names the same row."""
    created = datetime(2025, 12, 1, 9, 15, 0, 123456, tzinfo=UTC)
    stable = outbox_message_id(42, created, "hurtownia.example.pl", fresh=False)
    assert stable == outbox_message_id(42, created, "hurtownia.example.pl", fresh=False)
    one = outbox_message_id(42, created, "hurtownia.example.pl", fresh=True)
    two = outbox_message_id(42, created, "hurtownia.example.pl", fresh=True)
    assert one != two
    for text in (stable, one, two):
        assert outbox_refs(f"Message-ID: {text}") == [(42, created_stamp(created))]
    assert outbox_refs("Message-ID: <CAF3kzQ1x9=abc@mail.gmail.com>") == []


def test_verp_address_round_trips() -> None:
    """``return_path`` and ``verp_pattern`` agree, case-insensitively, and nothing else
    matches."""
    template = "bounces+{id}@hurtownia.example.pl"
    assert return_path(template, 7) == "bounces+7@hurtownia.example.pl"
    pattern = verp_pattern(template)
    match = pattern.fullmatch("BOUNCES+7@Hurtownia.Example.PL")
    assert match is not None
    assert match.group(1) == "7"
    assert pattern.fullmatch("bounces+x@hurtownia.example.pl") is None
    assert pattern.fullmatch("b2b@hurtownia.example.pl") is None


def test_bounce_settings_are_checked(tmp_path: Path) -> None:
    """``mail.bounces`` needs a login once a host is named, two different folders, and
    ``mail.return_path`` needs one ``{id}`` before the @; each problem names its key."""
    mail = {
        "transport": "file",
        "directory": str(tmp_path / "outbox"),
        "sender": "b2b@example.com",
        "bounces": {"host": "imap.example.com", "folder": "Bounces", "processed_folder": "Bounces"},
        "return_path": "bounces@example.com",
    }
    with pytest.raises(ConfigError) as raised:
        write_config(tmp_path, mail=mail)
    text = str(raised.value)
    for key in ("username", "password", "processed_folder"):
        assert f"mail.bounces.{key}" in text
    assert "mail.return_path: must hold {id} once" in text


def test_bounce_password_may_come_from_a_file(tmp_path: Path) -> None:
    """``mail.bounces.password_file`` works like every secret's ``_file`` form, and the
    standard IMAP port follows the security setting."""
    secret = tmp_path / "imap-password"
    secret.write_text("Imap-Secret-9q2\n")
    mail = {
        "transport": "file",
        "directory": str(tmp_path / "outbox"),
        "sender": "b2b@example.com",
        "bounces": {"host": "imap.example.com", "username": "b2b", "password_file": str(secret)},
        "return_path": "bounces+{id}@example.com",
    }
    config = write_config(tmp_path, mail=mail)
    bounces = config.mail.bounces
    assert bounces.password is not None
    assert bounces.password.get_secret_value() == "Imap-Secret-9q2"
    assert (bounces.imap_port, bounces.folder, bounces.processed_folder) == (
        993,
        "INBOX",
        "syncd-processed",
    )
