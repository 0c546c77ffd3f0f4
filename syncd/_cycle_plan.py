"""The cycle's planning half: read the ERP, map what changed, plan against the bindings.

Private to ``syncd.cycle``. Everything the pure plan needs from the state store is read
here, each in one query whatever the ERP's size: the bindings, the records in backoff
(``syncd.backoff``) and the last good read's scope (``syncd.safety``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from connectors.base import LimitedPortal
from syncd import backoff, safety
from syncd.mapping import map_contractor, within_limits
from syncd.model import Conflict, DesiredAccount, PortalLimits, SourceContractor, Unchanged
from syncd.plan import Plan, PlanOptions, make_plan, resolve_creates
from syncd.store import Binding, RecordFailure, StateStore

if TYPE_CHECKING:
    from syncd.cycle import CycleRequest
    from syncd.wiring import Services

HEARTBEAT_EVERY = 5_000  # rows read between two renewals of the cycle lease
COUNT_EVERY = 500  # rows read between two reports to ``plan_cycle``'s ``counted``

Mapped = DesiredAccount | Conflict | Unchanged


@dataclass(slots=True)
class Planned:
    """A cycle's plan with what apply and the run's record need besides it."""

    plan: Plan
    bindings: dict[str, Binding]
    failing: dict[str, RecordFailure]  # the backoff rows, as read before planning
    settled: set[str] = field(default_factory=set)  # failing keys with nothing left to send
    reference: int | None = None  # the last good read's in-scope count


def map_changed(
    contractors: Iterable[SourceContractor],
    bindings: Mapping[str, Binding],
    *,
    full: bool,
    limits: PortalLimits | None = None,
    login_by: str = "email",
) -> Iterator[Mapped]:
    """Map the contractors whose raw ERP row differs from the one their binding was applied
    from; the others become ``Unchanged`` without being validated again (most of a quiet
    cycle's CPU). A full reconcile maps everything: it compares with the portal itself.
    ``limits`` (``portal_limits``) turn a value the portal cannot hold into a conflict."""
    for contractor in contractors:
        binding = bindings.get(contractor.key)
        raw = contractor.raw_fingerprint(login_by)
        if (
            not full
            and binding is not None
            and binding.source_fingerprint == raw
            and binding.status != "inactive"
        ):
            yield Unchanged(contractor.key, binding.login, contractor.symbol, contractor.name)
        else:
            mapped = map_contractor(contractor, source_fingerprint=raw, login_by=login_by)
            if limits is not None and isinstance(mapped, DesiredAccount):
                mapped = within_limits(mapped, limits)
            yield mapped


def portal_limits(portal: object) -> PortalLimits | None:
    """The portal's limits when it knows them (``connectors.base.LimitedPortal``)."""
    return portal.limits() if isinstance(portal, LimitedPortal) else None


def _heartbeat(
    items: Iterable[Mapped], beat: Callable[[], None], counted: Callable[[int], None]
) -> Iterator[Mapped]:
    count = 0
    for count, item in enumerate(items, start=1):
        if count % HEARTBEAT_EVERY == 0:
            beat()
        if count % COUNT_EVERY == 0:
            counted(COUNT_EVERY)
        yield item
    counted(count % COUNT_EVERY)


def _watch(items: Iterable[Mapped], planned: Planned, seen: set[str]) -> Iterator[Mapped]:
    """Note which failing records the ERP still has, and which need no write any more
    (unchanged since their binding, or now a conflict to fix in the ERP)."""
    failing = planned.failing
    for item in items:
        if item.key in failing:
            seen.add(item.key)
            if not isinstance(item, DesiredAccount):
                planned.settled.add(item.key)
        yield item


def reference_of(store: StateStore) -> int | None:
    """The last good read's in-scope count, from the newest runs (one query)."""
    return safety.reference_of(store.last_runs(safety.RUNS_SEARCHED))


def plan_cycle(
    services: Services,
    request: CycleRequest,
    beat: Callable[[], None] = lambda: None,
    *,
    reference: int | None,
    counted: Callable[[int], None] = lambda rows: None,
) -> Planned:
    """Plan the cycle ``request`` asks for, as ``plan`` and ``sync`` both do; ``reference``
    is the last good read's in-scope count (``reference_of``); ``counted`` hears how many
    more ERP rows were read, every ``COUNT_EVERY`` rows (a progress bar)."""
    config = services.config
    store = services.store
    bindings = store.load_bindings()
    failing = store.record_failures()
    managed = sum(1 for b in bindings.values() if b.status != "inactive")
    limits = portal_limits(services.portal)
    options = PlanOptions(
        on_removed=config.portal.on_removed.value,
        erp_block_reason=config.source.erp_block_reason,
        max_removals=config.safety.max_removals.limit(managed),
        allow_removals=request.allow_removals,
        only_keys=request.only_keys,
        portal_fields=services.portal.stored_fields,
        deferred=backoff.not_due(failing, services.clock(), asked_for=request.only_keys),
        min_scope=safety.min_scope_count(config.safety.min_scope, reference),
        scope_reference=reference,
        feature=getattr(config.source, "feature", None),
        fold_logins=limits is not None and limits.fold_logins,
    )
    planned = Planned(Plan(), bindings, failing, reference=reference)
    portal_listing = None
    if request.full:
        portal_listing = {account.id: account for account in services.portal.accounts()}
    seen: set[str] = set()
    login_by = config.portal.login.value
    mapped = map_changed(
        services.source.contractors(), bindings, full=request.full, limits=limits, login_by=login_by
    )
    stream = _watch(_heartbeat(mapped, beat, counted), planned, seen)
    plan = make_plan(stream, bindings, options, portal_listing)
    planned.settled.update(k for k in failing if k not in seen and k not in bindings)
    if plan.create:
        existing = services.portal.find_by_logins([c.desired.login for c in plan.create])
        plan = resolve_creates(
            plan,
            existing,
            adopt_existing=config.portal.adopt_existing,
            portal_fields=services.portal.stored_fields,
        )
    planned.plan = plan
    return planned
