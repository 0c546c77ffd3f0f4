"""The command line end to end on a GT-shaped ERP: conflicts, outages, bad config, removal guard.

Most tests call ``syncd.cli.main`` in-process; one runs the installed ``syncd`` script and
``python -m syncd`` as real processes, to prove the exit codes reach the shell.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from connectors.subiekt_gt.fake import GtWriter
from tests.gt_env import IN_SCOPE, GtEnv, gt_env, run_main

UNREACHABLE_PG = "postgresql+psycopg://postgres@127.0.0.1:9/x"
BAD_CONFIG = """\
state: {url: "sqlite:///%(dir)s/state.db"}
source: {kind: subiekt_gt, url: "sqlite:///%(dir)s/erp.db", feature: b2b}
portal: {kind: sql, url: "sqlite:///%(dir)s/portal.db", on_removed: remove}
mail: {transport: file, directory: "%(dir)s/outbox", sender: "B2B <b2b@example.com>",
       send_delay: soon}
safety: {max_removals: lots}
"""
BAD_CONFIG_PATHS = ("portal.on_removed", "mail.send_delay", "safety.max_removals")


@pytest.fixture
def env(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Iterator[GtEnv]:
    """The GT environment on SQLite files."""
    with gt_env(tmp_path, capsys) as built:
        yield built


def _add_email_troubles(w: GtWriter) -> None:
    """In scope: 7 without e-mail, 8 with an invalid one, 9 and 10 sharing one."""
    w.add_contractor(7, "K007", "Bez Maila Sp. z o.o.", email="  ", features=["b2b"])
    w.add_contractor(8, "K008", "Zły Mail S.A.", email="biuro(at)zly.pl", features=["b2b"])
    w.add_contractor(9, "K009", "Bliźniak Pierwszy", email="Wspolny@Firma.pl", features=["b2b"])
    w.add_contractor(10, "K010", "Bliźniak Drugi", email=" wspolny@firma.pl", features=["b2b"])


def test_email_conflicts_are_reported_and_every_other_contractor_is_synced(env: GtEnv) -> None:
    """Missing, invalid and shared e-mails are conflicts with reasons; the rest still sync."""
    with env.edit() as w:
        _add_email_troubles(w)
    plan = env.cli("plan", "--json")
    assert plan.code == 0, plan.err
    kinds = {c["key"]: c["kind"] for c in plan.doc["conflict"]}
    assert kinds == {
        "7": "missing_email",
        "8": "invalid_email",
        "9": "duplicate_email",
        "10": "duplicate_email",
    }
    reasons = {c["key"]: c["reason"] for c in plan.doc["conflict"]}
    assert "has no e-mail address: add one in the ERP" in reasons["7"]
    assert "'biuro(at)zly.pl'" in reasons["8"]
    assert "correct it in the ERP" in reasons["8"]
    assert "shares e-mail wspolny@firma.pl with contractor 10 (K010)" in reasons["9"]
    assert "with contractor 9 (K009)" in reasons["10"]

    sync = env.cli("sync", "--json")
    assert sync.code == 0, sync.err
    assert sorted(c["key"] for c in sync.doc["create"]) == sorted(IN_SCOPE)
    assert {c["result"] for c in sync.doc["create"]} == {"ok"}
    assert sorted(env.accounts()) == sorted(IN_SCOPE)
    status = env.cli("status", "--json")
    assert status.code == 0, status.out
    assert {c["key"]: c["reason"] for c in status.doc["conflicts"]} == reasons

    # Fixed in the ERP: 7 gets an e-mail, 9 takes one that is K001's login, freeing 10's.
    with env.edit() as w:
        w.set_email(7, "biuro@bezmaila.pl")
        w.set_email(9, "BIURO@zuraw.pl")
    sync = env.cli("sync", "--json")
    assert sync.code == 0, sync.err
    assert sorted(c["key"] for c in sync.doc["create"]) == ["10", "7"]
    assert [(c["key"], c["kind"]) for c in sync.doc["conflict"]] == [
        ("8", "invalid_email"),
        ("9", "login_taken"),
    ]
    assert "already the login of contractor 1 (K001)" in sync.doc["conflict"][1]["reason"]
    assert env.accounts()["1"]["contractor_key"] == "1"
    still = env.cli("status", "--json").doc["conflicts"]
    assert sorted(c["key"] for c in still) == ["8", "9"]


@pytest.mark.parametrize(
    "erp_url",
    [
        pytest.param(UNREACHABLE_PG, id="closed-port"),
        pytest.param("sqlite:////nonexistent-syncd-dir/erp.db", id="missing-sqlite-file"),
    ],
)
def test_unreachable_erp_exits_4_and_changes_nothing(env: GtEnv, erp_url: str) -> None:
    """With the ERP gone, plan and sync exit 4 and no portal or bookkeeping row changes."""
    with env.edit() as w:
        w.set_price(1, 3)  # an ERP edit the next cycle must not half-apply
    assert env.cli("sync").code == 0
    env.set_in_scope(2, present=False)
    before = env.snapshot()
    env.write_config(source={"url": erp_url})
    with env.recording() as recorder:
        sync = env.cli("sync", "--json")
        plan = env.cli("plan", "--json")
    assert (sync.code, plan.code) == (4, 4)
    assert "cannot reach the Subiekt GT database" in sync.doc["error"]
    assert sync.doc["exit_code"] == 4
    assert "create" not in sync.doc, "an outage must yield no plan at all"
    assert env.snapshot() == before
    bookkeeping = ("b2b_", "syncd_binding", "syncd_audit", "syncd_outbox", "syncd_conflict")
    assert recorder.touching(*bookkeeping) == []
    status = env.cli("status", "--json")
    assert status.code == 1
    assert status.doc["last_cycle"]["status"] == "unavailable"


def test_invalid_config_exits_2_and_lists_every_error_with_its_path(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Three mistakes give three lines with their YAML paths, exit 2, and nothing started."""
    path = tmp_path / "config.yaml"
    path.write_text(BAD_CONFIG % {"dir": tmp_path}, encoding="utf-8")
    for command in ("check-config", "sync", "plan"):
        code = run_main(["--config", str(path), command])
        err = capsys.readouterr().err
        assert code == 2, command
        lines = [
            line.strip() for line in err.splitlines() if line.strip().startswith(BAD_CONFIG_PATHS)
        ]
        assert sorted(line.split(":")[0] for line in lines) == sorted(BAD_CONFIG_PATHS), err
        assert "(got 'remove')" in err
    assert not (tmp_path / "portal.db").exists()
    assert not (tmp_path / "state.db").exists()


