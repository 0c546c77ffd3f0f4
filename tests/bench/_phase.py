"""One measured phase, run in a fresh process: `python -m tests.bench._phase SPEC.json OUT.json`.

A fresh process per phase is what `syncd sync` is: its peak RSS is the phase's own, not
what an earlier phase left in the allocator, and the memory ratios between N and 2N
compare like with like. ``run_phase`` is also called in-process (``--in-process``, the
harness's test) where start-up isolation does not matter.

Kinds: ``raw`` (the floor, ``_raw``), ``cycle`` (one ``run_cycle``, as `syncd sync`
without its mail), ``mail`` (``send_due_mail`` of at most ``limit`` mails, as `syncd
sync` sends them) and ``daemon`` (the daemon's light-cycle job, ``Jobs.light``, again and
again, with VmRSS after each).
"""

from __future__ import annotations

import json
import resource
import sys
import threading
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa
import structlog

from tests.bench._measure import Phase, StatementCounter, Tally, measure, status_kib

ENGINES = ("erp", "portal", "store")


def tally_json(tally: Tally) -> dict[str, Any]:
    return {
        "all": tally.total,
        "writes": tally.writes,
        "verbs": dict(tally.verbs),
        "tables": dict(tally.tables),
        "rows": tally.rows,
    }


def phase_json(phase: Phase, **extra: Any) -> dict[str, Any]:
    return {
        "name": phase.name,
        "contractors": phase.contractors,
        "wall_s": round(phase.seconds, 4),
        "cpu_s": round(phase.cpu_seconds, 4),
        "rss_before_mib": round(phase.rss_before_mib, 1),
        "rss_peak_mib": round(phase.rss_peak_mib, 1),
        "statements": {name: tally_json(t) for name, t in phase.statements.items()},
        "counts": phase.counts,
        **extra,
    }


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _counter(services: Any) -> StatementCounter:
    return StatementCounter(
        {
            "erp": services.source._engine,
            "portal": services.portal._engine,
            "store": services.store.engine,
        }
    )


def _raw(spec: dict[str, Any]) -> dict[str, Any]:
    from tests.bench._raw import gt_statements, raw_read

    engine = sa.create_engine(spec["erp_url"])
    try:
        statements = gt_statements(engine, "b2b")
        counter = StatementCounter({})
        with measure(spec["name"], spec["contractors"], counter) as phase:
            rows = raw_read(engine, statements)
    finally:
        engine.dispose()
    return phase_json(phase, rows=rows)


def _cycle(spec: dict[str, Any]) -> dict[str, Any]:
    from syncd.config import load_config
    from syncd.cycle import CycleRequest, run_cycle
    from syncd.errors import ExitCode
    from syncd.wiring import open_services

    with open_services(load_config(Path(spec["config"]))) as services:
        counter = _counter(services)
        with measure(spec["name"], spec["contractors"], counter) as phase:
            result = run_cycle(services, CycleRequest(trigger="bench"))
    if result.exit_code != ExitCode.OK or result.plan is None:
        return {"error": f"{spec['name']}: the cycle ended {result.exit_code!r}: {result.error}"}
    phase.counts = {k: v for k, v in result.plan.counts().items() if v}
    if result.report is not None and result.report.failed:
        phase.counts["failed"] = result.report.failed
    return phase_json(phase)


def _mail(spec: dict[str, Any]) -> dict[str, Any]:
    from syncd.config import load_config
    from syncd.mail.mailer import MailerOptions, send_due_mail
    from syncd.wiring import open_services

    options = MailerOptions(budget=timedelta(hours=1))
    with open_services(load_config(Path(spec["config"]))) as services:
        counter = _counter(services)
        children = _children_cpu()
        with measure(spec["name"], spec["limit"], counter) as phase:
            report = send_due_mail(services, limit=spec["limit"], options=options)
    templates: dict[str, int] = {}
    for outcome in report.outcomes:
        key = f"{outcome.template} {outcome.result}"
        templates[key] = templates.get(key, 0) + 1
    phase.counts = {"sent": report.count("sent")}
    sent = report.count("sent")
    return phase_json(
        phase,
        outcomes=templates,
        stopped=report.stopped,
        children_cpu_s=round(_children_cpu() - children, 4),
        mails_per_s=round(sent / phase.seconds, 2) if phase.seconds else 0.0,
    )


def _daemon(spec: dict[str, Any]) -> dict[str, Any]:
    """The daemon's light-cycle job, ``cycles`` times or until ``seconds`` have passed."""
    from syncd.clock import utcnow
    from syncd.config import load_config
    from syncd.daemon.jobs import DaemonContext, Jobs
    from syncd.daemon.leadership import Leadership, lease_ttl
    from syncd.daemon.metrics import Metrics
    from syncd.daemon.notify import Notifier
    from syncd.wiring import open_services

    config = load_config(Path(spec["config"]))
    with open_services(config) as services:
        leadership = Leadership(services.store, lease_ttl(config.schedule.interval))
        context = DaemonContext(
            config, leadership, Notifier({}), Metrics(), threading.Event(), utcnow
        )
        jobs = Jobs(context, services)
        rss: list[float] = []
        started = time.perf_counter()
        while len(rss) < spec["cycles"] and time.perf_counter() - started < spec["seconds"]:
            jobs.light()
            rss.append((status_kib("VmRSS") or 0) / 1024)
        wall = time.perf_counter() - started
        leadership.resign()
    return {
        "name": spec["name"],
        "contractors": spec["contractors"],
        "cycles": len(rss),
        "cycles_asked": spec["cycles"],
        "wall_s": round(wall, 2),
        "rss_mib": [round(value, 2) for value in rss],
        "status_line": jobs.status_line,
    }


KINDS = {"raw": _raw, "cycle": _cycle, "mail": _mail, "daemon": _daemon}


def run_phase(spec: dict[str, Any]) -> dict[str, Any]:
    """Run the phase ``spec`` describes here, in this process; its figures as JSON data."""
    return KINDS[spec["kind"]](spec)


def main(argv: list[str]) -> int:
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(40))  # errors only
    spec = json.loads(Path(argv[0]).read_text(encoding="utf-8"))
    result = run_phase(spec)
    Path(argv[1]).write_text(json.dumps(result), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
