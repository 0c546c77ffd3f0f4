"""``syncd doctor``: can syncd reach everything it needs, and does the ERP look right?

Each check runs on its own, so one unreachable system does not hide the state of the
others. Nothing is written anywhere, except that the state store and the portal's tables
are migrated or created when missing, exactly as the first cycle would.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TextIO

from syncd._render import dump_json
from syncd.config import Config
from syncd.errors import ExitCode, SyncdError, UnavailableError
from syncd.wiring import make_portal, make_source, make_transport, open_store


def _state(config: Config) -> str:
    store = open_store(config)
    try:
        counts = store.counts_by_status()
    finally:
        store.close()
    total = sum(counts.values())
    return f"{store.name}: schema up to date, {total} bound account(s)"


def _source(config: Config) -> str:
    source = make_source(config)
    try:
        info = source.check()
    finally:
        source.close()
    feature = config.source.feature
    if not info.feature_exists:
        message = (
            f"the feature {feature!r} does not exist in the ERP: create it (cecha kontrahenta) "
            "and tag the contractors that should have portal accounts, or fix source.feature"
        )
        raise SyncdError(message)
    notes = "; ".join(info.notes)
    return f"feature {feature!r} found, {info.in_scope} contractor(s) in scope" + (
        f" ({notes})" if notes else ""
    )


def _portal(config: Config) -> str:
    portal = make_portal(config)
    try:
        portal.ensure_ready()
    finally:
        portal.close()
    return f"{config.portal.kind.value} portal reachable, tables ready"


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


def doctor(config: Config, *, as_json: bool, out: TextIO) -> int:
    """Run every check; exit 4 if something is unreachable, 1 if something is wrong."""
    results: list[dict[str, Any]] = []
    code = ExitCode.OK
    for name, check in CHECKS:
        try:
            results.append({"check": name, "ok": True, "detail": check(config)})
        except UnavailableError as error:
            results.append({"check": name, "ok": False, "detail": str(error)})
            code = ExitCode.UNAVAILABLE
        except SyncdError as error:
            results.append({"check": name, "ok": False, "detail": str(error)})
            code = max(code, ExitCode.RECORDS_FAILED)
    if as_json:
        dump_json({"ok": code == ExitCode.OK, "checks": results}, out)
    else:
        for result in results:
            mark = "ok  " if result["ok"] else "FAIL"
            out.write(f"[{mark}] {result['check']}: {result['detail']}\n")
    return int(code)
