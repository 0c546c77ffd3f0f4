"""The benchmark's verdicts, read from its JSON document: the invariants, the goals, the tables.

Everything here works on the document `make bench` writes (``--json``), so a figures file
can be checked again later (``check_invariants(json.load(f))``) and the harness's test can
break a figure on purpose and see the check fire.
"""

from __future__ import annotations

import itertools
from typing import Any

NOOP_STORE_TABLES = {"syncd_run", "syncd_lease"}  # what a no-op cycle may write in the store
CYCLES = ("first sync", "no-op cycle", "1% change cycle")
BACKEND_FACTOR = {"sqlite": 1.0, "postgres": 1.5}  # the issue: PostgreSQL within 1.5x
FIRST_SYNC_S, GOAL_N = 20.0, 100_000  # the first sync's goal is for 100,000 contractors
RATIO_GOALS = {"no-op cycle": 2.5, "1% change cycle": 3.0}
PEAK_RSS_MIB = 150.0
LINEAR_TIME, LINEAR_MEMORY = 2.2, 1.3
DAEMON_GROWTH_MIB = 10.0
START_S = 0.3
NOTICES_PER_S = 300.0
PASSWORD_SHARE = 0.8  # of every core hashing


def _sizes(scenarios: dict[str, Any]) -> list[int]:
    return sorted(int(size) for size in scenarios)


# -- invariants ------------------------------------------------------------------------------


def check_invariants(doc: dict[str, Any]) -> list[str]:
    """Every broken invariant, as a sentence; empty when all hold."""
    broken: list[str] = []
    for backend, scenarios in doc.get("cycles", {}).items():
        sizes = _sizes(scenarios)
        for size in sizes:
            phases = scenarios[str(size)]["phases"]
            for name, phase in phases.items():
                broken += _plan_problems(f"{backend} N={size:,} {name}", phase)
                erp = phase["statements"].get("erp")
                if erp and erp["writes"]:
                    broken.append(f"{backend} N={size:,} {name}: {erp['writes']} writes to the ERP")
            noop = phases.get("no-op cycle")
            if noop is not None:
                where = f"{backend} N={size:,} no-op cycle"
                portal, store = noop["statements"]["portal"], noop["statements"]["store"]
                if portal["writes"]:
                    broken.append(f"{where}: the portal received writes {portal['tables']}")
                extra = set(store["tables"]) - NOOP_STORE_TABLES
                if extra:
                    broken.append(f"{where}: the state store was written beyond its run "
                                  f"record and lease: {sorted(extra)}")  # fmt: skip
        for small, big in itertools.pairwise(sizes):
            for name in CYCLES:
                a = scenarios[str(small)]["phases"].get(name)
                b = scenarios[str(big)]["phases"].get(name)
                if a is None or b is None:
                    continue
                x, y = a["statements"]["erp"]["all"], b["statements"]["erp"]["all"]
                if x != y:
                    broken.append(f"{backend} {name}: ERP statements grow with N "
                                  f"({x} at {small:,}, {y} at {big:,})")  # fmt: skip
    for backend, mail in doc.get("mail", {}).items():
        sent = 0
        for name, phase in mail["phases"].items():
            broken += _plan_problems(f"{backend} {name}", phase)
            sent += phase["counts"].get("sent", 0)
        if mail.get("smtp_accepted") != sent:
            broken.append(f"{backend} mail: the SMTP server accepted {mail.get('smtp_accepted')} "
                          f"messages, the mailer reports {sent} sent")  # fmt: skip
    return broken


def _plan_problems(where: str, phase: dict[str, Any]) -> list[str]:
    expected = phase.get("expected")
    if not expected:
        return []
    got = {key: phase["counts"].get(key, 0) for key in expected}
    if got == expected:
        return []
    return [f"{where}: planned {got}, the fixture expects {expected}"]


# -- goals -----------------------------------------------------------------------------------


def _row(measure: str, figure: float | None, goal: float, unit: str, *, most: bool = True,
         note: str = "") -> dict[str, Any]:  # fmt: skip
    if figure is None:
        verdict = "n/a"
    else:
        verdict = "PASS" if (figure <= goal if most else figure >= goal) else "MISS"
    sign = "<=" if most else ">="
    return {
        "measure": measure,
        "figure": None if figure is None else round(figure, 3),
        "goal": f"{sign} {goal:.3g}{unit}",
        "verdict": verdict,
        "note": note,
    }


