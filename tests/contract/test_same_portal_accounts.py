"""One ERP, every portal: the same contractors synced into syncd's SQL schema, SCIM and
WordPress end in the same accounts with the same stored attributes, and a re-run creates
no duplicate anywhere."""

from __future__ import annotations

from email import policy
from email.parser import BytesParser
from pathlib import Path
from typing import Any

import pytest

from connectors import SOURCES
from connectors.base import Portal
from tests.contract.portals import FACTORIES, built
from tests.contract.sources import CONTRACTORS
from tests.gt_env import run_main
from tests.support import write_config

# Every portal kind that reaches a server we did not write, plus our own SQL schema.
PORTAL_KINDS = [name for name in ("sql-sqlite", "scim", "wordpress") if name in FACTORIES]


def _accounts(portal: Portal) -> dict[str, dict[str, Any]]:
    listed: dict[str, dict[str, Any]] = {}
    for account in portal.accounts():
        assert account.contractor_key not in listed, "a duplicate account"
        stored = {k: v for k, v in account.fields.items() if k in portal.stored_fields}
        listed[str(account.contractor_key)] = {**stored, "status": account.status}
    return listed


@pytest.mark.parametrize("name", [pytest.param(n, marks=FACTORIES[n][0]) for n in PORTAL_KINDS])
def test_every_portal_ends_with_the_same_accounts(
    name: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """`syncd sync` twice into this portal gives the accounts the SQL portal gets."""
    target = built(FACTORIES[name][1](request, tmp_path))
    fake = SOURCES["subiekt_gt"].load_fake()(f"sqlite:///{tmp_path}/erp.db")
    fake.create()
    fake.add(CONTRACTORS)
    source = fake.source_config("b2b")
    fake.close()
    mail = {"send_delay": "0s"}
    config = write_config(tmp_path, source=source, portal=target.section, mail=mail)
    for _ in range(2):
        assert run_main(["--config", str(config.path), "sync"]) == 0
    got = _accounts(target.portal)
    # The activation password mailed to each customer logs in, checked as the portal does
    # it (WordPress: a POST to its own wp-login.php).
    assert target.verify_password is not None
    passwords = _mailed_passwords(tmp_path / "outbox")
    # 3 is blocked in the ERP: created blocked, its activation waits for the unblock.
    assert sorted(passwords) == ["biuro@krakbud.pl", "biuro@zuraw.pl", "osemka@o.pl"]
    for login, password in passwords.items():
        assert target.verify_password(login, password), (name, login)
    assert sorted(got) == ["1", "2", "3", "8"]  # 6 has no e-mail: a conflict
    reference = _REFERENCE.setdefault("accounts", got)
    fields = target.portal.stored_fields
    for key, expected in reference.items():
        assert {k: v for k, v in got[key].items() if k in fields | {"status"}} == {
            k: v for k, v in expected.items() if k in fields | {"status"}
        }, (name, key)


_REFERENCE: dict[str, dict[str, dict[str, Any]]] = {}


def _mailed_passwords(outbox: Path) -> dict[str, str]:
    """The password in each activation mail written to ``outbox``, by recipient."""
    found: dict[str, str] = {}
    for path in outbox.glob("*.eml"):
        message = BytesParser(policy=policy.default).parsebytes(path.read_bytes())
        text = message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
        for line in text.splitlines():
            if line.startswith("Hasło: "):
                found[str(message["To"])] = line.removeprefix("Hasło: ").strip()
    return found
