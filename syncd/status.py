"""``syncd status``: last and next cycle, accounts by status, conflicts, records in backoff
and quarantine, the mail queue and held removals with the check that held them (spec 4).

Healthy means: the last finished cycle succeeded (or only had removals held) and it
finished recently, within three light-cycle intervals (at least 15 minutes). Exit code 1
when unhealthy, so a monitoring check can run ``syncd status`` as it is.

Monitoring runs it often, so it starts fast: a current SQLite store is read through the
stdlib (``syncd._status_sqlite``) without importing SQLAlchemy; PostgreSQL, MariaDB, a
store that needs migrating and one with bounced mail go through ``StateStore``.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol, TextIO

from syncd._plan_duplicates import last_stored
from syncd._render import dump_json
from syncd._status_sqlite import SqliteStatusReader
from syncd.clock import utcnow
from syncd.errors import ExitCode

if TYPE_CHECKING:
    from syncd.config import Config, MailRecipient
    from syncd.rows import ConflictRow, MailRow, RecordFailure, RunRow

HEALTHY_RUN_STATUSES = frozenset({"ok", "held"})
FAILED_MAIL_SHOWN = 20  # the newest mails refused for good, with the server's answer


class StatusReader(Protocol):
    """What ``collect`` reads: ``StateStore``'s read side, or ``SqliteStatusReader``."""

    def last_runs(self, limit: int = 10) -> list[RunRow]: ...
    def mail_counts(self) -> dict[str, int]: ...
    def record_failures(self) -> dict[str, RecordFailure]: ...
    def counts_by_status(self) -> dict[str, int]: ...
    def conflicts(self) -> list[ConflictRow]: ...
    def mails(self, *, status: str, limit: int = 100) -> list[MailRow]: ...


def health(runs: list[RunRow], interval: timedelta, now: datetime) -> tuple[bool, str]:
    """Whether the daemon looks healthy, and why (or why not), from the recent runs."""
    finished = [run for run in runs if run.finished_at is not None]
    if not finished:
        return False, "no cycle has finished yet: run `syncd sync` or start the service"
    last = finished[0]
    if last.status not in HEALTHY_RUN_STATUSES:
        return False, f"the last cycle ({last.run_id}) ended {last.status}: {last.error or ''}"
    limit = max(3 * interval, timedelta(minutes=15))
    assert last.finished_at is not None
    age = now - last.finished_at
    if age > limit:
        return False, f"the last successful cycle finished {age} ago (more than {limit})"
    return True, f"the last cycle ({last.run_id}) finished {last.status} {age} ago"


def _run_json(run: RunRow) -> dict[str, Any]:
    return {
        "run_id": run.run_id,
        "kind": run.kind,
        "trigger": run.trigger,
        "started_at": run.started_at.isoformat(),
        "finished_at": run.finished_at.isoformat() if run.finished_at else None,
        "status": run.status,
        "summary": run.summary,
        "error": run.error,
    }


def next_cycle(runs: list[RunRow], interval: timedelta, now: datetime) -> str | None:
    """When the daemon's next light cycle is due, judged from its last scheduled run; None
    when no daemon has run one recently (the service is stopped, or only the CLI is used)."""
    scheduled = [run for run in runs if run.trigger == "schedule"]
    if not scheduled:
        return None
    due = scheduled[0].started_at + interval
    return due.isoformat() if due > now - 2 * interval else None


