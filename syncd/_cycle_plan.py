"""The cycle's planning half: read the ERP, map what changed, plan against the bindings.

Private to ``syncd.cycle``. A quiet cycle costs about what reading the ERP costs: the
source digests each contractor's raw rows as they stream in (``connectors.base.Digesting``),
the digest is compared with the one its binding was applied from (``BindingIndex``: a key
hash and the digest in arrays, about 29 bytes a binding, from one streamed query), and only
a contractor whose rows differ is built, mapped and given its full binding (loaded
``KEYS_PER_QUERY`` keys at a time). Bindings the ERP no longer returns are loaded after the
read, for their removals. Everything else the pure plan needs from the state store is read
here, each in one query whatever the ERP's size: the records in backoff (``syncd.backoff``)
and the last good read's scope (``syncd.safety``); the owners of the logins that changed
contractors ask for are looked up by login (``StateStore.bindings_with_logins``).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from connectors.base import Digesting, LimitedPortal
from syncd import backoff, safety
from syncd._binding_index import ABSENT, SAME, BindingIndex
from syncd._spool import Spool, Spooled
from syncd.mapping import fold_login, login_key, map_contractor, within_limits
from syncd.model import (
    Conflict,
    DesiredAccount,
    PortalLimits,
    RawRecord,
    SourceContractor,
    Unchanged,
    with_login_mode,
)
from syncd.plan import Owners, Plan, PlanOptions, make_plan, resolve_creates
from syncd.store import KEYS_PER_QUERY, Binding, RecordFailure, StateStore, index_entry

if TYPE_CHECKING:
    from connectors.base import PortalAccount, Source
    from syncd.cycle import CycleRequest
    from syncd.wiring import Services

HEARTBEAT_EVERY = 5_000  # rows read between two renewals of the cycle lease
# Unchanged contractors held back (to keep the ERP's order) while changed ones wait for
# their bindings: bounds the memory of a cycle whatever the ERP's size.
WINDOW = 20_000
COUNT_EVERY = 500  # rows read between two reports to ``plan_cycle``'s ``counted``
# New logins asked of the portal at a time (it splits them into its own queries).
LOGINS_ASKED = 10_000

Mapped = DesiredAccount | Conflict | Unchanged | Spooled


@dataclass(slots=True)
class Planned:
    """A cycle's plan with what apply and the run's record need besides it.

    ``bindings`` holds the bindings of the contractors the plan touches (mapped again, or
    gone from the ERP), not every binding: apply never needs the others.
    """

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
            yield Unchanged(contractor.key, contractor.symbol, contractor.tax_id)
        else:
            yield _fit(
                map_contractor(contractor, source_fingerprint=raw, login_by=login_by), limits
            )


def _fit(
    mapped: DesiredAccount | Conflict, limits: PortalLimits | None
) -> DesiredAccount | Conflict:
    """``mapped``, or the conflict a value the portal cannot hold makes of it."""
    if limits is not None and isinstance(mapped, DesiredAccount):
        return within_limits(mapped, limits)
    return mapped


def portal_limits(portal: object) -> PortalLimits | None:
    """The portal's limits when it knows them (``connectors.base.LimitedPortal``)."""
    return portal.limits() if isinstance(portal, LimitedPortal) else None


def records_of(source: Source) -> Iterator[RawRecord]:
    """The source's stream as raw records; a source that cannot digest its rows is built
    whole and digested from the record (``SourceContractor.raw_fingerprint``)."""
    if isinstance(source, Digesting):
        return source.records()
    return (
        RawRecord(c.key, c.raw_fingerprint(), c.symbol, c.tax_id, _already(c))
        for c in source.contractors()
    )


def _already(contractor: SourceContractor) -> Callable[[], SourceContractor]:
    return lambda: contractor


