"""One cycle: read the ERP, map, plan against the bindings, guard, apply, record.

This is the only place that strings the data path together:

    source -> mapping -> plan (pure) -> resolve_creates (pure) -> apply -> state store

A source that fails to read, even after some rows, yields no plan at all, so an ERP
outage can never look like "every contractor was removed".
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import structlog

from syncd.apply import ApplyReport, ApplySettings, apply_plan
from syncd.errors import ExitCode, LockUnavailable, UnavailableError
from syncd.lease import Lease
from syncd.mapping import map_contractor
from syncd.model import Conflict, DesiredAccount, SourceContractor, Unchanged
from syncd.plan import Plan, PlanOptions, make_plan, resolve_creates
from syncd.store import Binding
from syncd.wiring import Services

log = structlog.get_logger(__name__)

HEARTBEAT_EVERY = 5_000  # rows read between two renewals of the cycle lease
LEASE_TTL = timedelta(minutes=2)  # a dead holder's lease lapses this long after its last renewal


@dataclass(frozen=True, slots=True)
class CycleRequest:
    """What the caller asks of a cycle."""

    dry_run: bool = False
    only_keys: frozenset[str] | None = None
    full: bool = False
    allow_removals: bool = False
    trigger: str = "cli"
    actor: str = "syncd"
    lock_wait: timedelta = timedelta(minutes=10)
    # The daemon derives the lease's ttl from its interval (syncd.daemon.lease_ttl).
    lease_ttl: timedelta = LEASE_TTL
    # Set (by SIGTERM) to stop between two batches: the batch in hand commits, no more.
    stop: threading.Event | None = None


@dataclass(slots=True)
class CycleResult:
    """What a cycle did (or, for a dry run, would do), and the exit code it earns."""

    run_id: str
    plan: Plan | None = None
    report: ApplyReport | None = None
    error: str | None = None
    exit_code: ExitCode = ExitCode.OK
    duration_s: float = 0.0
    warnings: list[str] = field(default_factory=list)
    lease_busy: bool = False  # another process held the cycle lease for all of lock_wait
    interrupted: bool = False  # ``request.stop`` was set: stopped early, nothing half-applied

    def summary(self) -> dict[str, Any]:
        counts = self.plan.counts() if self.plan else {}
        failed = self.report.failed if self.report else 0
        return {**counts, "failed": failed, "duration_s": round(self.duration_s, 3)}

    def as_json(self) -> dict[str, Any]:
        """``plan --json`` / ``sync --json``: the plan's lists, with ``result`` after a sync."""
        document: dict[str, Any] = {"run_id": self.run_id}
        if self.plan is not None:
            document.update(self.plan.as_json())
            if self.report is not None:
                _attach_results(document, self.report)
        document["exit_code"] = int(self.exit_code)
        if self.error:
            document["error"] = self.error
        return document


def _attach_results(document: dict[str, Any], report: ApplyReport) -> None:
    for kind in ("create", "adopt", "update", "remove", "block", "unblock"):
        for item in document.get(kind, []):
            item["result"] = report.results.get((kind, item["key"]), "not applied")


Mapped = DesiredAccount | Conflict | Unchanged


def _heartbeat(items: Iterable[Mapped], beat: Callable[[], None]) -> Iterator[Mapped]:
    for count, item in enumerate(items, start=1):
        if count % HEARTBEAT_EVERY == 0:
            beat()
        yield item


def map_changed(
    contractors: Iterable[SourceContractor], bindings: Mapping[str, Binding], *, full: bool
) -> Iterator[Mapped]:
    """Map the contractors whose raw ERP row differs from the one their binding was applied
    from; the others become ``Unchanged`` without being validated again (most of a quiet
    cycle's CPU). A full reconcile maps everything: it compares with the portal itself."""
    for contractor in contractors:
        binding = bindings.get(contractor.key)
        raw = contractor.raw_fingerprint()
        if (
            not full
            and binding is not None
            and binding.source_fingerprint == raw
            and binding.status != "inactive"
        ):
            yield Unchanged(contractor.key, binding.login, contractor.symbol, contractor.name)
        else:
            yield map_contractor(contractor, source_fingerprint=raw)


def _plan(
    services: Services, request: CycleRequest, beat: Callable[[], None]
) -> tuple[Plan, dict[str, Binding]]:
    """Plan the cycle; also returns the bindings it planned against, for apply to reuse."""
    config = services.config
    bindings = services.store.load_bindings()
    managed = sum(1 for b in bindings.values() if b.status != "inactive")
    options = PlanOptions(
        on_removed=config.portal.on_removed.value,
        erp_block_reason=config.source.erp_block_reason,
        max_removals=config.safety.max_removals.limit(managed),
        allow_removals=request.allow_removals,
        only_keys=request.only_keys,
        portal_fields=services.portal.stored_fields,
    )
    portal_listing = None
    if request.full:
        portal_listing = {account.id: account for account in services.portal.accounts()}
    contractors = services.source.contractors()
    mapped = map_changed(contractors, bindings, full=request.full)
    plan = make_plan(_heartbeat(mapped, beat), bindings, options, portal_listing)
    if plan.create:
        existing = services.portal.find_by_logins([c.desired.login for c in plan.create])
        plan = resolve_creates(
            plan,
            existing,
            adopt_existing=config.portal.adopt_existing,
            portal_fields=services.portal.stored_fields,
        )
    return plan, bindings


