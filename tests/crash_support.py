"""The crash-consistency harness: real ``syncd`` processes SIGKILLed at seeded random points.

``Harness`` owns one site (``tests.crash_site``: a GT-shaped ERP on SQLite, a portal, a
loopback SMTP server that counts its open connections; and a state store) and plays
rounds: change the ERP a little, start ``syncd sync`` or ``syncd run`` as a subprocess,
wait for the phase the round aims at (a new run row: reading; a portal write: applying;
an accepted mail: mailing) or a random delay, SIGKILL it, and record what it hit. Right
after each kill it compares the mails the SMTP server accepted from that process with the
outbox: an accepted mail whose row is still ``pending`` died in the documented duplicate
window (``syncd.mail.mailer``), and only those may arrive twice. The test then runs syncd to
completion and checks the invariants with ``Harness``'s views of the state store and the
mail received."""

from __future__ import annotations

import email
import email.policy
import os
import random
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa

from syncd.store.schema import audit, binding, lease, outbox, run
from tests.crash_site import CountingRecorder, Erp, PortalView
from tests.smtp_server import Server

REPO = Path(__file__).resolve().parents[1]
MARKER_TIMEOUT_S = 90.0  # generous: the machine may be busy
EXIT_TIMEOUT_S = 600.0  # an uninterrupted ``syncd sync`` of the whole site, on a busy machine
POLL_S = 0.01
_OUTBOX_ID = re.compile(r"<syncd\.outbox\.(\d+)\.")
TARGETS = ("read", "apply", "mail", "any")


# -- the rounds ---------------------------------------------------------------------------


@dataclass(slots=True)
class Kill:
    """One SIGKILL: which process, what the round aimed at, what it hit."""

    process: str
    target: str
    phase: str
    window: list[int]  # outbox ids accepted by the server but still pending after the kill
    seconds: float = 0.0  # from the start of the process to the end of the round


@dataclass(slots=True)
class _Watch:
    """What the monitor saw of one process, polled every 10 ms."""

    base_run: int
    accepted_at_start: int
    run_writes: dict[int, object] = field(default_factory=dict)  # run row id -> portal at start
    finished_accepted: dict[int, int] = field(default_factory=dict)  # run id -> accepted then
    last_run: int | None = None
    last_finished: bool = False
    finished_runs: set[int] = field(default_factory=set)
    writes: object = None