def failing_records(store: StatusReader) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The records the portal refused, quarantined and still retrying (``syncd.backoff``),
    each with its last error, from one query."""
    rows = sorted(store.record_failures().values(), key=lambda row: row.key)
    quarantined = [row.as_json() for row in rows if row.quarantined]
    retrying = [row.as_json() for row in rows if not row.quarantined]
    return quarantined, retrying


def _held(runs: list[RunRow]) -> dict[str, Any]:
    """What the newest finished cycle held back, which check held it, and why."""
    finished = [run for run in runs if run.finished_at is not None]
    summary = finished[0].summary if finished else {}
    return {
        "held_removals": summary.get("held", 0),
        "held_by": summary.get("held_by"),
        "held_reason": summary.get("held_reason"),
    }


def _undeliverable(
    store: StatusReader, mails: dict[str, int], chain: Sequence[MailRecipient]
) -> dict[str, Any]:
    """The undeliverable addresses; none without a bounced mail in the outbox, and then
    neither the query nor the import of ``syncd.mail.bounces`` (SQLAlchemy, Jinja2), which
    would more than double the start-up time of ``syncd status``."""
    if not mails.get("bounced"):
        return {}
    from syncd.mail.bounces import undeliverable
    from syncd.store import StateStore

    assert isinstance(store, StateStore)  # ``status`` reads bounced mail through it
    return undeliverable(store, chain=chain)


def collect(store: StatusReader, config: Config, now: datetime) -> dict[str, Any]:
    """The status document (``status --json``). Undeliverable addresses are worked out on
    a ``StateStore`` only: ``status`` gives it one when the outbox holds a bounced mail."""
    runs = store.last_runs(10)
    healthy, why = health(runs, config.schedule.interval, now)
    mails = store.mail_counts()
    last = runs[0] if runs else None
    quarantined, retrying = failing_records(store)
    return {
        "healthy": healthy,
        "health": why,
        "last_cycle": _run_json(last) if last else None,
        "next_cycle": next_cycle(runs, config.schedule.interval, now),
        "quarantined": quarantined,
        "retrying": retrying,
        "recent_cycles": [_run_json(run) for run in runs],
        "accounts": store.counts_by_status(),
        "conflicts": [
            {"key": c.key, "symbol": c.symbol, "login": c.login, "kind": c.kind, "reason": c.reason}
            for c in store.conflicts()
        ],
        **_held(runs),
        "warnings": [item["warning"] for item in last_stored(runs)],
        "mail_queue": mails,
        "undeliverable": [
            {"key": key, **item}
            for key, item in sorted(_undeliverable(store, mails, config.mail.recipient).items())
        ],
        "failed_mail": [
            {
                "id": m.id,
                "key": m.key,
                "template": m.template,
                "to": m.recipient,
                "at": m.created_at.isoformat(),
                "last_error": m.last_error,
            }
            for m in (
                store.mails(status="failed", limit=FAILED_MAIL_SHOWN) if mails.get("failed") else []
            )
        ],
    }


def status(config: Config, *, as_json: bool, out: TextIO) -> int:
    """Print the status document (``--json``: as JSON); exit code 1 when unhealthy."""
    document = _collect_sqlite(config)
    if document is None:
        from syncd.wiring import open_store

        store = open_store(config)
        try:
            document = collect(store, config, utcnow())
        finally:
            store.close()
    if as_json:
        dump_json(document, out)
    else:
        _print(document, out)
    return int(ExitCode.OK if document["healthy"] else ExitCode.RECORDS_FAILED)


def _collect_sqlite(config: Config) -> dict[str, Any] | None:
    """The document read through ``SqliteStatusReader``; None when ``StateStore`` must read
    it (see the module's docstring) or the file gives an error, which ``StateStore`` then
    meets again and reports in its own words (``UnavailableError``, ``FatalError``)."""
    if config.state.password is not None:
        return None
    try:
        reader = SqliteStatusReader.open(config.state.url)
        if reader is None:
            return None
        try:
            if reader.mail_counts().get("bounced"):
                return None
            return collect(reader, config, utcnow())
        finally:
            reader.close()
    except sqlite3.Error:
        return None


def _print(doc: dict[str, Any], out: TextIO) -> None:
    out.write(f"{'healthy' if doc['healthy'] else 'UNHEALTHY'}: {doc['health']}\n")
    last = doc["last_cycle"]
    if last:
        summary = ", ".join(f"{k}={v}" for k, v in last["summary"].items())
        out.write(f"last cycle: {last['run_id']} {last['status']} at {last['started_at']}\n")
        out.write(f"  {summary}\n")
    out.write(f"next cycle: {doc['next_cycle'] or 'not scheduled (is the service running?)'}\n")
    for record in doc["quarantined"]:
        out.write(
            f"  QUARANTINED {record['key']} ({record['login']}): {record['action']} failed "
            f"{record['failures']} times: {record['error']}\n"
            f"      not sent again until its ERP row changes; `syncd sync --contractor "
            f"{record['key']}` retries it now\n"
        )
    for record in doc["retrying"]:
        out.write(
            f"  failed record {record['key']} ({record['login']}): {record['action']}: "
            f"{record['error']} (try {record['failures'] + 1} after {record['retry_after']})\n"
        )
    accounts = ", ".join(f"{k}={v}" for k, v in sorted(doc["accounts"].items())) or "none"
    out.write(f"accounts: {accounts}\n")
    queue = ", ".join(f"{k}={v}" for k, v in sorted(doc["mail_queue"].items())) or "empty"
    out.write(f"mail queue: {queue}\n")
    for mail in doc["failed_mail"]:
        out.write(f"  failed: {mail['template']} to {mail['to']}: {mail['last_error']}\n")
    if doc["undeliverable"]:
        out.write(f"undeliverable addresses: {len(doc['undeliverable'])}\n")
    for item in doc["undeliverable"]:
        out.write(f"  {item['key']:>8}  {item['hint']}\n           {item['diagnostic']}\n")
    if doc["held_removals"]:
        reason = doc["held_reason"] or "`syncd sync --allow-removals` lets them through"
        out.write(
            f"held removals: {doc['held_removals']}, held by {doc['held_by'] or 'the guard'} "
            f"(`syncd plan` lists them): {reason}\n"
        )
    for warning in doc["warnings"]:
        out.write(f"warning: {warning}\n")
    out.write(f"conflicts: {len(doc['conflicts'])}\n")
    for conflict in doc["conflicts"]:
        out.write(f"  {conflict['key']:>8}  {conflict['reason']}\n")
