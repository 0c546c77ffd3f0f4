"""One cycle: read the ERP, map, plan against the bindings, guard, apply, record.

This is the only place that strings the data path together:

    source -> mapping -> plan (pure) -> resolve_creates (pure) -> apply -> state store

A source that fails to read, even after some rows, yields no plan at all, so an ERP
outage can never look like "every contractor was removed".
"""

from __future__ import annotations

import gc
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from functools import partial
from typing import Any

import structlog

from syncd import safety
from syncd._cycle_plan import HEARTBEAT_EVERY, Planned, map_changed, plan_cycle, reference_of
from syncd._plan_duplicates import STORED_AT_MOST
from syncd._render import Items
from syncd.apply import ApplyReport, ApplySettings, apply_plan
from syncd.backoff import BackoffPolicy
from syncd.errors import ExitCode, LockUnavailable, UnavailableError
from syncd.lease import Lease
from syncd.plan import Plan
from syncd.progress import NO_PROGRESS, Progress
from syncd.wiring import Services

__all__ = [
    "HEARTBEAT_EVERY",
    "LEASE_TTL",
    "CycleRequest",
    "CycleResult",
    "map_changed",
    "run_cycle",
]

log = structlog.get_logger(__name__)

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
    # Hears the counts of the read and apply phases (``syncd sync`` on a terminal).
    progress: Progress = NO_PROGRESS
    # Keep every applied item, not only counts: ``syncd sync`` prints each item's result,
    # and after a stop only that list tells "ok" from "not applied" (``ApplyReport``).
    itemise: bool = False


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
    scope_reference: int | None = None  # the last good read's in-scope count (syncd.safety)

    def summary(self) -> dict[str, Any]:
        """The run's record in the runs table (what ``status`` reports of it)."""
        counts = self.plan.counts() if self.plan else {}
        failed = self.report.failed if self.report else 0
        document: dict[str, Any] = {
            **counts,
            "failed": failed,
            "duration_s": round(self.duration_s, 3),
        }
        if self.plan is not None and self.plan.held_check:
            document["held_by"] = self.plan.held_check
            document["held_reason"] = self.plan.held_reason
        if self.report is not None and self.report.quarantined:
            document["quarantined"] = len(self.report.quarantined)
        if self.plan is not None and self.plan.duplicate_tax_ids:
            document["duplicate_tax_ids"] = self.plan.duplicate_tax_ids[:STORED_AT_MOST]
        scope = self.plan.scope if self.plan is not None else None
        held_check = self.plan.held_check if self.plan is not None else None
        reference = safety.next_reference(scope, held_check, self.scope_reference)
        if reference is not None:
            document[safety.REFERENCE] = reference
        return document

    def as_json(self, *, stream: bool = False) -> dict[str, Any]:
        """``plan --json`` / ``sync --json``: the plan's lists, with ``result`` after a sync.
        ``stream``: the lists are made item by item as they are written (``Plan.as_json``)."""
        document: dict[str, Any] = {"run_id": self.run_id}
        if self.plan is not None:
            document.update(self.plan.as_json(stream=stream))
            if self.report is not None:
                _attach_results(document, self.report)
        document["exit_code"] = int(self.exit_code)
        if self.error:
            document["error"] = self.error
        return document


def _attach_results(document: dict[str, Any], report: ApplyReport) -> None:
    for kind in ("create", "adopt", "update", "remove", "block", "unblock"):
        items = document[kind]
        if isinstance(items, Items):
            document[kind] = items.map(partial(_with_result, kind=kind, report=report))
        else:
            for item in items:
                _with_result(item, kind=kind, report=report)


def _with_result(item: dict[str, Any], *, kind: str, report: ApplyReport) -> dict[str, Any]:
    item["result"] = report.result((kind, item["key"]))
    return item


def run_cycle(services: Services, request: CycleRequest) -> CycleResult:
    """Run one cycle (or, with ``dry_run``, only plan it). Never raises UnavailableError:
    an outage becomes exit code 4 with the reason in ``error``."""
    run_id = services.run_ids()
    structlog.contextvars.bind_contextvars(run_id=run_id)
    started = time.monotonic()
    result = CycleResult(run_id)
    try:
        with _fewer_collections():
            _run(services, request, result)
    except UnavailableError as error:
        result.error = str(error)
        result.exit_code = ExitCode.UNAVAILABLE
        if result.lease_busy and request.trigger == "schedule":
            # Routine for the daemon: a manual sync holds the lease; the next tick retries.
            log.info("cycle.lease_busy", error=str(error))
        elif request.trigger != "schedule":  # the daemon says it once (daemon.outages)
            log.error("cycle.unavailable", error=str(error))
    finally:
        result.duration_s = time.monotonic() - started
        structlog.contextvars.unbind_contextvars("run_id")
    return result


