"""``syncd sync`` on a terminal, under systemd and with ``--json``: the progress bars, the
mail still due after a run's time budget, and ``--until-done`` draining the queue.

The terminal tests run ``python -m syncd`` as a real process on a pseudo-terminal (pty),
because only a real terminal makes ``isatty()`` true; the others run in-process.
"""

from __future__ import annotations

import fcntl
import json
import os
import pty
import re
import select
import struct
import subprocess
import sys
import termios
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from syncd.config import load_config
from syncd.cycle import CycleRequest, run_cycle
from syncd.mail._rules import chunk_size
from syncd.wiring import open_services
from tests.gt_env import GtEnv, gt_env
from tests.mail_env import received, smtp_section
from tests.smtp_server import Server

BAR = "━"  # rich's bar character: on a terminal only
HIDE_CURSOR = "\x1b[?25l"
# Contractors added to the GT test ERP's 4: a run whose budget is used up at once still
# sends the password chunk in hand and the one hashed meanwhile (2 chunks), so this is
# more mail than two such runs send, on any number of cores.
EXTRA = 5 * chunk_size()


@pytest.fixture
def env(tmp_path: Path, capsys: pytest.CaptureFixture[str], smtp: Server) -> Iterator[GtEnv]:
    """The GT test ERP, mail to ``smtp`` without delay, cheap bcrypt in any process."""
    portal = {"password_cost": 4}
    with gt_env(tmp_path, capsys, mail=smtp_section(smtp), portal=portal) as environment:
        yield environment


def _more_contractors(env: GtEnv, count: int = EXTRA) -> None:
    with env.edit() as w:
        for n in range(count):
            kh_id = 100 + n
            email = f"klient{n}@hurt.pl"
            w.add_contractor(
                kh_id, f"H{kh_id}", f"Hurt {n} Sp. z o.o.", email=email, features=["b2b"]
            )


