"""Planted secrets never appear in anything syncd writes: check-config, doctor, sync, status,
explain, their --json documents, the log lines and the error messages."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from connectors.subiekt_gt.fake import GtFake
from tests.contract.sources import CONTRACTORS
from tests.smtp_server import SECRET as SMTP_SECRET
from tests.smtp_server import USER as SMTP_USER
from tests.smtp_server import Server
from tests.support import write_config

STATE_SECRET = "Stat3-Planted-Secret-9q"  # noqa: S105 - planted to be looked for
PORTAL_SECRET = "P0rtal-Planted-Secret-7w"  # noqa: S105 - planted to be looked for


def _run(config: Path, *args: str) -> str:
    done = subprocess.run(  # noqa: S603 - this interpreter, fixed argv
        [sys.executable, "-m", "syncd", "--config", str(config), *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    return done.stdout + done.stderr


@pytest.mark.postgres
def test_planted_secrets_appear_in_no_output_log_or_error(
    tmp_path: Path, pg_url: str, smtp: Server
) -> None:
    """Passwords of the state store, the portal and SMTP are in no command's output."""
    erp = GtFake(f"sqlite:///{tmp_path}/erp.db")
    erp.create()
    erp.add(CONTRACTORS)
    erp.close()
    config = write_config(
        tmp_path,
        state={"url": pg_url, "password": STATE_SECRET},
        source=erp.source_config("b2b"),
        portal={"kind": "sql", "url": pg_url, "password": PORTAL_SECRET},
        mail={
            "transport": "smtp",
            "send_delay": "0s",
            "smtp": {
                "host": "127.0.0.1",
                "port": smtp.port,
                "security": "none",
                "username": SMTP_USER,
                "password": SMTP_SECRET,
            },
        },
    )
    assert config.path is not None
    written = "".join(
        _run(config.path, *args)
        for args in (
            ("check-config", "--json"),
            ("check-config",),
            ("doctor", "--json"),
            ("doctor",),
            ("sync", "--json"),
            ("sync",),
            ("status", "--json"),
            ("explain", "1", "--json"),
            ("accounts", "show", "1", "--json"),
            ("mail", "list", "--json"),
            ("--log-level", "debug", "plan", "--json"),
        )
    )
    assert '"valid": true' in written  # the commands really ran
    assert "biuro@zuraw.pl" in written
    for secret in (STATE_SECRET, PORTAL_SECRET, SMTP_SECRET):
        assert secret not in written
    # A wrong SMTP server: the error names the server, never the password.
    broken = write_config(
        tmp_path,
        mail={
            "transport": "smtp",
            "smtp": {
                "host": "127.0.0.1",
                "port": 9,
                "security": "none",
                "username": SMTP_USER,
                "password": SMTP_SECRET,
            },
        },
    )
    assert broken.path is not None
    failed = _run(broken.path, "doctor")
    assert "127.0.0.1" in failed
    assert SMTP_SECRET not in failed
