"""A SCIM portal that stops answering mid-cycle: exit 4, then convergence, no duplicate,
no mail lost or sent twice. The real scim2-server is frozen (SIGSTOP) while `syncd sync`
writes to it, and thawed (SIGCONT) before the next cycle; it keeps what it had."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

from connectors import SOURCES
from connectors.fake import FakeContractor
from tests.scim_server import running
from tests.support import write_config

CONTRACTORS = 120


def _users(server: object) -> list[str]:
    found: list[str] = []
    start = 1
    while True:
        page = server.get("Users", startIndex=start, count=100)  # type: ignore[attr-defined]
        found += [user["userName"] for user in page.get("Resources", [])]
        if start + 100 > page["totalResults"]:
            return found
        start += 100


def _sync(config: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603 - this interpreter, fixed argv
        [sys.executable, "-m", "syncd", "--config", str(config), "sync"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_a_portal_frozen_mid_cycle_is_exit_4_then_converges_without_twins(
    tmp_path: Path,
) -> None:
    """Frozen after some creates: exit 4 naming the portal; thawed: exit 0, every account
    once, every activation mail exactly once."""
    fake = SOURCES["subiekt_gt"].load_fake()(f"sqlite:///{tmp_path}/erp.db")
    fake.create()
    fake.add(
        FakeContractor(n, f"S{n:04d}", f"Firma {n}", email=f"k{n}@example.com", features=("b2b",))
        for n in range(1, CONTRACTORS + 1)
    )
    fake.close()
    with running(tmp_path / "scim") as server:
        portal = server.section(timeout="2s", retry_budget="3s", concurrency=2)
        config = write_config(
            tmp_path, source=fake.source_config("b2b"), portal=portal, mail={"send_delay": "0s"}
        )
        assert config.path is not None
        process = subprocess.Popen(  # noqa: S603 - this interpreter, fixed argv
            [sys.executable, "-m", "syncd", "--config", str(config.path), "sync"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        deadline = time.monotonic() + 120
        while len(_users(server)) < 10:
            assert time.monotonic() < deadline, "the sync never started creating"
            time.sleep(0.05)
        os.kill(server.process.pid, signal.SIGSTOP)
        try:
            out, err = process.communicate(timeout=240)
        finally:
            os.kill(server.process.pid, signal.SIGCONT)
        assert process.returncode == 4, err[-2000:]
        assert "not answering" in err or "cannot reach" in err or "timed out" in err
        assert "mail: not sent" in out
        first = _users(server)
        assert 10 <= len(first) < CONTRACTORS

        second = _sync(config.path)
        assert second.returncode == 0, second.stderr[-2000:]
        users = _users(server)
        assert sorted(users) == sorted(f"k{n}@example.com" for n in range(1, CONTRACTORS + 1))
        assert not [u for u, n in Counter(users).items() if n > 1]
        assert _sync(config.path).returncode == 0  # and a third finds nothing to do

    mails = list((tmp_path / "outbox").glob("*.eml"))
    recipients = Counter(
        line.split(":", 1)[1].strip()
        for mail in mails
        for line in mail.read_text(errors="replace").splitlines()
        if line.startswith("To:")
    )
    assert len(recipients) == CONTRACTORS
    assert set(recipients.values()) == {1}