def goals(doc: dict[str, Any]) -> list[dict[str, Any]]:
    """The issue's goals, each with the figure that answers it and PASS/MISS."""
    rows: list[dict[str, Any]] = []
    for backend, scenarios in doc.get("cycles", {}).items():
        factor = BACKEND_FACTOR.get(backend, 1.0)
        sizes = _sizes(scenarios)
        n = sizes[0]
        phases = scenarios[str(n)]["phases"]
        raw = phases["raw read"]["wall_s"]
        scaled = "" if n == GOAL_N else f"the goal at {GOAL_N:,}, scaled to N"
        rows.append(_row(f"{backend}: first sync at {n:,} (s)", phases["first sync"]["wall_s"],
                         FIRST_SYNC_S * factor * n / GOAL_N, " s", note=scaled))  # fmt: skip
        for name, goal in RATIO_GOALS.items():
            rows.append(_row(f"{backend}: {name} / raw read at {n:,}",
                             phases[name]["wall_s"] / raw, goal * factor, "x"))  # fmt: skip
        peak = max(phases[name]["rss_peak_mib"] for name in CYCLES)
        rows.append(_row(f"{backend}: peak RSS of a cycle at {n:,} (MiB)", peak, PEAK_RSS_MIB, ""))
        if len(sizes) > 1:
            big = scenarios[str(sizes[-1])]["phases"]
            for name in CYCLES:
                cpu = big[name]["cpu_s"] / max(phases[name]["cpu_s"], 1e-9)
                rows.append(_row(f"{backend}: {name} time {sizes[-1]:,} / {n:,}",
                                 big[name]["wall_s"] / phases[name]["wall_s"], LINEAR_TIME, "x",
                                 note=f"CPU {cpu:.2f}x"))  # fmt: skip
            big_peak = max(big[name]["rss_peak_mib"] for name in CYCLES)
            rows.append(_row(f"{backend}: peak RSS {sizes[-1]:,} / {n:,}", big_peak / peak,
                             LINEAR_MEMORY, "x"))  # fmt: skip
    cores, hash_s = doc["machine"]["cpus"], doc.get("hash_s")
    for backend, mail in doc.get("mail", {}).items():
        pw, notice = mail["phases"]["mail, passwords"], mail["phases"]["mail, notices"]
        if hash_s:
            goal = PASSWORD_SHARE * cores / hash_s
            note = f"one hash {hash_s:.3f} s, {cores} cores"
            rows.append(_row(f"{backend}: password mails per second", pw["mails_per_s"], goal,
                             "/s", most=False, note=note))  # fmt: skip
        rows.append(_row(f"{backend}: notice mails per second", notice["mails_per_s"],
                         NOTICES_PER_S, "/s", most=False))  # fmt: skip
    daemon = doc.get("daemon")
    if daemon:
        growth, note = daemon_growth(daemon)
        rows.append(_row(f"daemon: RSS growth over {daemon['cycles_asked']} light cycles at "
                         f"{daemon['contractors']:,} (MiB)", growth, DAEMON_GROWTH_MIB, "",
                         note=note))  # fmt: skip
    for command, figures in doc.get("startup", {}).items():
        rows.append(_row(f"`{command}` start to exit (s)", figures["median_s"], START_S, " s"))
    return rows


def daemon_growth(daemon: dict[str, Any]) -> tuple[float | None, str]:
    """RSS growth from the first light cycle to the last; projected to the cycles asked
    when the time cap stopped it earlier."""
    rss = daemon["rss_mib"]
    if len(rss) < 2:
        return None, "fewer than 2 cycles ran"
    growth = rss[-1] - rss[0]
    if daemon["cycles"] >= daemon["cycles_asked"]:
        return growth, f"{rss[0]:.1f} -> {rss[-1]:.1f} MiB, max {max(rss):.1f}"
    # The first cycles fill caches (a step), then the slope is what goes on: project the
    # slope of the second half over the cycles the time cap left out.
    middle = len(rss) // 2
    slope = (rss[-1] - rss[middle]) / max(len(rss) - 1 - middle, 1)
    projected = growth + slope * (daemon["cycles_asked"] - len(rss))
    return projected, (
        f"time cap: {daemon['cycles']} cycles ran, {growth:+.1f} MiB "
        f"({rss[0]:.1f} -> {rss[-1]:.1f}), then {slope * 1024:.0f} KiB/cycle projected"
    )


