"""`make bench`: a whole cycle at wholesaler scale, measured, with its ratios and invariants.

    python -m tests.bench.bench_cycle [--contractors N] [--backend sqlite|postgres]

Builds a Subiekt GT-shaped ERP with N contractors (default 200,000) and, on fresh portal and
state databases, measures: a dry-run plan of the first sync, the first sync, a no-op sync,
a no-op plan, a sync after 1% of the contractors changed terms and one after 1% lost the
feature. The same scenario runs at N/10 first, so that the ratios show what grows with N.
Above ``EDITS_UP_TO`` contractors the last three phases (each a full read and map at N) run
at N/10 and N/100 only, unless ``--all-phases``: that keeps `make bench` to a few minutes.
Prints a table and the ratios; exits 1 when a hard invariant is broken: the ERP is read with
a number of statements that grows with N, a no-op cycle statement count grows with N, a
write cycle sends about one statement per contractor, or a no-op cycle writes to the portal
(or to the state store beyond its run bookkeeping). See docs/benchmark.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import sqlalchemy as sa
import structlog

from syncd.cycle import CycleRequest, run_cycle
from syncd.errors import ExitCode
from syncd.wiring import Services, open_services
from tests.bench._erp import ErpFacts, build_erp, drop_feature, edit_terms
from tests.bench._measure import Phase, StatementCounter, Tally, measure
from tests.support import write_config

PG_ADMIN_URL = os.environ.get(
    "SYNCD_BENCH_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
ENGINES = ("erp", "portal", "store")
BOOKKEEPING = {"syncd_run", "syncd_lease"}  # what a no-op cycle may write in the store
NOOP = ("no-op sync", "no-op plan")
WRITE_PHASES = ("first sync", "1% terms changed", "1% lost feature")
# Writes are batched: from N/10 to N, a write phase may add at most one statement per 20
# more contractors written (the connectors batch 500 or 1,000 rows per statement).
MAX_STATEMENTS_PER_ROW = 0.05
SUPERLINEAR = 1.5  # warn when 10x the contractors take more than 15x the time
EDITS_UP_TO = 50_000  # above this N, the edit phases run at N/10 and N/100 by default


@dataclass(slots=True)
class Run:
    """One scenario at one size."""

    contractors: int
    facts: ErpFacts = field(default_factory=ErpFacts)
    build_s: float = 0.0
    phases: dict[str, Phase] = field(default_factory=dict)


# -- databases -------------------------------------------------------------------------------


@contextmanager
def databases(backend: str, workdir: Path, size: int) -> Iterator[dict[str, str]]:
    """Fresh, empty ERP, portal and state databases; dropped (or deleted) afterwards."""
    roles = ("erp", "portal", "state")
    if backend == "sqlite":
        yield {role: f"sqlite:///{workdir}/{role}.db" for role in roles}
        return
    admin = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    names = {role: f"syncd_bench_{size}_{role}" for role in roles}
    base = sa.make_url(PG_ADMIN_URL)
    try:
        with admin.connect() as conn:
            for name in names.values():
                conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
                conn.exec_driver_sql(f"CREATE DATABASE {name}")
        yield {
            role: base.set(database=name).render_as_string(hide_password=False)
            for role, name in names.items()
        }
    finally:
        with admin.connect() as conn:
            for name in names.values():
                conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        admin.dispose()


# -- the scenario ----------------------------------------------------------------------------


def _cycle(services: Services, phase: Phase, *, dry_run: bool) -> None:
    result = run_cycle(services, CycleRequest(dry_run=dry_run, trigger="bench"))
    if result.exit_code != ExitCode.OK or result.plan is None:
        message = f"{phase.name}: the cycle ended with {result.exit_code!r}: {result.error}"
        raise SystemExit(message)
    phase.counts = {k: v for k, v in result.plan.counts().items() if v}
    if result.report is not None and result.report.failed:
        phase.counts["failed"] = result.report.failed


def run_scenario(size: int, backend: str, workdir: Path, *, heap: bool, edits: bool) -> Run:
    """Build the ERP at ``size`` and measure the phases on fresh portal and state stores:
    always a dry-run plan, the first sync and a no-op sync; with ``edits`` also a no-op plan
    and the two syncs after 1% of the contractors changed."""
    run = Run(size)
    with databases(backend, workdir, size) as urls:
        erp = sa.create_engine(urls["erp"])
        try:
            started = time.perf_counter()
            run.facts = build_erp(erp, size)
            run.build_s = time.perf_counter() - started
            print(f"  ERP with {size:,} contractors built in {run.build_s:.1f} s", flush=True)
            config = write_config(
                workdir,
                source={"url": urls["erp"]},
                portal={"url": urls["portal"]},
                state={"url": urls["state"]},
            )
            with open_services(config) as services:
                counter = StatementCounter(
                    {
                        "erp": services.source._engine,  # type: ignore[attr-defined]
                        "portal": services.portal._engine,  # type: ignore[attr-defined]
                        "store": services.store.engine,
                    }
                )

                def phase(name: str, *, dry_run: bool = False) -> None:
                    with measure(name, size, counter, heap=heap) as measured:
                        _cycle(services, measured, dry_run=dry_run)
                    run.phases[name] = measured
                    print(f"  {name}: {measured.seconds:.2f} s {measured.counts}", flush=True)

                phase("plan, all new", dry_run=True)
                phase("first sync")
                phase("no-op sync")
                if not edits:
                    return run
                phase("no-op plan", dry_run=True)
                edit_terms(erp, run.facts, 0.01)
                phase("1% terms changed")
                drop_feature(erp, run.facts, 0.01)
                phase("1% lost feature")
        finally:
            erp.dispose()
    return run


# -- the report ------------------------------------------------------------------------------


def _fmt(tally: Tally) -> str:
    return f"{tally.total}/{tally.writes}"


def print_table(run: Run) -> None:
    print(f"\nN = {run.contractors:,} contractors ({run.facts.in_scope:,} in scope)")
    header = (
        f"{'phase':<18}{'wall s':>8}{'cpu s':>8}{'rows/s':>10}{'RSS peak':>10}{'RSS +':>8}"
        f"{'heap pk':>9}{'ERP':>8}{'portal':>10}{'store':>10}  plan"
    )
    print(header)
    print("-" * len(header))
    for p in run.phases.values():
        heap = f"{p.heap_peak_mib:.0f}" if p.heap_peak_mib is not None else "-"
        stmts = "".join(
            f"{_fmt(p.statements[n]):>{w}}" for n, w in zip(ENGINES, (8, 10, 10), strict=True)
        )
        counts = " ".join(f"{k}={v}" for k, v in p.counts.items())
        print(
            f"{p.name:<18}{p.seconds:>8.2f}{p.cpu_seconds:>8.2f}{p.rows_per_s:>10,.0f}"
            f"{p.rss_peak_mib:>10.0f}{p.rss_growth_mib:>8.0f}{heap:>9}{stmts}  {counts}"
        )
    print("(statements: all/writes per engine; memory in MiB; RSS + = growth in the phase)")


def _ratio(big: float, small: float) -> str:
    return f"{big / small:.2f}" if small else ("1.00" if big == small else "inf")


def _lease(t: Tally) -> int:
    return t.tables["syncd_lease"]


def _own(t: Tally) -> int:
    """Statements other than the cycle lease's."""
    return t.total - _lease(t)


