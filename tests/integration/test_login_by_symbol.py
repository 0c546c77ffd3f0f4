"""``portal.login: symbol`` (issue 11, item 2): the client number is the login, the e-mail only
where mail goes. GT-shaped ERP, SQL portal, state store and a real SMTP server (aiosmtpd)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from syncd.passwords import verify_password
from tests.gt_env import GtEnv, gt_env
from tests.mail_env import received, smtp_section
from tests.smtp_server import Server

pytestmark = pytest.mark.usefixtures("quick_bcrypt")
SHARED = "biuro@grupa-kowalski.pl"


@pytest.fixture
def env(tmp_path: Path, capsys: pytest.CaptureFixture[str], smtp: Server) -> Iterator[GtEnv]:
    """The GT test ERP plus two contractors sharing one e-mail; logins are symbols."""
    portal = {"login": "symbol"}
    with gt_env(tmp_path, capsys, mail=smtp_section(smtp), portal=portal) as environment:
        with environment.edit() as w:
            w.add_contractor(21, "KOW-1", "Kowalski Oddział 1", email=SHARED, features=["b2b"])
            w.add_contractor(22, "KOW-2", "Kowalski Oddział 2", email=SHARED, features=["b2b"])
        yield environment


def test_two_contractors_sharing_an_email_each_get_an_account_and_an_activation(
    env: GtEnv, smtp: Server
) -> None:
    """Both get an account with their symbol as login, and each its own activation mail
    (with its own login and password) at the shared address."""
    sync = env.cli("sync", "--json")
    assert sync.code == 0, sync.err
    assert sync.doc["conflict"] == []
    accounts = env.accounts()
    assert (accounts["21"]["login"], accounts["22"]["login"]) == ("KOW-1", "KOW-2")
    assert accounts["21"]["email"] == accounts["22"]["email"] == SHARED
    assert accounts["1"]["login"] == "K001"
    mails = [m for m in received(smtp) if m.to == [SHARED]]
    assert len(mails) == 2
    by_login = {}
    for mail in mails:
        found = re.search(r"^Login: (\S+)", mail.part("plain"), re.MULTILINE)
        assert found is not None
        by_login[found.group(1)] = mail
    assert set(by_login) == {"KOW-1", "KOW-2"}
    for login, key in (("KOW-1", "21"), ("KOW-2", "22")):
        assert verify_password(by_login[login].password, accounts[key]["password_hash"])
        assert accounts[key]["status"] == "active"
    assert by_login["KOW-1"].password != by_login["KOW-2"].password


def test_a_changed_email_changes_only_the_email_field(env: GtEnv, smtp: Server) -> None:
    """A new e-mail in the ERP is an update of ``email`` alone: same login, no mail."""
    assert env.cli("sync").code == 0
    before = len(received(smtp))
    with env.edit() as w:
        w.set_email(21, "nowy@kowalski.pl")
    plan = env.cli("plan", "--json").doc
    [update] = plan["update"]
    assert update["login"] == "KOW-1"
    assert update["changes"] == {"email": {"old": SHARED, "new": "nowy@kowalski.pl"}}
    assert env.cli("sync").code == 0
    assert env.accounts()["21"]["login"] == "KOW-1"
    assert env.accounts()["21"]["email"] == "nowy@kowalski.pl"
    assert len(received(smtp)) == before


def test_a_duplicate_symbol_is_a_conflict_that_names_the_symbol(env: GtEnv) -> None:
    """Symbols compared case-insensitively: 'kow-1' next to 'KOW-1' gives neither an account,
    with a reason that says to give each contractor its own symbol."""
    with env.edit() as w:
        w.add_contractor(23, "kow-1 ", "Kowalski Trzeci", email="trzeci@k.pl", features=["b2b"])
    sync = env.cli("sync", "--json")
    conflicts = {c["key"]: c for c in sync.doc["conflict"]}
    assert set(conflicts) == {"21", "23"}
    assert "its own symbol in the ERP" in conflicts["23"]["reason"]
    accounts = env.accounts()
    assert "22" in accounts
    assert "21" not in accounts


def test_support_finds_an_account_by_symbol_or_unshared_email(env: GtEnv) -> None:
    """``accounts show`` takes the symbol login; a shared e-mail is refused by name."""
    assert env.cli("sync").code == 0
    shown = env.cli("accounts", "show", "KOW-2", "--json")
    assert shown.code == 0, shown.err
    assert shown.doc["key"] == "22"
    assert env.cli("accounts", "show", "sklep@podlipa.pl", "--json").doc["key"] == "3"
    shared = env.cli("accounts", "show", SHARED)
    assert shared.code != 0
    assert "belongs to 2 contractors (21, 22" in shared.out + shared.err


def test_explain_says_the_symbol_is_the_login_and_where_mail_goes(env: GtEnv) -> None:
    """``explain`` names the login's source and the mail address."""
    assert env.cli("sync").code == 0
    outcome = env.cli("explain", "KOW-1")
    assert outcome.code == 0, outcome.err
    text = outcome.out
    assert "the symbol 'KOW-1' is the login (portal.login: symbol)" in text
    assert f"mail goes to {SHARED}" in text


def test_switching_an_install_from_email_to_symbol_renames_every_login(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], smtp: Server
) -> None:
    """An install synced with e-mail logins, switched to symbols: the next cycle renames
    each login (same account) and tells each customer at its e-mail."""
    with gt_env(tmp_path, capsys, mail=smtp_section(smtp)) as env:
        assert env.cli("sync").code == 0
        ids = {key: row["id"] for key, row in env.accounts().items()}
        activations = len(received(smtp))
        env.write_config(portal={"login": "symbol"})
        plan = env.cli("plan", "--json").doc
        renames = {u["key"]: u["changes"]["login"] for u in plan["update"]}
        assert renames["3"] == {"old": "sklep@podlipa.pl", "new": "K003"}
        assert set(renames) == {"1", "2", "3", "6"}
        assert env.cli("sync").code == 0
        after = env.accounts()
        assert {key: row["id"] for key, row in after.items()} == ids
        assert after["3"]["login"] == "K003"
        notices = [m for m in received(smtp)[activations:] if m.to == ["sklep@podlipa.pl"]]
        assert len(notices) == 1
        assert "K003" in notices[0].part("plain")