# -- tables ----------------------------------------------------------------------------------


def _st(phase: dict[str, Any], engine: str) -> str:
    tally = phase["statements"].get(engine)
    return f"{tally['all']}/{tally['writes']}" if tally else "-"


def print_cycles(doc: dict[str, Any]) -> None:
    for backend, scenarios in doc.get("cycles", {}).items():
        sizes = _sizes(scenarios)
        print(f"\n{backend}: " + ", ".join(
            f"N = {s:,} ({scenarios[str(s)]['facts']['in_scope']:,} in scope, ERP built in "
            f"{scenarios[str(s)]['build_s']:.0f} s)" for s in sizes))  # fmt: skip
        head = (f"{'phase':<17}{'N':>9}{'wall s':>8}{'CPU s':>8}{'RSS MiB':>9}{'x raw':>7}"
                f"{'ERP':>7}{'portal':>11}{'store':>12}"
                f"{'t 2N/N':>8}{'c 2N/N':>8}{'m 2N/N':>8}")  # fmt: skip
        print(head)
        print("-" * len(head))
        for name in ("raw read", *CYCLES):
            first = scenarios[str(sizes[0])]["phases"][name]
            for size in sizes:
                p = scenarios[str(size)]["phases"][name]
                raw = scenarios[str(size)]["phases"]["raw read"]["wall_s"]
                ratio = ""
                if size != sizes[0]:
                    ratio = (f"{p['wall_s'] / first['wall_s']:>8.2f}"
                             f"{p['cpu_s'] / max(first['cpu_s'], 1e-9):>8.2f}"
                             f"{p['rss_peak_mib'] / first['rss_peak_mib']:>8.2f}")  # fmt: skip
                label = name if size == sizes[0] else ""
                print(f"{label:<17}{size:>9,}{p['wall_s']:>8.2f}{p['cpu_s']:>8.2f}"
                      f"{p['rss_peak_mib']:>9.0f}{p['wall_s'] / raw:>7.2f}{_st(p, 'erp'):>7}"
                      f"{_st(p, 'portal'):>11}{_st(p, 'store'):>12}{ratio}")  # fmt: skip
    print("(statements: all/writes; RSS: the phase process's peak; x raw: wall / raw read's;")
    print(" t, c, m 2N/N: wall time, CPU time and peak RSS at 2N over N; raw read: the bare")
    print(" driver, the connector's 2 statements, not counted; CPU: the phase's process only)")


def print_mail(doc: dict[str, Any]) -> None:
    if not doc.get("mail"):
        return
    print(f"\nmail to an SMTP server on loopback (bcrypt: one hash {doc.get('hash_s', 0):.3f} s)")
    head = (f"{'backend':<10}{'phase':<17}{'mails':>7}{'wall s':>8}{'CPU s':>8}{'mails/s':>9}"
            f"{'RSS MiB':>9}{'portal':>9}{'store':>10}")  # fmt: skip
    print(head)
    print("-" * len(head))
    for backend, mail in doc["mail"].items():
        for name, p in mail["phases"].items():
            print(f"{backend:<10}{name:<17}{p['counts'].get('sent', 0):>7}{p['wall_s']:>8.2f}"
                  f"{p['cpu_s']:>8.2f}{p['mails_per_s']:>9.1f}{p['rss_peak_mib']:>9.0f}"
                  f"{_st(p, 'portal'):>9}{_st(p, 'store'):>10}")  # fmt: skip


def print_goals(rows: list[dict[str, Any]]) -> None:
    print("\nGoals")
    width = max(len(r["measure"]) for r in rows) + 2 if rows else 10
    print(f"{'measure':<{width}}{'figure':>10}  {'goal':<12}verdict")
    print("-" * (width + 32))
    for r in rows:
        figure = "-" if r["figure"] is None else f"{r['figure']:.2f}"
        note = f"  ({r['note']})" if r["note"] else ""
        print(f"{r['measure']:<{width}}{figure:>10}  {r['goal']:<12}{r['verdict']}{note}")