def run_cycle(services: Services, request: CycleRequest) -> CycleResult:
    """Run one cycle (or, with ``dry_run``, only plan it). Never raises UnavailableError:
    an outage becomes exit code 4 with the reason in ``error``."""
    run_id = services.run_ids()
    structlog.contextvars.bind_contextvars(run_id=run_id)
    started = time.monotonic()
    result = CycleResult(run_id)
    try:
        if request.dry_run:
            services.portal.ensure_ready()
            result.plan, _ = _plan(services, request, lambda: None)
        else:
            _sync(services, request, result)
    except UnavailableError as error:
        result.error = str(error)
        result.exit_code = ExitCode.UNAVAILABLE
        if result.lease_busy and request.trigger == "schedule":
            # Routine for the daemon: a manual sync holds the lease; the next tick retries.
            log.info("cycle.lease_busy", error=str(error))
        else:
            log.error("cycle.unavailable", error=str(error))
    finally:
        result.duration_s = time.monotonic() - started
        structlog.contextvars.unbind_contextvars("run_id")
    return result


class _Stopped(Exception):
    """``request.stop`` was set while the cycle was still reading: nothing was applied."""


def _sync(services: Services, request: CycleRequest, result: CycleResult) -> None:
    config = services.config
    store = services.store
    started = time.monotonic()
    lease = Lease(store, clock=services.clock, ttl=request.lease_ttl)
    stopping = request.stop.is_set if request.stop else _never

    renew = _Throttled(lease.renew, request.lease_ttl / 4)

    def beat() -> None:
        """Every 5,000 rows read: give up at once on SIGTERM, else renew the lease."""
        if stopping():
            raise _Stopped
        renew()

    try:
        lease.acquire(wait=request.lock_wait)
    except LockUnavailable:
        result.lease_busy = True
        raise
    try:
        kind = "full" if request.full else "sync"
        store.start_run(result.run_id, kind=kind, trigger=request.trigger)
        status, error = "failed", None
        try:
            services.portal.ensure_ready()
            plan, bindings = _plan(services, request, beat)
            result.plan = plan
            settings = ApplySettings(
                run_id=result.run_id,
                actor=request.actor,
                send_delay=config.mail.send_delay,
                language=config.mail.language.value,
                portal_url=str(config.mail.portal_url) if config.mail.portal_url else None,
                erp_block_reason=config.source.erp_block_reason,
            )
            if not plan.is_empty:
                result.report = apply_plan(
                    plan,
                    portal=services.portal,
                    store=store,
                    bindings=bindings,
                    settings=settings,
                    now=services.clock,
                    heartbeat=renew,
                    stop=stopping,
                )
            if request.only_keys is None:
                store.sync_conflicts(plan.conflict)
            result.exit_code = _exit_code(result)
            status = {ExitCode.REMOVALS_HELD: "held", ExitCode.RECORDS_FAILED: "failed"}.get(
                result.exit_code, "ok"
            )
            if result.report is not None and result.report.interrupted:
                status = "interrupted"  # stopped between batches; the next cycle carries on
                result.interrupted = True
        except _Stopped:
            status, result.interrupted = "interrupted", True
            log.warning("cycle.interrupted", detail="stopped while reading; nothing applied")
        except UnavailableError as failure:
            status, error = "unavailable", str(failure)
            raise
        finally:
            result.duration_s = time.monotonic() - started
            store.finish_run(result.run_id, status=status, summary=result.summary(), error=error)
            _log_summary(result, status)
    finally:
        lease.release()


class _Throttled:
    """Calls ``action`` at most once per ``every``: the lease is renewed by elapsed time, not
    per batch or per 5,000 rows, so its statements stay constant whatever the ERP's size."""

    def __init__(self, action: Callable[[], None], every: timedelta) -> None:
        self._action = action
        self._every = every.total_seconds()
        self._last = time.monotonic()

    def __call__(self) -> None:
        now = time.monotonic()
        if now - self._last >= self._every:
            self._action()
            self._last = now


def _never() -> bool:
    return False


def _exit_code(result: CycleResult) -> ExitCode:
    if result.plan is not None and result.plan.held:
        return ExitCode.REMOVALS_HELD
    if result.report is not None and result.report.failed:
        return ExitCode.RECORDS_FAILED
    return ExitCode.OK


def _log_summary(result: CycleResult, status: str) -> None:
    counts = result.plan.counts() if result.plan else {}
    log.info(
        "sync.finished",
        status=status,
        duration_s=round(result.duration_s, 3),
        created=counts.get("create", 0) + counts.get("adopt", 0),
        updated=counts.get("update", 0),
        removed=counts.get("remove", 0),
        blocked=counts.get("block", 0),
        unblocked=counts.get("unblock", 0),
        conflicts=counts.get("conflict", 0),
        held=counts.get("held", 0),
        unchanged=counts.get("unchanged", 0),
        failed=result.report.failed if result.report else 0,
    )
