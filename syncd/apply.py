"""Apply a plan: portal writes first, then syncd's bookkeeping, batch by batch.

For each batch the portal connector applies the operations (one transaction per batch,
one-by-one on error), then the state store records, in ONE transaction, the new bindings,
an audit row per action and the mails the actions cause. The two databases cannot share a
transaction, so the order is chosen to make a crash between them harmless: a portal write
whose bookkeeping was lost is found again on the next cycle (the portal account carries the
contractor key, and ``resolve_creates`` binds it again), never duplicated, and its mail is
enqueued then. No mail is ever enqueued for a portal write that did not happen.

Two faults are handled here, where the portal's answers arrive. A record the portal refuses
gets a backoff row in the same transaction (``syncd.backoff``), and a success clears it;
but when most writes of a cycle fail, the portal is at fault: the cycle stops as one portal
failure and no record is blamed. An update whose account is gone from the portal (deleted
by hand) is repaired at once by creating the account again, as a full reconcile would.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

import structlog

from connectors.base import OpOutcome, Portal
from syncd._plan_items import Plan
from syncd._steps import ApplySettings, ItemRef, Step, StepBuilder, step_batches
from syncd.backoff import portal_failing
from syncd.errors import AccountGone, PortalUnavailable, RecordError
from syncd.store import AuditEntry, Binding, MailEntry, RecordFailure, StateStore

__all__ = ["ApplyReport", "ApplySettings", "apply_plan"]

log = structlog.get_logger(__name__)


@dataclass(slots=True)
class ApplyReport:
    """What applying a plan did, in a size that does not grow with its successes.

    A first sync of 100,000 contractors succeeds 100,000 times, and an entry per item (a
    tuple and a dict slot: 108 bytes, 10 MiB at 100,000) was the largest thing a cycle
    still held per contractor at its end. So successes are counted per action, and only
    failures are kept item by item, with their error. Without an interruption every item
    gets an outcome, so one that did not fail was applied; after one (a stop between
    batches) only a list of the applied items tells them from those left for the next
    cycle. ``applied`` is that list (42 bytes an item), kept only when the caller asks
    (``apply_plan(itemise=True)``: ``syncd sync`` prints every item's result).
    """

    ok: dict[str, int] = field(default_factory=dict)  # action (plan list) -> items applied
    errors: dict[ItemRef, str] = field(default_factory=dict)  # the failed items, each's error
    # The applied items' keys by action, when asked for (``itemise``): the key strings are
    # the plan's own, so each costs a set slot, not a tuple as well.
    applied: dict[str, set[str]] | None = None
    interrupted: bool = False  # stopped between batches; the rest is left for the next cycle
    attempted: int = 0  # portal writes sent
    refused: int = 0  # of those, refused by the portal (a RecordError)
    first_refusal: str | None = None
    quarantined: list[str] = field(default_factory=list)  # keys quarantined by this cycle
    recreated: list[str] = field(default_factory=list)  # keys whose lost account came back

    @property
    def failed(self) -> int:
        return len(self.errors)

    @property
    def done(self) -> int:
        """Items with an outcome, applied or failed."""
        return sum(self.ok.values()) + len(self.errors)

    def result(self, ref: ItemRef) -> str:
        """``"ok"``, the error, or ``"not applied"`` (left for the next cycle by an
        interruption); ``"not known"`` for an item that did not fail in an interrupted
        report that was not itemised."""
        error = self.errors.get(ref)
        if error is not None:
            return error
        if self.applied is not None:
            return "ok" if ref[1] in self.applied.get(ref[0], ()) else "not applied"
        return "not known" if self.interrupted else "ok"

    def record_ok(self, ref: ItemRef) -> None:
        """Count one applied item; list it too only when itemised (see the class)."""
        self.ok[ref[0]] = self.ok.get(ref[0], 0) + 1
        if self.applied is not None:
            self.applied.setdefault(ref[0], set()).add(ref[1])


def apply_plan(
    plan: Plan,
    *,
    portal: Portal,
    store: StateStore,
    bindings: dict[str, Binding],
    settings: ApplySettings,
    now: Callable[[], datetime],
    failing: Mapping[str, RecordFailure] | None = None,
    heartbeat: Callable[[], None] = lambda: None,
    stop: Callable[[], bool] = lambda: False,
    done: Callable[[int], None] = lambda contractors: None,
    itemise: bool = False,
) -> ApplyReport:
    """Apply ``plan``; returns what became of its items. Raises ``PortalUnavailable`` after
    recording what was applied when the portal fails part-way, or refuses most records
    (``backoff.portal_failing``). ``failing`` are the backoff rows read at the cycle's start.
    ``bindings`` must hold the binding of every key of the plan that has one (it need not
    hold the others): a key missing from it is taken as new.

    ``stop`` is asked before each batch: once it says yes (SIGTERM), the batches already
    committed stand and the rest is left unapplied, to be planned again by the next cycle.
    Nothing is ever half-applied, because a batch is the unit of bookkeeping. ``done``
    hears how many contractors each committed batch covered (a progress bar). ``itemise``
    keeps every applied item in ``ApplyReport.applied`` (per-item output), not only counts."""
    report = ApplyReport(applied={} if itemise else None)
    for batch in step_batches(plan, bindings, settings):
        chunk = batch
        if stop():
            report.interrupted = True
            log.warning("apply.interrupted", applied=report.done)
            break
        ops = [step.op for step in chunk if step.op is not None]
        outcomes: dict[int, OpOutcome] = {}
        if ops:
            for outcome in portal.apply(ops):
                outcomes[id(outcome.op)] = outcome
            chunk = _recreate_lost(
                chunk, outcomes, portal=portal, bindings=bindings, settings=settings, report=report
            )
        _count(chunk, outcomes, report)
        blame = not portal_failing(report.attempted, report.refused)
        unavailable = _record(
            chunk,
            outcomes,
            store=store,
            bindings=bindings,
            settings=settings,
            report=report,
            now=now(),
            failing=failing or {},
            blame=blame,
        )
        if not blame:
            raise PortalUnavailable(_portal_failing_message(report))
        if unavailable is not None:
            raise unavailable
        heartbeat()
        done(len(chunk))
    return report


def _portal_failing_message(report: ApplyReport) -> str:
    return (
        f"the portal refused {report.refused} of the {report.attempted} records this cycle "
        f"sent it (the first: {report.first_refusal}); that many refusals point at the portal "
        "(its schema, its rules, the account syncd writes with), not at the records: check "
        "the portal; no record was marked failed, and the next cycle tries them all again"
    )


def _gone(step: Step, outcomes: Mapping[int, OpOutcome]) -> bool:
    outcome = outcomes.get(id(step.op)) if step.op is not None else None
    return outcome is not None and isinstance(outcome.error, AccountGone)


def _recreate_lost(
    chunk: list[Step],
    outcomes: dict[int, OpOutcome],
    *,
    portal: Portal,
    bindings: dict[str, Binding],
    settings: ApplySettings,
    report: ApplyReport,
) -> list[Step]:
    """Create again, in this same cycle, the accounts an update found gone from the portal.

    The new step is the full reconcile's (``Create(desired, replaces=...)``): a new account
    with the ERP's values, a support block kept, one activation mail. A deactivation that
    finds its account gone is done already.
    """
    lost = [s for s in chunk if _gone(s, outcomes) and s.recreate is not None]
    for step in chunk:
        if step.gone_is_done and _gone(step, outcomes):
            assert step.op is not None
            outcomes[id(step.op)] = OpOutcome(step.op, account_id=step.account_id)
    if not lost:
        return chunk
    builder = StepBuilder(bindings, settings)
    for step in lost:
        assert step.recreate is not None
        builder.create(step.recreate)
        builder.steps[step.key].refs = step.refs  # the plan's items report the repair
    ops = [step.op for step in builder.steps.values() if step.op is not None]
    try:
        answers = portal.apply(ops)
    except PortalUnavailable as error:  # what the first apply did must still be recorded
        answers = [OpOutcome(op, error=error) for op in ops]
    for outcome in answers:
        outcomes[id(outcome.op)] = outcome
    for step in lost:
        log.info("drift.recreated", contractor=step.key, lost_account_id=step.account_id)
        report.recreated.append(step.key)
    return [builder.steps.get(s.key, s) if s in lost else s for s in chunk]


def _count(chunk: Sequence[Step], outcomes: Mapping[int, OpOutcome], report: ApplyReport) -> None:
    for step in chunk:
        outcome = outcomes.get(id(step.op)) if step.op is not None else None
        if outcome is None:
            continue
        report.attempted += 1
        if isinstance(outcome.error, RecordError):
            report.refused += 1
            report.first_refusal = report.first_refusal or str(outcome.error)


def _record(
    chunk: Sequence[Step],
    outcomes: dict[int, OpOutcome],
    *,
    store: StateStore,
    bindings: Mapping[str, Binding],
    settings: ApplySettings,
    report: ApplyReport,
    now: datetime,
    failing: Mapping[str, RecordFailure],
    blame: bool,
) -> PortalUnavailable | None:
    """Write one batch's bookkeeping in one transaction; return the portal outage, if any.

    ``bindings`` has the binding of every key in the plan that has one, so a key missing
    from it gets its binding by a plain INSERT.

    A refused record gets its audit entry, a log line and a backoff row, unless ``blame``
    is False (the portal itself is failing): then only the successes are written."""
    failures: list[RecordFailure] = []
    settled: list[str] = []
    upserts: list[Binding] = []
    inserts: list[Binding] = []  # keys without a binding: a plain INSERT is enough
    deletes: list[str] = []
    audits: list[AuditEntry] = []
    mails: list[MailEntry] = []
    cancels: list[str] = []
    unavailable: PortalUnavailable | None = None
    for step in chunk:
        outcome = outcomes.get(id(step.op)) if step.op is not None else None
        if outcome is not None and not outcome.ok:
            error = outcome.error
            if isinstance(error, PortalUnavailable):
                unavailable = unavailable or error
            message = str(error)
            for ref in step.refs:
                report.errors[ref] = message
            if not blame:
                continue
            if isinstance(error, RecordError):
                failures.append(
                    _failure(
                        step, message, failing=failing, settings=settings, now=now, report=report
                    )
                )
            for action, detail, _ in step.audits:
                audits.append(
                    AuditEntry(step.key, step.login, action, "error", {**detail, "error": message})
                )
            log.warning("record.failed", contractor=step.key, login=step.login, error=message)
            continue
        account_id = outcome.account_id if outcome and outcome.account_id else step.account_id
        if step.delete_binding:
            deletes.append(step.key)
        elif step.binding is not None:
            (upserts if step.key in bindings else inserts).append(step.binding(account_id))
        if step.cancel_mail:
            cancels.append(step.key)
        for action, detail, encoded in step.audits:
            audits.append(
                AuditEntry(step.key, step.login, action, "ok", detail, settings.actor, encoded)
            )
        for template, recipient, context in step.mails:
            mails.append(
                MailEntry(
                    key=step.key,
                    account_id=account_id,
                    recipient=recipient,
                    template=template,
                    not_before=now + settings.send_delay,
                    context=context,
                    language=settings.language,
                )
            )
        for ref in step.refs:
            report.record_ok(ref)
        if step.key in failing:
            settled.append(step.key)
    if upserts or inserts or deletes or audits or mails or cancels or failures or settled:
        store.commit_batch(
            upserts=upserts,
            inserts=inserts,
            deletes=deletes,
            audits=audits,
            mails=mails,
            cancel_mail_for=cancels,
            failures=failures,
            settled=settled,
            run_id=settings.run_id,
        )
    return unavailable


def _failure(
    step: Step,
    message: str,
    *,
    failing: Mapping[str, RecordFailure],
    settings: ApplySettings,
    now: datetime,
    report: ApplyReport,
) -> RecordFailure:
    """The step's backoff row after this failure; says so once when it enters quarantine."""
    previous = failing.get(step.key)
    row = settings.backoff.after_failure(
        previous,
        key=step.key,
        login=step.login,
        action="+".join(kind for kind, _ in step.refs),
        error=message,
        fingerprint=step.fingerprint,
        now=now,
    )
    if row.quarantined and not (previous and previous.quarantined):
        report.quarantined.append(step.key)
        log.warning(
            "record.quarantined",
            contractor=step.key,
            login=step.login,
            failures=row.failures,
            error=message,
            detail="not sent again until its ERP row changes or `syncd sync --contractor` asks",
        )
    return row