def _written(p: Phase) -> int:
    return sum(v for k, v in p.counts.items() if k not in ("unchanged", "conflict"))


def _sent(p: Phase) -> int:
    store = p.statements["store"]
    return p.statements["portal"].total + _own(store)


def _marginal(big: Phase, small: Phase) -> float:
    """Extra portal and store statements per extra contractor written, from N/10 to N."""
    more = _written(big) - _written(small)
    return (_sent(big) - _sent(small)) / more if more > 0 else 0.0


def _slower_than_linear(p: Phase, q: Phase) -> str | None:
    """Why phase ``p`` (at N) took more than linear time against ``q`` (at N/10), or None.

    Wall time alone would raise false alarms on a busy machine, so its growth must come
    from this process's CPU time or from waiting (for a database server) growing too."""
    factor = p.contractors / q.contractors
    limit = SUPERLINEAR * factor
    wait_p, wait_q = p.seconds - p.cpu_seconds, q.seconds - q.cpu_seconds
    waits_longer = wait_p > 1 and wait_p > limit * max(wait_q, 0.01)
    if p.seconds <= limit * q.seconds or not (
        p.cpu_seconds > limit * q.cpu_seconds or waits_longer
    ):
        return None
    return (
        f"{p.seconds / q.seconds:.1f}x the time for {factor:g}x the contractors "
        f"({q.seconds:.2f} s -> {p.seconds:.2f} s, of which waiting "
        f"{max(wait_q, 0):.2f} s -> {max(wait_p, 0):.2f} s): slower than linear"
    )