def _open_pty() -> tuple[int, int]:
    main, child = pty.openpty()
    fcntl.ioctl(child, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
    return main, child


def _drain(fds: list[int], process: subprocess.Popen[bytes]) -> dict[int, bytes]:
    """Everything written to the pty ``fds`` until the process ends (generous deadline)."""
    output = dict.fromkeys(fds, b"")
    open_fds = list(fds)
    while open_fds:
        ready, _, _ = select.select(open_fds, [], [], 120)
        if not ready:
            process.kill()
            pytest.fail("syncd wrote nothing for 120 s")
        for fd in ready:
            try:
                data = os.read(fd, 65536)
            except OSError:  # the child side closed: Linux reports EIO
                data = b""
            if data:
                output[fd] += data
            else:
                open_fds.remove(fd)
    process.wait(timeout=120)
    return output


def _syncd(env: GtEnv, *args: str, stdout: int, stderr: int) -> subprocess.Popen[bytes]:
    environ = dict(os.environ, TERM="xterm-256color", COLUMNS="120")
    return subprocess.Popen(  # noqa: S603 - our own interpreter and module
        [sys.executable, "-m", "syncd", "--config", str(env.config_path), *args],
        stdin=subprocess.DEVNULL,
        stdout=stdout,
        stderr=stderr,
        env=environ,
    )


def test_sync_on_a_terminal_shows_a_bar_per_phase_with_counts(env: GtEnv, smtp: Server) -> None:
    """On a pty: bars for reading, applying and mailing, each with its final count."""
    main, child = _open_pty()
    process = _syncd(env, "sync", stdout=child, stderr=child)
    os.close(child)
    text = _drain([main], process)[main].decode("utf-8", "replace")
    os.close(main)
    assert process.returncode == 0, text
    assert BAR in text
    for label in ("read ERP", "apply", "send mail"):
        assert label in text
    assert text.count("4/4") >= 3  # 4 contractors read, 4 applied, 4 mails
    assert "mail: sent 4" in text
    assert len(received(smtp)) == 4


def test_sync_json_on_a_terminal_prints_pure_json_and_no_bars(env: GtEnv) -> None:
    """``--json`` on a terminal: stdout is one JSON document, no bar anywhere."""
    out_main, out_child = _open_pty()
    err_main, err_child = _open_pty()
    process = _syncd(env, "sync", "--json", stdout=out_child, stderr=err_child)
    os.close(out_child)
    os.close(err_child)
    output = _drain([out_main, err_main], process)
    os.close(out_main)
    os.close(err_main)
    out = output[out_main].decode().replace("\r\n", "\n")
    err = output[err_main].decode()
    assert process.returncode == 0, err
    document = json.loads(out)
    assert document["mail"]["sent"] == 4
    assert BAR not in out + err
    assert HIDE_CURSOR not in out + err


def test_sync_without_a_terminal_prints_log_lines_and_no_bars(env: GtEnv) -> None:
    """Under systemd or a pipe: JSON log lines on stderr, the result on stdout, no bars."""
    process = subprocess.run(  # noqa: S603 - our own interpreter and module
        [sys.executable, "-m", "syncd", "--config", str(env.config_path), "sync"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert process.returncode == 0, process.stderr
    assert BAR not in process.stdout + process.stderr
    assert "\x1b[" not in process.stdout + process.stderr
    events = [json.loads(line)["event"] for line in process.stderr.splitlines()]
    assert "sync.finished" in events
    assert "mail.finished" in events
    assert "mail: sent 4" in process.stdout


def test_mail_left_by_the_budget_is_counted_with_who_sends_it(env: GtEnv, smtp: Server) -> None:
    """A run stopped by mail.run_budget says how many mails are still due, and that the
    next sync (no daemon runs) sends them; the JSON carries the same."""
    _more_contractors(env)
    env.write_config(mail={**smtp_section(smtp), "run_budget": 0.001})
    sync = env.cli("sync", "--json")
    assert sync.code == 0, sync.err
    mail = sync.doc["mail"]
    total = 4 + EXTRA
    assert 0 < mail["sent"] < total
    assert mail["still_due"] == total - mail["sent"]
    assert mail["sent_by"] == "next sync"
    assert mail["daemon_next_run_at"] is None
    assert mail["stopped"].startswith("the run's time budget is used up")
    text = env.cli("sync").out
    said = re.search(
        r"^mail: (\d+) mails still due; no daemon is running: the next `syncd sync` "
        r"sends them, or `syncd sync --until-done` sends them all now$",
        text,
        re.M,
    )
    assert said is not None, text
    pending = [row for row in env.state_rows("syncd_outbox") if row["status"] == "pending"]
    assert int(said.group(1)) == len(pending) > 0


def test_mail_left_names_the_daemons_next_mail_run(env: GtEnv, smtp: Server) -> None:
    """With a daemon running cycles, the mail still due goes out with its next mail run."""
    _more_contractors(env)
    env.write_config(mail={**smtp_section(smtp), "run_budget": 0.001})
    with open_services(load_config(env.config_path)) as services:
        assert run_cycle(services, CycleRequest(trigger="schedule")).exit_code == 0
        now = services.clock()
    sync = env.cli("sync", "--json")
    mail = sync.doc["mail"]
    assert mail["still_due"] > 0
    assert mail["sent_by"] == "daemon"
    at = datetime.fromisoformat(mail["daemon_next_run_at"])  # within the daemon's minute
    assert now < at <= now + timedelta(minutes=6)
    text = env.cli("sync").out
    assert "still due; the daemon's next mail run sends them (by " in text


def test_until_done_drains_more_mail_than_one_budget_sends(env: GtEnv, smtp: Server) -> None:
    """``sync --until-done`` runs the mailer again and again until nothing is due now."""
    _more_contractors(env)
    env.write_config(mail={**smtp_section(smtp), "run_budget": 0.001})
    sync = env.cli("sync", "--until-done", "--json")
    assert sync.code == 0, sync.err
    mail = sync.doc["mail"]
    assert mail["sent"] == 4 + EXTRA
    assert mail["runs"] > 1
    assert mail["still_due"] == 0
    assert len(received(smtp)) == 4 + EXTRA
    assert len({rcpt for m in received(smtp) for rcpt in m.to}) == 4 + EXTRA  # none twice


def test_until_done_stops_at_mail_deferred_for_a_retry(env: GtEnv, smtp: Server) -> None:
    """A server that defers: --until-done ends, leaving the mail for its retry time."""
    env.write_config(mail={**smtp_section(smtp), "run_budget": 0.001})
    smtp.handler.defer = 1000
    sync = env.cli("sync", "--until-done", "--json")
    mail = sync.doc["mail"]
    assert mail["sent"] == 0
    assert mail["still_due"] == 0
    assert mail["waiting_for_retry"] == 4
    assert mail["next_retry_at"] is not None
    assert "the mail server is unavailable" in mail["stopped"]
