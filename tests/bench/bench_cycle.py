"""`make bench`: syncd's cost at wholesaler scale beside the cost of reading the ERP, in one run.

    python -m tests.bench.bench_cycle [--contractors N] [--backend sqlite,postgres] [--quick]

For each backend, at N and 2N contractors (default N = 100,000), each phase in a fresh
process: the raw read of the ERP rows a cycle reads (bare driver, the floor), the first
sync (every account created, outbox and audit written, no mail sent), a no-op cycle and
a 1% change cycle. Then, per backend, activation mails (bcrypt) and notice mails to a real
SMTP server on loopback; the daemon's light cycles at 10,000 contractors (RSS growth); and
how fast `syncd --help` and `syncd status` start. Prints the tables and a goals table,
writes every figure to a JSON file, and exits 1 when an invariant is broken (ERP
statements that grow with N, a no-op cycle that writes, plans other than the fixture's);
a missed speed goal is a MISS in the table, and an exit 1 only with ``--strict``.
See docs/benchmark.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import bcrypt
import structlog

from tests.bench import _report
from tests.bench._scenario import (
    ROOT,
    BenchError,
    Runner,
    cycle_scenario,
    daemon_scenario,
    mail_scenario,
)

BACKENDS = ("sqlite", "postgres")


def hash_seconds() -> float:
    """One bcrypt hash at the portal's cost (the fastest of three: the machine's ability)."""
    from syncd import passwords

    rounds = getattr(passwords, "BCRYPT_ROUNDS", 12)
    times = []
    for _ in range(3):
        started = time.perf_counter()
        bcrypt.hashpw(b"Bench-Password-1", bcrypt.gensalt(rounds))
        times.append(time.perf_counter() - started)
    return min(times)


def _backends(text: str) -> list[str]:
    names = [name.strip() for name in text.split(",") if name.strip()]
    wrong = [name for name in names if name not in BACKENDS]
    if wrong or not names:
        message = f"--backend: expected a comma-separated list of {', '.join(BACKENDS)}"
        raise argparse.ArgumentTypeError(message)
    return names


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--contractors", type=int, metavar="N", help="N (default 100,000)")
    parser.add_argument("--backend", type=_backends, help="sqlite,postgres (default both)")
    parser.add_argument("--quick", action="store_true",
                        help="smoke run: N = 10,000, SQLite only, small samples")  # fmt: skip
    parser.add_argument("--no-double", action="store_true", help="measure at N only, not 2N")
    parser.add_argument("--password-mails", type=int, metavar="K", help="default 200 (quick 20)")
    parser.add_argument("--notice-mails", type=int, metavar="K", help="default 2,000 (quick 200)")
    parser.add_argument("--daemon-contractors", type=int, default=10_000, metavar="N")
    parser.add_argument("--daemon-cycles", type=int, metavar="K", help="default 500 (quick 20)")
    parser.add_argument("--daemon-seconds", type=float, default=240.0, metavar="S",
                        help="stop the daemon's cycles after S seconds (default 240)")  # fmt: skip
    parser.add_argument("--start-runs", type=int, default=5, metavar="K",
                        help="runs of each CLI command timed, median kept (default 5)")  # fmt: skip
    parser.add_argument("--json", type=Path, default=ROOT / "build" / "bench.json", metavar="PATH")
    parser.add_argument("--strict", action="store_true", help="exit 1 on a missed goal too")
    parser.add_argument("--in-process", action="store_true",
                        help="phases in this process (faster; RSS less clean)")  # fmt: skip
    args = parser.parse_args(argv)
    quick = args.quick
    args.contractors = args.contractors or (10_000 if quick else 100_000)
    args.backend = args.backend or (["sqlite"] if quick else list(BACKENDS))
    args.password_mails = args.password_mails or (20 if quick else 200)
    args.notice_mails = args.notice_mails or (200 if quick else 2_000)
    args.daemon_cycles = args.daemon_cycles or (20 if quick else 500)
    if args.contractors < 200:
        parser.error("--contractors: at least 200 (the 1% change needs contractors to change)")
    return args


def measure_all(args: argparse.Namespace) -> dict[str, Any]:
    """Run every scenario; the JSON document of all figures (verdicts not yet added)."""
    run = Runner(in_process=args.in_process)
    sizes = [args.contractors] if args.no_double else [args.contractors, 2 * args.contractors]
    doc: dict[str, Any] = {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": {
            "cpus": os.cpu_count() or 1,
            "arch": platform.machine(),
            "python": platform.python_version(),
            "node": platform.node(),
        },
        "args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        "hash_s": round(hash_seconds(), 4),
        "cycles": {},
        "mail": {},
    }
    for backend in args.backend:
        doc["cycles"][backend] = {}
        for size in sizes:
            print(f"\n{backend}, N = {size:,}", flush=True)
            doc["cycles"][backend][str(size)] = cycle_scenario(backend, size, run)
    for backend in args.backend:
        print(f"\n{backend}, mail: {args.password_mails} activations, "
              f"{args.notice_mails} notices", flush=True)  # fmt: skip
        doc["mail"][backend] = mail_scenario(backend, args.password_mails, args.notice_mails, run)
    print(f"\n{args.backend[0]}, the daemon at {args.daemon_contractors:,}", flush=True)
    daemon = daemon_scenario(
        args.backend[0],
        args.daemon_contractors,
        args.daemon_cycles,
        args.daemon_seconds,
        run,
        start_runs=args.start_runs,
    )
    doc["startup"] = daemon.pop("startup")
    doc["daemon"] = daemon
    return doc


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    previous = structlog.get_config()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(40))  # errors only
    try:
        return _run(args)
    finally:  # the harness's test runs it in-process: leave logging as it was
        structlog.configure(**previous)


def _run(args: argparse.Namespace) -> int:
    started = time.perf_counter()
    print(f"syncd benchmark: N = {args.contractors:,}, {', '.join(args.backend)}, "
          f"{os.cpu_count()} CPUs, Python {platform.python_version()}", flush=True)  # fmt: skip
    try:
        doc = measure_all(args)
    except BenchError as error:
        print(f"\nbenchmark stopped: {error}", file=sys.stderr)
        return 2
    doc["total_s"] = round(time.perf_counter() - started, 1)
    doc["goals"] = _report.goals(doc)
    doc["invariants_broken"] = _report.check_invariants(doc)
    _report.print_cycles(doc)
    _report.print_mail(doc)
    _report.print_goals(doc["goals"])
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(doc, indent=1), encoding="utf-8")
    print(f"\nFigures written to {args.json}; {doc['total_s']:.0f} s in all.")
    missed = [r for r in doc["goals"] if r["verdict"] == "MISS"]
    if doc["invariants_broken"]:
        print("\nINVARIANTS BROKEN:")
        for problem in doc["invariants_broken"]:
            print(f"  - {problem}")
        return 1
    print(f"\nAll invariants hold; {len(missed)} goal(s) missed.")
    return 1 if args.strict and missed else 0


if __name__ == "__main__":
    sys.exit(main())