def _run(services: Services, request: CycleRequest, result: CycleResult) -> None:
    if request.dry_run:
        services.portal.ensure_ready()
        reference = reference_of(services.store)
        result.plan = plan_cycle(services, request, reference=reference).plan
    else:
        _sync(services, request, result)


# A cycle allocates millions of short-lived objects while it holds a few hundred thousand
# long-lived ones (the plan, the index): with the interpreter's default threshold (700),
# the collector walked those again and again, about a third of a first sync's time. Its
# garbage is freed by reference counting; cycles among it are rare and wait a little.
COLLECT_AFTER = 100_000


@contextmanager
def _fewer_collections() -> Iterator[None]:
    """Run the young generation's collection every ``COLLECT_AFTER`` allocations, not 700."""
    thresholds = gc.get_threshold()
    gc.set_threshold(max(thresholds[0], COLLECT_AFTER), *thresholds[1:])
    try:
        yield
    finally:
        gc.set_threshold(*thresholds)


class _Stopped(Exception):
    """``request.stop`` was set while the cycle was still reading: nothing was applied."""


def _settings(services: Services, request: CycleRequest, run_id: str) -> ApplySettings:
    config = services.config
    return ApplySettings(
        run_id=run_id,
        actor=request.actor,
        send_delay=config.mail.send_delay,
        language=config.mail.language.value,
        portal_url=str(config.mail.portal_url) if config.mail.portal_url else None,
        erp_block_reason=config.source.erp_block_reason,
        backoff=BackoffPolicy(quarantine_after=config.safety.quarantine_after),
        mail_recipient=config.mail.recipient,
    )


def _sync(services: Services, request: CycleRequest, result: CycleResult) -> None:
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
            # Read first, so that a run whose read fails still carries the reference on.
            result.scope_reference = reference_of(store)
            services.portal.ensure_ready()
            progress = request.progress
            progress.start("read", result.scope_reference)
            planned = plan_cycle(
                services,
                request,
                beat,
                reference=result.scope_reference,
                counted=lambda rows: progress.advance("read", rows),
            )
            progress.finish("read")
            plan = result.plan = planned.plan
            _apply(services, request, result, planned, renew=renew, stop=stopping)
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


def _apply(
    services: Services,
    request: CycleRequest,
    result: CycleResult,
    planned: Planned,
    *,
    renew: Callable[[], None],
    stop: Callable[[], bool],
) -> None:
    """Apply the plan (if it does anything), then forget the records it no longer holds."""
    plan = planned.plan
    if plan.held_check:
        log.warning("cycle.held", check=plan.held_check, reason=plan.held_reason)
    if not plan.is_empty:
        progress = request.progress
        progress.start("apply", _contractors(plan))
        result.report = apply_plan(
            plan,
            portal=services.portal,
            store=services.store,
            bindings=planned.bindings,
            settings=_settings(services, request, result.run_id),
            now=services.clock,
            failing=planned.failing,
            heartbeat=renew,
            stop=stop,
            done=lambda contractors: progress.advance("apply", contractors),
            itemise=request.itemise,
        )
        progress.finish("apply")
    if planned.settled:
        services.store.settle_failures(planned.settled)


def _contractors(plan: Plan) -> int:
    """How many contractors ``apply_plan`` writes (its batches count contractors)."""
    keys = {item.key for item in plan.remove}
    for items in (plan.update, plan.refresh, plan.block, plan.unblock, plan.adopt):
        keys.update(item.desired.key for item in items)
    keys.update(create.desired.key for create in plan.create.held)
    # A spooled create's key has no other item (``Creates``): counted, not read back.
    return len(keys) + len(plan.create) - len(plan.create.held)


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
        deferred=counts.get("deferred", 0),
        unchanged=counts.get("unchanged", 0),
        failed=result.report.failed if result.report else 0,
    )
