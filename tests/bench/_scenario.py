"""The benchmark's scenarios: fresh databases, the ERP fixture, and each phase in its process.

A scenario owns its three databases (ERP, portal, state store), builds the ERP in this
process, and runs every measured phase through ``Runner`` (a fresh Python process per
phase, or this process with ``in_process``). What each phase must plan is recorded beside
its figures (``expected``) so that the invariant checks can read it back from the JSON.
"""

from __future__ import annotations

import json
import logging
import math
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from tests.bench._erp import ErpFacts, build_erp, change_emails, edit_one_percent
from tests.bench._phase import run_phase
from tests.smtp_server import SECRET, USER, Recorder, running
from tests.support import write_config

PG_ADMIN_URL = os.environ.get(
    "SYNCD_BENCH_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
ROOT = Path(__file__).resolve().parents[2]
CYCLES = ("first sync", "no-op cycle", "1% change cycle")


class BenchError(Exception):
    """A phase could not run (a cycle failed, a server is missing): no figures to report."""


@dataclass(slots=True)
class Runner:
    """Runs a phase spec in a fresh process (default) or in this one."""

    in_process: bool = False

    def __call__(self, spec: dict[str, Any]) -> dict[str, Any]:
        if self.in_process:
            result = run_phase(spec)
        else:
            with tempfile.TemporaryDirectory(prefix="syncd-bench-phase-") as tmp:
                spec_path, out_path = Path(tmp, "spec.json"), Path(tmp, "out.json")
                spec_path.write_text(json.dumps(spec), encoding="utf-8")
                done = subprocess.run(  # noqa: S603 - this interpreter, our own module
                    [sys.executable, "-m", "tests.bench._phase", str(spec_path), str(out_path)],
                    cwd=ROOT, capture_output=True, text=True, check=False,
                )  # fmt: skip
                if done.returncode != 0 or not out_path.exists():
                    tail = (done.stderr or done.stdout).strip().splitlines()[-15:]
                    message = f"phase {spec['name']!r} failed:\n" + "\n".join(tail)
                    raise BenchError(message)
                result = json.loads(out_path.read_text(encoding="utf-8"))
        if "error" in result:
            raise BenchError(result["error"])
        return result


@contextmanager
def databases(backend: str, workdir: Path, tag: str) -> Iterator[dict[str, str]]:
    """Fresh, empty ERP, portal and state databases; dropped (or deleted) afterwards."""
    roles = ("erp", "portal", "state")
    if backend == "sqlite":
        yield {role: f"sqlite:///{workdir}/{role}.db" for role in roles}
        return
    admin = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    names = {role: f"syncd_bench_{tag}_{role}" for role in roles}
    base = sa.make_url(PG_ADMIN_URL)

    def drop() -> None:
        with admin.connect() as conn:
            for name in names.values():
                conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")

    try:
        try:
            drop()
        except sa.exc.OperationalError as error:
            message = (
                f"PostgreSQL at {base.render_as_string()} is not reachable ({error.orig}): "
                "start it, set SYNCD_BENCH_PG, or run with --backend sqlite"
            )
            raise BenchError(message) from None
        with admin.connect() as conn:
            for name in names.values():
                conn.exec_driver_sql(f"CREATE DATABASE {name}")
        yield {
            role: base.set(database=name).render_as_string(hide_password=False)
            for role, name in names.items()
        }
    finally:
        try:
            drop()
        finally:
            admin.dispose()


def _config(workdir: Path, urls: dict[str, str], **mail: Any) -> str:
    write_config(
        workdir,
        source={"url": urls["erp"]},
        portal={"url": urls["portal"]},
        state={"url": urls["state"]},
        mail=mail,
    )
    return str(workdir / "config.yaml")


def _facts(facts: ErpFacts) -> dict[str, int]:
    return {
        "contractors": facts.contractors,
        "in_scope": facts.in_scope,
        "creates": facts.creates,
        "conflicts": facts.conflicts,
    }


def cycle_scenario(backend: str, size: int, run: Runner) -> dict[str, Any]:
    """The raw read, the first sync, a no-op cycle and the 1% change cycle at ``size``."""
    with (
        tempfile.TemporaryDirectory(prefix=f"syncd-bench-{size}-") as tmp,
        databases(backend, Path(tmp), str(size)) as urls,
    ):
        erp = sa.create_engine(urls["erp"])
        try:
            started = time.perf_counter()
            facts = build_erp(erp, size)
            build_s = time.perf_counter() - started
            print(f"  ERP with {size:,} contractors built in {build_s:.1f} s", flush=True)
            config = _config(Path(tmp), urls)
            base = {"contractors": size, "config": config, "erp_url": urls["erp"]}
            phases: dict[str, dict[str, Any]] = {}

            def phase(name: str, kind: str, expected: dict[str, int] | None = None) -> None:
                result = run({**base, "name": name, "kind": kind})
                result["expected"] = expected
                phases[name] = result
                shown = " ".join(f"{k}={v}" for k, v in result["counts"].items())
                print(f"  {name}: {result['wall_s']:.2f} s  {shown}", flush=True)

            run({**base, "name": "raw read (warm-up)", "kind": "raw"})
            phase("raw read", "raw")
            phase("first sync", "cycle", {"create": facts.creates, "conflict": facts.conflicts})
            phase("no-op cycle", "cycle", {"unchanged": facts.creates, "conflict": facts.conflicts})
            expected = edit_one_percent(erp, facts)
            phase("1% change cycle", "cycle", expected)
        finally:
            erp.dispose()
    return {"facts": _facts(facts), "build_s": round(build_s, 2), "phases": phases}


@dataclass
class CountingServer(Recorder):
    """The test SMTP server's handler, counting what it accepts instead of keeping it (a
    few thousand kept messages would only weigh on this process)."""

    count: int = 0

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.count += 1
        return "250 2.0.0 Ok: queued"


def mail_scenario(backend: str, passwords: int, notices: int, run: Runner) -> dict[str, Any]:
    """Activation mails (a password each: generated, hashed, set on the portal) and notice
    mails (``login_changed``: no password) to a real SMTP server on loopback.

    A small ERP of its own (mail costs per mail, not per contractor): a first sync queues
    an activation per account; ``passwords`` of them are sent; then ``notices`` contractors
    get a new e-mail, the cycle queues a ``login_changed`` notice for each, the activations
    still queued are put off by 30 days (an UPDATE on the outbox, outside the clock) and the
    notices are sent."""
    size = math.ceil(max(passwords, notices) / 0.85) + 100
    logging.getLogger("mail.log").setLevel(logging.ERROR)  # aiosmtpd's own deprecation noise
    with (
        tempfile.TemporaryDirectory(prefix="syncd-bench-mail-") as tmp,
        databases(backend, Path(tmp), "mail") as urls,
        running(CountingServer()) as smtp,
    ):
        erp = sa.create_engine(urls["erp"])
        try:
            facts = build_erp(erp, size)
            config = _config(
                Path(tmp), urls, transport="smtp", send_delay="0s",
                smtp={"host": "127.0.0.1", "port": smtp.port, "security": "none",
                      "username": USER, "password": SECRET},
            )  # fmt: skip
            base = {"contractors": size, "config": config, "erp_url": urls["erp"]}
            first = run({**base, "name": "mail: first sync", "kind": "cycle"})
            sent = run({**base, "name": "mail, passwords", "kind": "mail", "limit": passwords})
            change_emails(erp, facts, notices)
            changed = run({**base, "name": "mail: logins changed", "kind": "cycle"})
            _put_off_activations(urls["state"])
            notice = run({**base, "name": "mail, notices", "kind": "mail", "limit": notices})
        finally:
            erp.dispose()
        accepted = smtp.handler.count  # type: ignore[attr-defined]
    sent["expected"] = {"sent": passwords}
    notice["expected"] = {"sent": notices}
    return {
        "facts": _facts(facts),
        "setup": {"first sync": first["counts"], "logins changed": changed["counts"]},
        "phases": {"mail, passwords": sent, "mail, notices": notice},
        "smtp_accepted": accepted,
    }


def _put_off_activations(state_url: str) -> None:
    engine = sa.create_engine(state_url)
    try:
        outbox = sa.Table("syncd_outbox", sa.MetaData(), autoload_with=engine)
        later = datetime.now(UTC) + timedelta(days=30)
        with engine.begin() as conn:
            conn.execute(
                outbox.update()
                .where(outbox.c.status == "pending", outbox.c.template == "activation")
                .values(not_before=later)
            )
    finally:
        engine.dispose()


def daemon_scenario(
    backend: str, size: int, cycles: int, seconds: float, run: Runner, *, start_runs: int = 5
) -> dict[str, Any]:
    """The daemon's light cycles at ``size`` after a first sync; the CLI start times too
    (``syncd status`` needs a state store with runs in it)."""
    from tests.bench._startup import start_times

    with (
        tempfile.TemporaryDirectory(prefix="syncd-bench-daemon-") as tmp,
        databases(backend, Path(tmp), "daemon") as urls,
    ):
        erp = sa.create_engine(urls["erp"])
        try:
            build_erp(erp, size)
        finally:
            erp.dispose()
        config = _config(Path(tmp), urls, send_delay="1d")  # the activations stay queued
        base = {"contractors": size, "config": config, "erp_url": urls["erp"]}
        run({**base, "name": "daemon: first sync", "kind": "cycle"})
        print(f"  daemon: up to {cycles} light cycles or {seconds:.0f} s", flush=True)
        daemon = run({**base, "name": "daemon", "kind": "daemon", "cycles": cycles,
                      "seconds": seconds})  # fmt: skip
        daemon["startup"] = start_times(config, start_runs)
    return daemon