class Harness:
    """One site and the kill rounds played on it."""

    def __init__(
        self,
        directory: Path,
        config: Path,
        *,
        erp: Erp,
        portal: PortalView,
        smtp: Server,
        state_url: str,
        rng: random.Random,
    ) -> None:
        self.directory = directory
        self.config = config
        self.erp = erp
        self.portal = portal
        self.smtp = smtp
        self.state = sa.create_engine(state_url)
        self.rng = rng
        self.kills: list[Kill] = []
        self.exits: list[str] = []  # rounds whose process finished before its kill
        self.rounds = 0
        self.running: subprocess.Popen[bytes] | None = None  # killed by ``close`` if alive

    @property
    def handler(self) -> CountingRecorder:
        recorder = self.smtp.handler
        assert isinstance(recorder, CountingRecorder)
        return recorder

    # -- processes ----------------------------------------------------------------------

    def _start(self, command: list[str], name: str) -> tuple[subprocess.Popen[bytes], Path]:
        log = self.directory / f"{name}.log"
        environ = {**os.environ, "PYTHONUNBUFFERED": "1"}
        environ["PYTHONPATH"] = os.pathsep.join(
            filter(None, [str(REPO), environ.get("PYTHONPATH")])
        )
        for systemds in ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID"):
            environ.pop(systemds, None)
        with log.open("wb") as out:
            process = subprocess.Popen(  # noqa: S603 - this interpreter, fixed argv
                [sys.executable, "-m", "syncd", "--config", str(self.config), *command],
                stdout=out,
                stderr=subprocess.STDOUT,
                env=environ,
                cwd=REPO,
            )
        self.running = process
        return process, log

    def run_to_end(self, *command: str) -> int:
        """Run one ``syncd`` command uninterrupted; returns its exit code."""
        process, log = self._start(list(command), f"final-{len(self.exits)}-{self.rounds}")
        self.rounds += 1
        try:
            return process.wait(EXIT_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
            message = f"syncd {' '.join(command)} did not finish\n{_tail(log)}"
            raise AssertionError(message) from None

    def output_of(self, *command: str) -> str:
        """stdout of one ``syncd`` command (``plan --json``)."""
        environ = {**os.environ}
        environ["PYTHONPATH"] = os.pathsep.join(
            filter(None, [str(REPO), environ.get("PYTHONPATH")])
        )
        done = subprocess.run(  # noqa: S603 - this interpreter, fixed argv
            [sys.executable, "-m", "syncd", "--config", str(self.config), *command],
            capture_output=True,
            text=True,
            env=environ,
            cwd=REPO,
            timeout=EXIT_TIMEOUT_S,
            check=False,
        )
        return done.stdout

    # -- one round ----------------------------------------------------------------------

    def play(self, kills: int) -> None:
        """Rounds until ``kills`` processes were killed (a round whose process finished
        before its moment came does not count)."""
        while len(self.kills) < kills:
            self._change_erp()
            self._round()

    def _change_erp(self) -> None:
        rng = self.rng
        if rng.random() < 0.3 and len(self.erp.expected) > 100:
            # Sometimes the contractors added last round (perhaps created in the portal by
            # a killed process that never recorded it), sometimes any.
            pool = self.erp.recent or [int(k) for k in self.erp.expected]
            if rng.random() < 0.5:
                pool = [int(k) for k in self.erp.expected]
            self.erp.drop(rng.sample(pool, min(len(pool), rng.randint(1, 3))))
            self.erp.recent = [k for k in self.erp.recent if str(k) in self.erp.expected]
        if rng.random() < 0.3:
            pool = self.erp.recent if rng.random() < 0.5 else None
            self.erp.change_email(rng.choice(pool or [int(k) for k in self.erp.expected]))
        if rng.random() < 0.7:
            self.erp.edit_terms(rng.choice((0.02, 0.05, 0.1)))  # up to 200 updates
        self.erp.add(rng.randint(3, 30))

    def _round(self) -> None:
        rng = self.rng
        kind = "daemon" if rng.random() < 0.35 else "sync"
        target = TARGETS[self.rounds % len(TARGETS)]
        started = time.monotonic()
        watch = _Watch(self._last_run_id(), len(self.handler.accepted))
        command = ["run"] if kind == "daemon" else ["sync"]
        process, log = self._start(command, f"round-{self.rounds:03d}-{kind}-{target}")
        self.rounds += 1
        hit = self._wait_for(process, watch, target)
        if process.poll() is not None:
            code = process.returncode
            if code not in (0, None):
                raise AssertionError(f"syncd {kind} exited {code}\n{_tail(log)}")
            self.exits.append(target)
            self._after_process(watch)
            return
        self._observe(watch)
        phase = self._phase(watch, kind)
        process.send_signal(signal.SIGKILL)
        process.wait(30)
        if not hit:
            phase += "(late)"
        window = self._after_process(watch)
        self.kills.append(Kill(kind, target, phase, window, time.monotonic() - started))

    def _wait_for(self, process: subprocess.Popen[bytes], watch: _Watch, target: str) -> bool:
        """Wait for the round's moment; True when it came (else the marker never showed)."""
        rng = self.rng
        if target == "any":
            _wait_until(lambda: process.poll() is not None, rng.uniform(0.1, 3.0))
            return True
        seen: Callable[[], bool]
        if target == "read":
            seen = lambda: watch.last_run is not None and not watch.last_finished  # noqa: E731
            delay = rng.uniform(0.0, 0.25)
        elif target == "apply":
            seen = lambda: any(  # noqa: E731
                at != watch.writes
                for run_id, at in watch.run_writes.items()
                if run_id == watch.last_run and not watch.last_finished
            )
            # At once half the time: right between the portal's write and the state
            # store's commit, where a crash is most likely to leave something behind.
            delay = rng.choice((0.0, rng.uniform(0.0, 0.3)))
        else:
            seen = lambda: len(self.handler.accepted) > watch.accepted_at_start  # noqa: E731
            delay = rng.uniform(0.0, 0.5)
        deadline = time.monotonic() + MARKER_TIMEOUT_S
        while process.poll() is None and time.monotonic() < deadline:
            self._observe(watch)
            if seen():
                _wait_until(lambda: process.poll() is not None, delay)
                return True
            if len(watch.finished_runs) >= 2:
                return False  # a daemon with nothing left to do: killed while idle
            time.sleep(POLL_S)
        return False

    def _observe(self, watch: _Watch) -> None:
        query = sa.select(run.c.id, run.c.finished_at).where(run.c.id > watch.base_run)
        try:
            with self.state.connect() as conn:
                rows = conn.execute(query.order_by(run.c.id.desc()).limit(1)).all()
        except sa.exc.OperationalError:
            return  # not migrated yet, or busy for a moment: look again at the next poll
        watch.writes = self.portal.writes()
        if not rows:
            return
        run_id, finished_at = rows[0]
        watch.last_run, watch.last_finished = run_id, finished_at is not None
        watch.run_writes.setdefault(run_id, watch.writes)
        if watch.last_finished:
            watch.finished_runs.add(run_id)
            watch.finished_accepted.setdefault(run_id, len(self.handler.accepted))

    def _phase(self, watch: _Watch, kind: str) -> str:
        """What the process was doing when it was killed, by what the monitor saw last."""
        if watch.last_run is None:
            return "start"
        if not watch.last_finished:
            moved = watch.run_writes.get(watch.last_run) != watch.writes
            return "apply" if moved else "read"
        accepted_then = watch.finished_accepted.get(watch.last_run, 0)
        if kind == "sync" or len(self.handler.accepted) > accepted_then:
            return "mail"
        return "idle"

    def _after_process(self, watch: _Watch) -> list[int]:
        """Once the dead process's SMTP connection is gone: the mails it got accepted whose
        outbox row is still pending (the duplicate window); then its leases lapse."""
        self.handler.wait_idle(MARKER_TIMEOUT_S)
        ids = [mail_id(raw) for _, _, raw in self.handler.accepted[watch.accepted_at_start :]]
        pending: list[int] = []
        with self.state.begin() as conn:
            if ids:
                query = sa.select(outbox.c.id).where(
                    outbox.c.id.in_(ids), outbox.c.status == "pending"
                )
                pending = sorted(conn.execute(query).scalars())
            # A killed process holds its leases until their ttl (2 minutes for the CLI,
            # an interval for the daemon); the test plays that time forward instead of
            # waiting it out.
            gone = datetime.now(UTC) - timedelta(seconds=1)
            conn.execute(sa.update(lease).values(expires_at=gone))
        return pending

    def _last_run_id(self) -> int:
        try:
            with self.state.connect() as conn:
                return int(conn.execute(sa.select(sa.func.max(run.c.id))).scalar() or 0)
        except sa.exc.OperationalError:
            return 0

    # -- what the state store holds -----------------------------------------------------

    def bindings(self) -> dict[str, tuple[str, str, str]]:
        """contractor key -> (account id, login, status)."""
        query = sa.select(binding.c.contractor_key, binding.c.account_id, binding.c.login,
                          binding.c.status)  # fmt: skip
        with self.state.connect() as conn:
            return {r[0]: (r[1], r[2], r[3]) for r in conn.execute(query)}

    def audit_actions(self) -> dict[str, set[str]]:
        """contractor key -> the actions the audit trail recorded as done."""
        query = sa.select(audit.c.contractor_key, audit.c.action).where(audit.c.result == "ok")
        found: dict[str, set[str]] = {}
        with self.state.connect() as conn:
            for key, action in conn.execute(query):
                found.setdefault(key, set()).update(action.split("+"))
        return found

    def outbox_rows(self) -> dict[int, tuple[str, str, str, str]]:
        """outbox id -> (contractor key, recipient, template, status)."""
        query = sa.select(outbox.c.id, outbox.c.contractor_key, outbox.c.recipient,
                          outbox.c.template, outbox.c.status)  # fmt: skip
        with self.state.connect() as conn:
            return {r[0]: (r[1], r[2], r[3], r[4]) for r in conn.execute(query)}

    def accepted_ids(self) -> Counter[int]:
        """How many times the SMTP server accepted each outbox mail."""
        return Counter(mail_id(raw) for _, _, raw in self.handler.accepted)

    def close(self) -> None:
        """End the process of a round a failure left running (a daemon never ends alone)."""
        if self.running is not None and self.running.poll() is None:
            self.running.kill()
            self.running.wait(30)
        self.state.dispose()


def mail_id(raw: bytes) -> int:
    """The outbox id a mail's Message-ID names (``syncd.mail._dsn.outbox_message_id``)."""
    message = email.message_from_bytes(raw, policy=email.policy.default)
    found = _OUTBOX_ID.match(str(message["Message-ID"]))
    assert found is not None, f"not a syncd outbox mail: {message['Message-ID']}"
    return int(found.group(1))


def _wait_until(done: Callable[[], bool], seconds: float) -> None:
    """Sleep ``seconds`` unless ``done`` comes true first (the process exited)."""
    deadline = time.monotonic() + seconds
    while not done() and time.monotonic() < deadline:
        time.sleep(min(POLL_S, max(0.0, deadline - time.monotonic())))


def _tail(log: Path) -> str:
    return log.read_text(errors="replace")[-4000:]