def _pair(runs: list[Run], name: str) -> tuple[Phase, Phase]:
    """The phase at the two largest sizes that measured it: (larger, smaller)."""
    having = [run.phases[name] for run in runs if name in run.phases]
    return having[-1], having[-2]


def check(runs: list[Run]) -> tuple[list[str], list[str]]:
    """Print the ratios; return the broken invariants and the warnings."""
    broken: list[str] = []
    warnings: list[str] = []
    biggest = runs[-1]
    print("\nRatios, each phase at the two largest N that ran it (N and N/10)")
    print(f"{'phase':<18}{'N':>9}{'ERP':>7}{'portal':>8}{'store':>7}{'lease':>9}{'time':>7}{'cpu':>7}"
          f"{'s/1k':>8}{'MiB/1k':>8}{'+st/1k':>8}")  # fmt: skip
    names = list(dict.fromkeys(name for run in runs for name in run.phases))
    for name in names:
        p, q = _pair(runs, name)
        s, b = q.statements, p.statements
        lease = f"{_lease(b['store'])}/{_lease(s['store'])}"
        print(
            f"{name:<18}{p.contractors:>9,}{_ratio(b['erp'].total, s['erp'].total):>7}"
            f"{_ratio(b['portal'].total, s['portal'].total):>8}"
            f"{_ratio(_own(b['store']), _own(s['store'])):>7}"
            f"{lease:>9}{_ratio(p.seconds, q.seconds):>7}"
            f"{_ratio(p.cpu_seconds, q.cpu_seconds):>7}"
            f"{p.seconds / (p.contractors / 1000):>8.3f}"
            f"{p.rss_growth_mib / (p.contractors / 1000):>8.3f}"
            f"{_marginal(p, q) * 1000:>8.1f}"
        )
        slow = _slower_than_linear(p, q)
        if slow:
            warnings.append(f"{name}: {slow}")
        if _lease(b["store"]) > _lease(s["store"]):
            warnings.append(
                f"{name}: the cycle lease took {_lease(s['store'])} -> {_lease(b['store'])} "
                "statements (renewed every quarter of its ttl: grows with the cycle's duration)"
            )
        if b["erp"].total != s["erp"].total:
            grew = f"{s['erp'].total} -> {b['erp'].total}"
            broken.append(f"{name}: ERP statements grow with N ({grew})")
        if name in NOOP:
            for engine in ("portal", "store"):
                x, y = _own(b[engine]), _own(s[engine])
                if x != y:
                    broken.append(f"{name}: {engine} statements grow with N ({y} -> {x})")
            if b["portal"].writes or s["portal"].writes:
                broken.append(f"{name}: the portal received {dict(b['portal'].tables)} writes")
            extra = (set(b["store"].tables) | set(s["store"].tables)) - BOOKKEEPING
            if extra:
                broken.append(f"{name}: the state store was written beyond bookkeeping: {extra}")
        if name in WRITE_PHASES:
            marginal = _marginal(p, q)
            if marginal > MAX_STATEMENTS_PER_ROW:
                broken.append(
                    f"{name}: {marginal:.3f} more statements per more contractor written "
                    f"between N/10 and N (limit {MAX_STATEMENTS_PER_ROW})"
                )
    print("(ERP/portal/store: statements at N / at N/10, lease renewals excluded; lease: lease")
    print(" statements at N/at N/10; time, cpu: wall and CPU time ratios, 10 = linear;")
    print(" s/1k and MiB/1k: wall seconds and RSS growth per 1,000 contractors at N;")
    print(" +st/1k: extra portal+store statements per 1,000 extra contractors written)")
    first, noop = biggest.phases["first sync"], biggest.phases["no-op sync"]
    growth = _ratio(first.rss_growth_mib, _pair(runs, "first sync")[1].rss_growth_mib)
    print(f"\nno-op sync / first sync time at N:  {noop.seconds / first.seconds:.3f}")
    print(f"first sync RSS growth N / N/10:     {growth}")
    print(f"no-op sync contractors per second:  {noop.rows_per_s:,.0f}")
    store = noop.statements["store"]
    print(f"no-op sync writes: portal {noop.statements['portal'].writes}, store "
          f"{dict(store.tables)} (run bookkeeping and the cycle lease only)")  # fmt: skip
    return broken, warnings