def test_malformed_yaml_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A file that is not YAML at all exits 2 with the file and line of the mistake."""
    path = tmp_path / "config.yaml"
    path.write_text("state: {url: [unclosed\nportal: :\n", encoding="utf-8")
    assert run_main(["--config", str(path), "sync"]) == 2
    err = capsys.readouterr().err
    assert f"{path}:2:" in err
    assert "invalid YAML" in err


def test_removal_guard_holds_every_removal_until_allowed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Over ``max_removals`` none is removed and all are held (exit 3) until --allow-removals."""
    with gt_env(tmp_path, capsys, safety={"max_removals": 1}) as env:
        assert env.cli("sync").code == 0
        env.set_in_scope(1, 2, 3, present=False)
        before = env.snapshot()
        held = env.cli("sync", "--json")
        assert held.code == 3, held.err
        assert [(r["key"], r["symbol"]) for r in held.doc["held"]] == [
            ("1", "K001"),
            ("2", "K002"),
            ("3", "K003"),
        ]
        assert held.doc["remove"] == []
        assert env.snapshot()["accounts"] == before["accounts"]
        assert env.state_rows("syncd_binding") == before["syncd_binding"]
        status = env.cli("status", "--json")
        assert (status.code, status.doc["held_removals"]) == (0, 3)

        allowed = env.cli("sync", "--json", "--allow-removals")
        assert allowed.code == 0, allowed.err
        assert sorted(r["key"] for r in allowed.doc["remove"]) == ["1", "2", "3"]
        assert {r["result"] for r in allowed.doc["remove"]} == {"ok"}
        assert sorted(env.accounts()) == ["6"]


def test_exit_codes_reach_the_shell(env: GtEnv) -> None:
    """The installed script and ``python -m syncd`` exit 0, 4 and 2 as real processes."""
    script = Path(sys.executable).with_name("syncd")
    config = str(env.config_path)

    def run(*command: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(  # noqa: S603 - our own interpreter and script
            command, capture_output=True, text=True, timeout=120, check=False
        )

    first = run(str(script), "--config", config, "sync", "--json")
    assert first.returncode == 0, first.stderr
    assert len(env.accounts()) == len(IN_SCOPE)

    env.write_config(source={"url": UNREACHABLE_PG})
    outage = run(sys.executable, "-m", "syncd", "--config", config, "sync")
    assert outage.returncode == 4, outage.stderr

    (env.directory / "config.yaml").write_text("portal: {on_removed: remove}\n", encoding="utf-8")
    invalid = run(sys.executable, "-m", "syncd", "--config", config, "check-config")
    assert invalid.returncode == 2
    assert "portal.on_removed" in invalid.stderr
