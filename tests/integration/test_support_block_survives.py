"""No sync ever lifts a support block, not even when the portal lost the account's row."""

from __future__ import annotations

from collections.abc import Iterator
from email import policy
from email.parser import BytesParser
from pathlib import Path

import bcrypt
import pytest
import sqlalchemy as sa

from connectors.sql_portal.schema import account
from tests.gt_env import GtEnv, gt_env

REASON = "Zaległe płatności"


@pytest.fixture
def env(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Iterator[GtEnv]:
    """The GT environment with immediate mail to files, synced once, mail sent."""
    with gt_env(tmp_path, capsys) as built:
        built.write_config(mail={"send_delay": "0s"})
        assert built.cli("sync").code == 0
        yield built


def _row(env: GtEnv, login: str) -> sa.Row[tuple[str, str | None, str | None]] | None:
    with env.portal.connect() as conn:
        return conn.execute(
            sa.select(account.c.status, account.c.block_reason, account.c.password_hash).where(
                account.c.login == login
            )
        ).first()


def test_a_row_deleted_by_hand_comes_back_blocked_with_its_reason_and_no_password(
    env: GtEnv,
) -> None:
    """Support blocks K, someone deletes K's portal row, sync --full: blocked, reason kept,
    no password mailed; the unblock then sends the activation."""
    login = "biuro@zuraw.pl"
    assert env.cli("accounts", "block", "1", "--reason", REASON, "--actor", "anna").code == 0
    with env.portal.begin() as conn:
        conn.execute(sa.delete(account).where(account.c.login == login))
    outbox = env.directory / "outbox"
    before = set(outbox.glob("*.eml"))
    assert env.cli("sync", "--full").code == 0
    row = _row(env, login)
    assert row is not None
    assert (row.status, row.block_reason, row.password_hash) == ("blocked", REASON, None)
    shown = env.cli("accounts", "show", "1", "--json").doc
    assert shown["support_block_reason"] == REASON
    assert set(outbox.glob("*.eml")) == before  # no activation, no password went out
    assert env.cli("sync").code == 0  # and a later light cycle does not lift it either
    assert _row(env, login) is not None
    assert _row(env, login).status == "blocked"  # type: ignore[union-attr]

    assert env.cli("accounts", "unblock", "1", "--actor", "anna").code == 0
    sent = sorted(set(outbox.glob("*.eml")) - before)
    assert len(sent) == 1
    message = BytesParser(policy=policy.default).parsebytes(sent[0].read_bytes())
    text = message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    password = next(line for line in text.splitlines() if line.startswith("Hasło: "))[7:]
    after = _row(env, login)
    assert after is not None
    assert after.status == "active"
    assert bcrypt.checkpw(password.encode(), after.password_hash.encode())
