"""``portal.passwords: none``: the portal keeps passwords itself; syncd sets none and says so."""

from __future__ import annotations

from collections.abc import Iterator
from email import policy
from email.parser import BytesParser
from pathlib import Path

import pytest
import sqlalchemy as sa

from connectors.sql_portal.schema import account
from tests.gt_env import GtEnv, gt_env


@pytest.fixture
def env(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Iterator[GtEnv]:
    """The GT environment with a portal that keeps passwords itself, mail to files."""
    with gt_env(tmp_path, capsys) as built:
        built.write_config(
            portal={"passwords": "none"}, mail={"send_delay": "0s", "language": "en"}
        )
        yield built


def test_activation_carries_login_and_portal_and_no_password_is_set(env: GtEnv) -> None:
    """The activation mail says how to set a password in the portal; no hash is written."""
    assert env.cli("sync").code == 0
    with env.portal.connect() as conn:
        rows = conn.execute(sa.select(account.c.login, account.c.status, account.c.password_hash))
        accounts = {row.login: row for row in rows}
    assert accounts["biuro@zuraw.pl"].status == "active"
    assert all(row.password_hash is None for row in accounts.values())
    mails = sorted((env.directory / "outbox").glob("*.eml"))
    assert len(mails) == len(accounts)
    message = BytesParser(policy=policy.default).parsebytes(mails[0].read_bytes())
    text = message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert "Forgot password" in text
    assert "https://b2b.example.com" in text


def test_reset_password_is_refused_with_what_to_do(env: GtEnv) -> None:
    """A support reset cannot set a password the portal keeps itself; it says so, exit 1."""
    assert env.cli("sync").code == 0
    outcome = env.cli("accounts", "reset-password", "1")
    assert outcome.code == 1
    assert "portal.passwords: none" in outcome.err + outcome.out
