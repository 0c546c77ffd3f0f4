"""Support commands end to end: find, show, block, unblock, passwords, mail list, history."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import pytest

from syncd.passwords import verify_password
from tests.gt_env import ERP_BLOCK_REASON, GtEnv, gt_env
from tests.mail_env import received, smtp_section
from tests.smtp_server import Server

TYPED = "Zażółć-Gęślą-77"  # what a salesperson typed for the customer

pytestmark = pytest.mark.usefixtures("quick_bcrypt")


@pytest.fixture
def env(tmp_path: Path, capsys: pytest.CaptureFixture[str], smtp: Server) -> Iterator[GtEnv]:
    """The GT test ERP synced once; activation mail waits out the default send_delay."""
    with gt_env(tmp_path, capsys, mail={**smtp_section(smtp), "send_delay": "5m"}) as e:
        assert e.cli("sync").code == 0
        yield e


def test_support_block_survives_syncs_and_erp_changes(env: GtEnv, smtp: Server) -> None:
    """A support block stays through syncs and an ERP block/unblock; support lifts it."""
    blocked = env.cli(
        "accounts", "block", "K002", "--reason", "Zaległe płatności", "--actor", "ewa"
    )
    assert blocked.code == 0, blocked.err
    [mail] = received(smtp)
    assert mail.to == ["zamowienia@kowalski.com.pl"]
    assert "Zaległe płatności" in mail.part("plain")
    for block_in_erp in (False, True, False):
        with env.edit() as w:
            w.set_blocked(2, block_in_erp)
        assert env.cli("sync").code == 0
        account = env.accounts()["2"]
        assert (account["status"], account["block_reason"]) == ("blocked", "Zaległe płatności")
    shown = env.cli("accounts", "show", "zamowienia@kowalski.com.pl", "--json").doc
    assert (shown["support_block_reason"], shown["support_blocked_by"]) == (
        "Zaległe płatności",
        "ewa",
    )
    unblocked = env.cli("accounts", "unblock", "2", "--actor", "ewa", "--json")
    assert unblocked.code == 0, unblocked.err
    assert unblocked.doc["mail_result"]["status"] == "sent"
    # Never activated (blocked before its activation went out): the unblock sends the
    # activation with a password, and the account is active once it is accepted.
    assert env.accounts()["2"]["status"] == "active"
    assert env.accounts()["2"]["block_reason"] is None
    history = env.cli("history", "K002", "--json").doc["history"]
    support = [(h["action"], h["actor"]) for h in history if h["action"].startswith("support")]
    assert support == [("support_block", "ewa"), ("support_unblock", "ewa")]
    mailed = [(h["detail"]["template"], h["actor"]) for h in history if h["action"] == "mail_sent"]
    assert mailed == [("blocked", "ewa"), ("activation", "ewa")]


def test_erp_block_is_lifted_by_the_erp(env: GtEnv) -> None:
    """Blocked in the ERP, then unblocked there: the account follows both ways."""
    with env.edit() as w:
        w.set_blocked(3, True)
    assert env.cli("sync").code == 0
    account = env.accounts()["3"]
    assert (account["status"], account["block_reason"]) == ("blocked", ERP_BLOCK_REASON)
    with env.edit() as w:
        w.set_blocked(3, False)
    assert env.cli("sync").code == 0
    assert env.accounts()["3"]["status"] == "pending"


def test_support_unblock_leaves_an_erp_block_in_place(env: GtEnv) -> None:
    """Lifting a support block of an account the ERP blocks keeps it blocked, ERP reason."""
    with env.edit() as w:
        w.set_blocked(6, True)
    assert env.cli("sync").code == 0
    assert env.cli("accounts", "block", "6", "--reason", "Oszustwo").code == 0
    assert env.accounts()["6"]["block_reason"] == "Oszustwo"
    assert env.cli("accounts", "unblock", "6").code == 0
    account = env.accounts()["6"]
    assert (account["status"], account["block_reason"]) == ("blocked", ERP_BLOCK_REASON)
    again = env.cli("accounts", "unblock", "6")
    assert again.code == 1
    assert "blocked in the ERP: unblock it there" in again.err


def test_find_is_case_and_accent_insensitive_and_reads_any_nip(env: GtEnv) -> None:
    """'*kowalsk*' finds Kowalska, KOWALSKI and Kowalśki; a NIP in any form finds K001."""
    with env.edit() as w:
        w.add_contractor(11, "K011", "Anna Kowalska", email="anna@ak.pl", features=["b2b"])
        w.add_contractor(12, "K012", "KOWALSKI HURT", email="hurt@kh.pl", features=["b2b"])
        w.add_contractor(13, "K013", "Kowalśki Tomasz", email="tk@tk.pl", features=["b2b"])
    assert env.cli("sync").code == 0
    found = env.cli("accounts", "find", "*kowalsk*", "--json").doc["accounts"]
    assert [a["key"] for a in found] == ["11", "2", "12", "13"]  # by name
    for typed in ("5213017228", "521-301-72-28", "PL5213017228", "PL 521-301-72-28"):
        hits = env.cli("accounts", "find", typed, "--json").doc["accounts"]
        assert [a["key"] for a in hits] == ["1"], typed


def test_reset_password_mails_a_new_one_that_replaces_the_old(env: GtEnv, smtp: Server) -> None:
    """A generated reset activates the account at once; a later one replaces its password."""
    first = env.cli("accounts", "reset-password", "K003", "--json")
    assert first.code == 0, first.err
    second = env.cli("accounts", "reset-password", "sklep@podlipa.pl", "--actor", "jan")
    assert second.code == 0, second.err
    old, new = received(smtp)
    assert old.subject == new.subject
    assert old.password != new.password
    account = env.accounts()["3"]
    assert account["status"] == "active"
    assert verify_password(new.password, account["password_hash"])
    assert not verify_password(old.password, account["password_hash"])
    outbox = [r for r in env.state_rows("syncd_outbox") if r["contractor_key"] == "3"]
    assert sorted(r["status"] for r in outbox) == ["cancelled", "sent", "sent"]  # activation


def test_typed_password_is_set_and_mailed_but_never_stored(
    env: GtEnv, smtp: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    """--password-stdin: the typed password works and is in the mail, not in the store."""
    monkeypatch.setattr("sys.stdin", io.StringIO(TYPED + "\n"))
    typed = env.cli("accounts", "reset-password", "K001", "--password-stdin", "--json")
    assert typed.code == 0, typed.err
    [mail] = received(smtp)
    assert mail.password == TYPED
    assert verify_password(TYPED, env.accounts()["1"]["password_hash"])
    for path in env.directory.glob("state.db*"):
        assert TYPED.encode() not in path.read_bytes()
    assert TYPED not in typed.out + typed.err


def test_typed_password_that_cannot_be_mailed_is_reported_clearly(
    env: GtEnv, smtp: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The server refuses the mail: exit 1, the password is set, and the output says so."""
    smtp.handler.reject = {"biuro@zuraw.pl"}
    monkeypatch.setattr("sys.stdin", io.StringIO(TYPED + "\n"))
    typed = env.cli("accounts", "reset-password", "1", "--password-stdin")
    assert typed.code == 1
    assert "IS set in the portal, but the mail was NOT delivered" in typed.out
    assert verify_password(TYPED, env.accounts()["1"]["password_hash"])
    failed = env.cli("mail", "list", "--status", "failed", "--json").doc["mail"]
    assert [m["template"] for m in failed] == ["password_reset"]
    monkeypatch.setattr("sys.stdin", io.StringIO("short\n"))
    rejected = env.cli("accounts", "reset-password", "1", "--password-stdin")
    assert rejected.code == 1
    assert "type at least 12" in rejected.err


def test_resend_activation_sends_a_fresh_activation_now(env: GtEnv, smtp: Server) -> None:
    """resend-activation mails at once (the queued one is replaced) and activates."""
    resent = env.cli("accounts", "resend-activation", "K006", "--json")
    assert resent.code == 0, resent.err
    [mail] = received(smtp)
    assert mail.to == ["kontrola@kontrolna.pl"]
    assert mail.subject.startswith("Your B2B portal access")
    assert verify_password(mail.password, env.accounts()["6"]["password_hash"])
    statuses = [m["status"] for m in env.cli("accounts", "show", "6", "--json").doc["mail"]]
    assert statuses == ["sent", "cancelled"]


def test_unknown_account_is_a_clear_error(env: GtEnv) -> None:
    """A K that is no id, symbol or login of an account: exit 1 with what to do."""
    missing = env.cli("accounts", "block", "NOPE", "--reason", "x")
    assert missing.code == 1
    assert "accounts find" in missing.err
