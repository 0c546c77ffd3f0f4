"""Measuring one phase of the benchmark: wall time, peak memory, and SQL statements per engine.

Statements are counted with SQLAlchemy's ``before_cursor_execute`` event, which fires once
per statement sent (an executemany counts once, and so does each page of an "insertmanyvalues"
INSERT). Peak memory is the process's resident high-water mark (``VmHWM``), reset before each
phase through ``/proc/self/clear_refs`` so that every phase gets its own peak; where that is
not possible ``ru_maxrss`` (the peak of the whole process) is reported instead.
"""

from __future__ import annotations

import gc
import re
import resource
import time
import tracemalloc
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

_WRITE = re.compile(r"^\s*(?:INSERT\s+INTO|UPDATE|DELETE\s+FROM)\s+[\"`\[]?(\w+)", re.IGNORECASE)
WRITES = ("INSERT", "UPDATE", "DELETE")


@dataclass(slots=True)
class Tally:
    """Statements seen on one engine: by verb, and the written tables by statement count."""

    verbs: Counter[str] = field(default_factory=Counter)
    tables: Counter[str] = field(default_factory=Counter)
    rows: int = 0  # parameter sets sent with the writes (executemany rows)

    @property
    def total(self) -> int:
        return sum(self.verbs.values())

    @property
    def writes(self) -> int:
        return sum(self.verbs[verb] for verb in WRITES)

    def minus(self, before: Tally) -> Tally:
        rows = self.rows - before.rows
        return Tally(self.verbs - before.verbs, self.tables - before.tables, rows)

    def copy(self) -> Tally:
        return Tally(Counter(self.verbs), Counter(self.tables), self.rows)


class StatementCounter:
    """Counts the statements sent on a set of named engines."""

    def __init__(self, engines: dict[str, sa.Engine]) -> None:
        self.engines = engines
        self.tallies = {name: Tally() for name in engines}
        for name, engine in engines.items():
            sa.event.listen(engine, "before_cursor_execute", self._listener(name))

    def _listener(self, name: str) -> Any:
        tally = self.tallies[name]

        def count(*args: Any) -> None:
            # SQLAlchemy's signature: conn, cursor, statement, parameters, context, executemany
            _conn, _cursor, statement, params, _context, many = args
            verb = statement.lstrip().split(None, 1)[0].upper() if statement.strip() else "?"
            tally.verbs[verb] += 1
            match = _WRITE.match(statement)
            if match:
                tally.tables[match.group(1).lower()] += 1
                tally.rows += len(params) if many and params is not None else 1

        return count

    def snapshot(self) -> dict[str, Tally]:
        return {name: tally.copy() for name, tally in self.tallies.items()}


def status_kib(field_name: str) -> int | None:
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith(field_name + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def _reset_peak() -> bool:
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as refs:
            refs.write("5")
    except OSError:
        return False
    return True


@dataclass(slots=True)
class Phase:
    """The figures of one measured phase."""

    name: str
    contractors: int
    seconds: float = 0.0
    cpu_seconds: float = 0.0  # this process only: excludes a database server's work
    rss_before_mib: float = 0.0
    rss_peak_mib: float = 0.0
    heap_peak_mib: float | None = None
    statements: dict[str, Tally] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)  # the plan's counts

    @property
    def rss_growth_mib(self) -> float:
        return max(0.0, self.rss_peak_mib - self.rss_before_mib)

    @property
    def rows_per_s(self) -> float:
        return self.contractors / self.seconds if self.seconds else 0.0


@contextmanager
def measure(
    name: str, contractors: int, counter: StatementCounter, *, heap: bool = False
) -> Iterator[Phase]:
    """Measure the block as phase ``name`` over ``contractors`` contractors."""
    phase = Phase(name, contractors)
    gc.collect()
    before = counter.snapshot()
    phase.rss_before_mib = (status_kib("VmRSS") or 0) / 1024
    per_phase_peak = _reset_peak()
    if heap:
        tracemalloc.start()
    started, cpu_started = time.perf_counter(), time.process_time()
    try:
        yield phase
    finally:
        phase.seconds = time.perf_counter() - started
        phase.cpu_seconds = time.process_time() - cpu_started
        if heap:
            phase.heap_peak_mib = tracemalloc.get_traced_memory()[1] / 2**20
            tracemalloc.stop()
        peak = status_kib("VmHWM") if per_phase_peak else None
        if peak is None:  # ru_maxrss is in KiB on Linux
            peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        phase.rss_peak_mib = peak / 1024
        after = counter.snapshot()
        phase.statements = {n: after[n].minus(before[n]) for n in after}