def _check_counts(run: Run) -> list[str]:
    """Sanity: the plans are the ones the fixture expects (else the figures mean nothing)."""
    f, p = run.facts, run.phases
    expected = {
        "first sync": {"create": f.creates, "conflict": f.conflicts},
        "no-op sync": {"unchanged": f.creates, "conflict": f.conflicts},
        "no-op plan": {"unchanged": f.creates, "conflict": f.conflicts},
        "1% terms changed": {"update": len(f.clean_ids[::100])},
        "1% lost feature": {"remove": len(f.clean_ids[50::100])},
    }
    wrong = []
    for name, counts in expected.items():
        if name not in p:
            continue
        got = {k: p[name].counts.get(k, 0) for k in counts}
        if got != counts:
            wrong.append(f"N={run.contractors}: {name} planned {got}, the fixture expects {counts}")
    return wrong


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--contractors", type=int, default=200_000, metavar="N")
    parser.add_argument("--backend", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument(
        "--tracemalloc", action="store_true", help="also trace the Python heap (about 2x slower)"
    )
    parser.add_argument(
        "--all-phases",
        action="store_true",
        help=f"run the no-op plan and the 1%% edits at N too (default only up to "
        f"{EDITS_UP_TO:,}; above, they run at N/10 and N/100 to keep `make bench` short)",
    )
    args = parser.parse_args(argv)
    edits_at_n = args.all_phases or args.contractors <= EDITS_UP_TO
    sizes = [args.contractors // 10, args.contractors]
    if not edits_at_n:
        sizes.insert(0, args.contractors // 100)
    if sizes[0] < 500:
        parser.error("--contractors is too small: the smallest scenario needs 500 contractors")
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(40))  # errors only
    today = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    print(f"syncd benchmark, {today}, {args.backend}, Python {platform.python_version()}, "
          f"{os.cpu_count()} CPUs, {platform.machine()}")  # fmt: skip
    runs = []
    started = time.perf_counter()
    for size in sizes:
        edits = edits_at_n or size < args.contractors
        workdir = Path(tempfile.mkdtemp(prefix=f"syncd-bench-{size}-"))
        print(f"\nScenario at N = {size:,}", flush=True)
        try:
            runs.append(
                run_scenario(size, args.backend, workdir, heap=args.tracemalloc, edits=edits)
            )
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
    for run in runs:
        print_table(run)
    broken, warnings = check(runs)
    broken += [w for run in runs for w in _check_counts(run)]
    print(f"\nTotal benchmark time: {time.perf_counter() - started:.0f} s")
    if warnings:
        print("\nWarnings (figures to look at, not failures):")
        for warning in warnings:
            print(f"  - {warning}")
    if broken:
        print("\nINVARIANTS BROKEN:")
        for problem in broken:
            print(f"  - {problem}")
        return 1
    print("\nAll invariants hold.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
