"""``syncd doctor``: can syncd reach everything it needs, and does the ERP look right?

Each check runs on its own, so one unreachable system does not hide the state of the
others. Nothing is written anywhere, except that the state store and the portal's tables
are migrated or created when missing, exactly as the first cycle would.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict
from datetime import timedelta
from typing import Any, TextIO

from connectors.base import Candidate, Discovering, PortalNotes, SourceCheck
from syncd._render import dump_json
from syncd.config import Config
from syncd.errors import ConfigError, ExitCode, SyncdError, UnavailableError
from syncd.wiring import make_portal, make_source, make_transport, open_store


def _state(config: Config) -> str:
    store = open_store(config)
    try:
        counts = store.counts_by_status()
    finally:
        store.close()
    total = sum(counts.values())
    return f"{store.name}: schema up to date, {total} bound account(s)"


def check_source_online(config: Config) -> SourceCheck:
    """Check the ERP against the configuration: tables, columns, queries, the feature.

    Problems (a table that is not where the config says, a misspelt alias, a query the
    database refuses) are configuration errors: ``ConfigError``, exit 2. An ERP that cannot
    be reached raises ``SourceUnavailable`` (exit 4).
    """
    source = make_source(config)
    try:
        result = source.check()
    finally:
        source.close()
    if result.problems:
        raise ConfigError(list(result.problems))
    return result


def _source(config: Config) -> str:
    result = check_source_online(config)
    return f"{config.source.kind}: " + "; ".join(result.facts or (f"{result.in_scope} in scope",))


# A cycle may wait minutes for a portal answering 429/5xx (``retry_budget``); a person
# running doctor wants the answer now, so its portal check waits at most this long.
DOCTOR_RETRY_BUDGET = timedelta(seconds=10)


def _impatient(config: Config) -> Config:
    """``config`` with the portal's retry budget cut to ``DOCTOR_RETRY_BUDGET``, for kinds
    that have one (HTTP portals); the configured value is what cycles use."""
    budget = getattr(config.portal, "retry_budget", None)
    if not isinstance(budget, timedelta) or budget <= DOCTOR_RETRY_BUDGET:
        return config
    portal = config.portal.model_copy(update={"retry_budget": DOCTOR_RETRY_BUDGET})
    return config.model_copy(update={"portal": portal})


def _portal(config: Config) -> str:
    portal = make_portal(_impatient(config))
    try:
        portal.ensure_ready()
        notes = portal.notes() if isinstance(portal, PortalNotes) else []
    finally:
        portal.close()
    stored = ", ".join(sorted(portal.stored_fields))
    detail = f"{config.portal.kind} portal reachable ({config.portal.safe_url}); stores {stored}"
    return "; ".join([detail, *notes])


def _mail(config: Config) -> str:
    transport = make_transport(config)
    transport.check()
    return f"{config.mail.transport.value} transport ready"


CHECKS: tuple[tuple[str, Callable[[Config], str]], ...] = (
    ("state store", _state),
    ("ERP", _source),
    ("portal", _portal),
    ("mail", _mail),
)


def discover(config: Config) -> list[Candidate]:
    """``doctor --discover``: candidate tables and columns for what the config must name."""
    source = make_source(config)
    try:
        if not isinstance(source, Discovering):
            return []
        return source.discover()
    finally:
        source.close()


def doctor(config: Config, *, as_json: bool, out: TextIO, discover_names: bool = False) -> int:
    """Run every check; exit 4 if something is unreachable, 2 if the configuration does not
    fit the ERP, 1 if something else is wrong. ``discover_names`` adds the candidates."""
    results: list[dict[str, Any]] = []
    code = ExitCode.OK
    for name, check in CHECKS:
        try:
            results.append({"check": name, "ok": True, "detail": check(config)})
        except UnavailableError as error:
            results.append({"check": name, "ok": False, "detail": str(error)})
            code = ExitCode.UNAVAILABLE
        except ConfigError as error:
            results.append({"check": name, "ok": False, "detail": "; ".join(error.problems)})
            code = max(code, ExitCode.CONFIG)
        except SyncdError as error:
            results.append({"check": name, "ok": False, "detail": str(error)})
            code = max(code, ExitCode.RECORDS_FAILED)
    candidates: list[Candidate] | None = None
    if discover_names:
        try:
            candidates = discover(config)
        except UnavailableError as error:
            results.append({"check": "discover", "ok": False, "detail": str(error)})
            code = ExitCode.UNAVAILABLE
    if as_json:
        document: dict[str, Any] = {"ok": code == ExitCode.OK, "checks": results}
        if candidates is not None:
            document["candidates"] = [asdict(c) for c in candidates]
        dump_json(document, out)
    else:
        for result in results:
            mark = "ok  " if result["ok"] else "FAIL"
            out.write(f"[{mark}] {result['check']}: {result['detail']}\n")
        if candidates is not None:
            _print_candidates(config, candidates, out)
    return int(code)


def _print_candidates(config: Config, candidates: list[Candidate], out: TextIO) -> None:
    if not candidates:
        out.write(f"\ndiscover: source kind {config.source.kind} has no names to discover\n")
        return
    out.write("\nCandidates for the names the configuration must give:\n")
    setting = None
    for candidate in candidates:
        if candidate.setting != setting:
            setting = candidate.setting
            out.write(f"  {setting}:\n")
        columns = ", ".join(candidate.columns)
        out.write(f"      {candidate.table} ({columns})  [{candidate.why}]\n")
