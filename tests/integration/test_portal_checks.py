"""What `doctor` says about a portal it cannot use: one clear line, the right exit, no secret."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.gt_env import run_main
from tests.scim_server import running
from tests.support import write_config


def test_a_wrong_scim_token_is_one_line_exit_4_without_the_token(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """doctor against a real SCIM server with a wrong token: exit 4, "check the token"."""
    wrong = "wrong-token-0123456789"
    with running(tmp_path / "scim") as server:
        section = {**server.section(), "token": wrong}
        config = write_config(tmp_path, portal=section)
        code = run_main(["--config", str(config.path), "doctor", "--json"])
    captured = capsys.readouterr()
    assert code == 4
    (portal,) = [c for c in json.loads(captured.out)["checks"] if c["check"] == "portal"]
    assert not portal["ok"]
    assert "check the token" in portal["detail"]
    assert "\n" not in portal["detail"]
    assert wrong not in captured.out + captured.err


def test_an_unreachable_rest_url_is_exit_4_naming_the_host(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """doctor against a closed port: exit 4, the host named, within the retry budget."""
    config = write_config(tmp_path, portal=_closed_rest_portal("2s"))
    assert run_main(["--config", str(config.path), "doctor"]) == 4
    out = capsys.readouterr().out
    line = next(row for row in out.splitlines() if row.startswith("[FAIL] portal"))
    assert "127.0.0.1:9" in line
    assert "t0ken-never-shown" not in out


def test_doctor_does_not_wait_a_cycles_retry_budget(tmp_path: Path) -> None:
    """With a retry budget of an hour, doctor still answers about a dead portal: it waits
    ``syncd.doctor.DOCTOR_RETRY_BUDGET`` (10 s), not the hour a cycle would."""
    config = write_config(tmp_path, portal=_closed_rest_portal("1h"))
    done = subprocess.run(  # noqa: S603 - our own interpreter and module
        [sys.executable, "-m", "syncd", "--config", str(config.path), "doctor"],
        capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert done.returncode == 4
    assert "[FAIL] portal" in done.stdout


def _closed_rest_portal(retry_budget: str) -> dict[str, object]:
    """A REST portal section whose URL is a closed port on loopback."""
    return {
        "kind": "rest",
        "url": "http://127.0.0.1:9/api",
        "token": "t0ken-never-shown",
        "retry_budget": retry_budget,
        "operations": {
            "list": {"path": "/users"},
            "create": {"method": "POST", "path": "/users", "body": '{"email": {{ login }}}'},
            "update": {"method": "PATCH", "path": "/users/{{ id }}", "body": "{}"},
            "delete": {"method": "DELETE", "path": "/users/{{ id }}"},
            "set_password": {
                "method": "POST",
                "path": "/users/{{ id }}/password",
                "body": '{"password": {{ password }}}',
            },
        },
        "fields": {"id": "id", "login": "email"},
    }
