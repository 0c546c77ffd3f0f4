"""Prometheus metrics of the daemon: what each cycle and each mail run did, for /metrics.

Counters and histograms are fed by the daemon after every cycle and mail run; the gauges
that describe the state store (conflicts, mail queue, records in backoff or quarantine)
are refreshed from it after each cycle, so they are right even when the other instance of
a pair did the work. Each daemon has its own registry (not the process-global one), so
tests can run several side by side.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from syncd.cycle import CycleResult
from syncd.store import StateStore

# Light cycles take well under a second for a few hundred contractors; a full reconcile of
# 50,000 accounts a few minutes.
DURATION_BUCKETS = (0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800)


class Metrics:
    """The daemon's metrics, in their own registry."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.cycle_duration = Histogram(
            "syncd_cycle_duration_seconds",
            "How long cycles took, by kind (sync: light cycle, full: full reconcile).",
            ["kind"],
            buckets=DURATION_BUCKETS,
            registry=r,
        )
        self.cycles = Counter(
            "syncd_cycles", "Cycles run, by kind and outcome.", ["kind", "status"], registry=r
        )
        self.records = Counter(
            "syncd_records",
            "Records applied to the portal, by action and result (ok or failed).",
            ["action", "result"],
            registry=r,
        )
        self.conflicts = Gauge(
            "syncd_conflicts", "Contractors in conflict (something to fix in the ERP).", registry=r
        )
        self.failing_records = Gauge(
            "syncd_failing_records",
            "Records the portal refused, by state: retrying (in backoff) or quarantined "
            "(not sent again until the ERP row changes or support retries it).",
            ["state"],
            registry=r,
        )
        self.mail = Counter(
            "syncd_mail", "Mail handed to the transport, by result (sent, failed).", ["result"],
            registry=r,
        )  # fmt: skip
        self.mail_queue = Gauge(
            "syncd_mail_queue", "Outbox entries by status (pending is the queue).", ["status"],
            registry=r,
        )  # fmt: skip
        self.last_success = Gauge(
            "syncd_last_success_timestamp_seconds",
            "When this daemon's last successful cycle finished (Unix time).",
            registry=r,
        )
        self.leader = Gauge(
            "syncd_leader",
            "1 while this daemon is the active instance, 0 while it is a standby.",
            registry=r,
        )

    def observe_cycle(self, result: CycleResult, *, kind: str, status: str, now: float) -> None:
        """Count one finished cycle (not one that never got the lease)."""
        self.cycle_duration.labels(kind).observe(result.duration_s)
        self.cycles.labels(kind, status).inc()
        if result.report is not None:
            for action, count in result.report.ok.items():
                self.records.labels(action, "ok").inc(count)
            for action, _key in result.report.errors:
                self.records.labels(action, "failed").inc()
        if status in ("ok", "held"):
            self.last_success.set(now)

    def observe_mail(self, *, sent: int, failed: int) -> None:
        """Count one mail run's deliveries."""
        self.mail.labels("sent").inc(sent)
        self.mail.labels("failed").inc(failed)

    def refresh_store_gauges(self, store: StateStore) -> None:
        """Read the conflict count, the failing records and the outbox by status."""
        self.conflicts.set(len(store.conflicts()))
        for state, count in store.failure_counts().items():
            self.failing_records.labels(state).set(count)
        counts = store.mail_counts()
        for status in ("pending", "sent", "failed", "cancelled", *counts):
            self.mail_queue.labels(status).set(counts.get(status, 0))

    def render(self) -> bytes:
        """The text exposition format, for GET /metrics."""
        return generate_latest(self.registry)