def compare_records(
    records: Iterable[RawRecord],
    index: BindingIndex,
    bindings: dict[str, Binding],
    load: Callable[[Collection[str]], Mapping[str, Binding]],
    *,
    full: bool,
    limits: PortalLimits | None = None,
    login_by: str = "email",
    spool: Spool | None = None,
) -> Iterator[Mapped]:
    """Map the records whose digest differs from their binding's, in the ERP's order.

    ``index`` (``BindingIndex``) says which records are bound and unchanged and, after the
    read, which bindings the ERP did not return. ``bindings`` receives, through ``load``,
    the full binding of every contractor that is mapped (before it is yielded) and, once
    the read is over, of every active binding the ERP no longer returns (its removal).
    A binding stores the digest as ``with_login_mode`` gives it for ``login_by``.
    With a ``spool``, an account without a binding (a create) is written there and only
    what the plan reads of it is yielded (``syncd._spool.Spooled``), so a first sync holds
    nothing per new account until apply.
    """

    def mapped(record: RawRecord) -> DesiredAccount | Conflict | Spooled:
        digest = with_login_mode(record.digest, login_by)
        account = _fit(
            map_contractor(record.build(), source_fingerprint=digest, login_by=login_by), limits
        )
        if spool is not None and isinstance(account, DesiredAccount) and record.key not in bindings:
            return spool.put(account)
        return account

    window: list[RawRecord | Unchanged] = []
    waiting: list[str] = []  # keys in the window whose binding is still to be loaded

    def flush() -> Iterator[Mapped]:
        if waiting:
            bindings.update(load(waiting))
            index.confirm((k, index_entry(bindings[k])) for k in waiting if k in bindings)
            waiting.clear()
        for item in window:
            yield item if isinstance(item, Unchanged) else mapped(item)
        window.clear()

    by_email = login_by == "email"  # the digest is stored as read: no per-row call
    for record in records:
        item: RawRecord | Unchanged = record
        digest = record.digest if by_email else with_login_mode(record.digest, login_by)
        known = index.compare(record.key, digest)
        if known == SAME and not full:
            item = Unchanged(record.key, record.symbol, record.tax_id)
        elif known != ABSENT and record.key not in bindings:
            waiting.append(record.key)
        if not waiting:  # nothing to wait for: straight through, nothing held
            yield item if isinstance(item, Unchanged) else mapped(item)
            continue
        window.append(item)
        if len(waiting) >= KEYS_PER_QUERY or len(window) >= WINDOW:
            yield from flush()
    yield from flush()
    gone = index.gone(bindings)
    if gone:
        bindings.update(load(gone))


def _entries_of(bindings: Mapping[str, Binding]) -> Callable[[], Iterator[tuple[str, str]]]:
    """``StateStore.binding_entries`` of bindings already loaded (a full reconcile's)."""
    return lambda: ((key, index_entry(item)) for key, item in bindings.items())


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
            if not isinstance(item, DesiredAccount | Spooled):
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
    bindings: dict[str, Binding] = {}
    failing = store.record_failures()
    if request.full:  # every contractor is mapped: every binding is needed
        bindings = store.load_bindings()
        index = BindingIndex(_entries_of(bindings), watch=failing.keys())
    else:
        index = BindingIndex(store.binding_entries, watch=failing.keys())
    bound_failing = index.bound
    managed = index.managed
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
    owners = None if request.full else _owners(store, index, options, login_by)
    # A dry run keeps its creates whole: ``plan --json`` lists their fields. A run for a
    # few contractors (``--contractor``) creates few: it would spool every other one only
    # to take it out again.
    spool = None
    if not (request.dry_run or request.full or request.only_keys):
        same = fold_login if options.fold_logins else login_key
        spool = Spool(same, options.deferred.keys())
    mapped = compare_records(
        records_of(services.source),
        index,
        bindings,
        store.load_bindings,
        full=request.full,
        limits=limits,
        login_by=login_by,
        spool=spool,
    )
    stream = _watch(_heartbeat(mapped, beat, counted), planned, seen)
    plan = make_plan(stream, bindings, options, portal_listing, owners=owners, spool=spool)
    planned.settled.update(k for k in failing if k not in seen and k not in bound_failing)
    if plan.create:
        existing: dict[str, PortalAccount] = {}
        for logins in plan.create.login_batches(LOGINS_ASKED):
            existing.update(services.portal.find_by_logins(logins))
        plan = resolve_creates(
            plan,
            existing,
            adopt_existing=config.portal.adopt_existing,
            portal_fields=services.portal.stored_fields,
        )
    planned.plan = plan
    return planned


def _owners(store: StateStore, index: BindingIndex, options: PlanOptions, login_by: str) -> Owners:
    """How the plan finds who holds a login (``make_plan``'s ``owners``) in a light cycle.

    E-mail logins are stored as compared (lower-case), so the store looks them up exactly,
    by index. Symbol logins compare ignoring case and a ``*_ci`` portal ignores accents too
    (``Claims.same``): no index answers that on every backend, so those setups read every
    binding once, when a mapped contractor wants a login (memory grows with N there)."""
    if not index:
        return _nobody  # a first sync: no binding holds any login
    if login_by == "email" and not options.fold_logins:
        return store.bindings_with_logins
    everyone: dict[str, Binding] = {}

    def every_binding(logins: Collection[str]) -> dict[str, Binding]:
        # Asked once per batch of new logins: read the bindings once, not each time.
        if not everyone:
            everyone.update(store.load_bindings())
        return everyone

    return every_binding


def _nobody(logins: Collection[str]) -> dict[str, Binding]:
    """No binding holds any login: the store has none (a first sync)."""
    return {}
