"""Mails per second, with and without passwords, and the time of one password hash.

    python -m tests.bench.mail_rate [--mails N] [--cost 12] [--hashes]

Builds a GT-shaped ERP of N contractors (default 1,000) on SQLite, syncs it with
``mail.send_delay`` so that nothing is sent yet, then times one ``send_due_mail`` of all
the activation mails to aiosmtpd on loopback, running in its own process (as a real mail
server would: it does not share syncd's GIL). Once with ``portal.passwords: set`` at bcrypt
``--cost``, once with ``passwords: none`` (the same mails without a password: no portal
call, no hash). ``--hashes`` first times single hashes at bcrypt 10, 12, 14 and argon2id,
and 8 bcrypt-12 hashes in a thread pool and in a process pool. docs/mail.md keeps figures.
"""

from __future__ import annotations

import argparse
import logging
import multiprocessing
import os
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path
from typing import Any

import structlog

from connectors.subiekt_gt.fake import GtContractor
from syncd.config import load_config
from syncd.cycle import CycleRequest, run_cycle
from syncd.mail.mailer import MailerOptions, send_due_mail
from syncd.passwords import cores, hash_password
from syncd.wiring import open_services
from tests.gt_env import GtEnv
from tests.mail_env import Clock, smtp_section
from tests.smtp_server import Server, free_port

SAMPLE = "Abcdefhjkmnp34"


def _serve(port: int, ready: Any, stop: Any) -> None:
    """The SMTP server's process: aiosmtpd that keeps nothing, on ``port``, until ``stop``."""
    from aiosmtpd.controller import Controller

    class Discard:
        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
            return "250 2.0.0 Ok: queued"

    controller = Controller(Discard(), hostname="127.0.0.1", port=port)
    controller.start()
    ready.set()
    stop.wait()
    controller.stop()


def _hash(cost: int) -> str:
    return hash_password(SAMPLE, "bcrypt", cost)


def hash_times() -> dict[str, float]:
    """Seconds per hash, one at a time, and hashes per second on every core."""
    figures: dict[str, float] = {}
    for name, run, repeat in (
        ("bcrypt_10_s", lambda: _hash(10), 5),
        ("bcrypt_12_s", lambda: _hash(12), 3),
        ("bcrypt_14_s", lambda: _hash(14), 1),
        ("argon2id_s", lambda: hash_password(SAMPLE, "argon2id"), 3),
    ):
        started = time.perf_counter()
        for _ in range(repeat):
            run()
        figures[name] = round((time.perf_counter() - started) / repeat, 3)
    pools: dict[str, Callable[[], Executor]] = {
        "threads": lambda: ThreadPoolExecutor(cores()),
        "processes": lambda: ProcessPoolExecutor(cores()),
    }
    for name, pool in pools.items():
        with pool() as executor:
            list(executor.map(_hash, [4] * cores()))  # start the workers
            started = time.perf_counter()
            list(executor.map(_hash, [12] * 8))
            figures[f"bcrypt_12_{name}_per_s"] = round(8 / (time.perf_counter() - started), 2)
    return figures


def mail_rate(mails: int, *, passwords: str, cost: int) -> dict[str, Any]:
    """Send ``mails`` activation mails once; their rate and the run's CPU time per mail."""
    port = free_port()
    ready, stop = multiprocessing.Event(), multiprocessing.Event()
    server = multiprocessing.Process(target=_serve, args=(port, ready, stop), daemon=True)
    server.start()
    ready.wait(30)
    try:
        with tempfile.TemporaryDirectory() as directory:
            smtp = smtp_section(Server(None, port))  # type: ignore[arg-type]
            smtp["smtp"] |= {"username": None, "password": None}
            portal = {"passwords": passwords, "password_cost": cost}
            env = GtEnv(Path(directory), None, mail={**smtp, "send_delay": "5m"}, portal=portal)  # type: ignore[arg-type]
            with env.edit() as w:
                w.add_many(
                    GtContractor(
                        1000 + i,
                        f"B{i:05d}",
                        f"Firma {i}",
                        email=f"k{i}@bench.pl",
                        features=["b2b"],
                    )
                    for i in range(mails)
                )
            clock = Clock()
            with open_services(load_config(env.config_path), clock) as services:
                assert run_cycle(services, CycleRequest()).exit_code == 0
                clock.advance(timedelta(hours=1))
                options = MailerOptions(budget=timedelta(hours=1))
                cpu, wall = time.process_time(), time.perf_counter()
                report = send_due_mail(services, options=options)
                wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
            env.close()
    finally:
        stop.set()
        server.join(30)
    sent = report.count("sent")
    return {
        "passwords": passwords,
        "mails": sent,
        "seconds": round(wall, 2),
        "mails_per_s": round(sent / wall, 1),
        "cpu_ms_per_mail": round(1000 * cpu / max(sent, 1), 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mails", type=int, default=1000)
    parser.add_argument("--cost", type=int, default=12)
    parser.add_argument("--hashes", action="store_true")
    args = parser.parse_args()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    print(f"cores {cores()}, load average {os.getloadavg()[0]:.2f}")
    if args.hashes:
        print(hash_times())
    print(mail_rate(args.mails, passwords="none", cost=args.cost))
    print(mail_rate(min(args.mails, 200), passwords="set", cost=args.cost))


if __name__ == "__main__":
    main()
