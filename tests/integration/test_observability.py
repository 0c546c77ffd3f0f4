"""/metrics and /healthz over real HTTP, the metrics a cycle feeds, and the daemon lease."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from syncd.apply import ApplyReport
from syncd.cycle import CycleResult
from syncd.daemon.http import HttpEndpoint
from syncd.daemon.leadership import Leadership, lease_ttl
from syncd.daemon.metrics import Metrics
from syncd.store import StateStore


def get(port: int, path: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as reply:
            return reply.status, reply.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


class Health:
    """A health function the test flips, or makes fail like an unreachable store."""

    def __init__(self) -> None:
        self.verdict: tuple[bool, str] | None = (True, "fine")

    def __call__(self) -> tuple[bool, str]:
        if self.verdict is None:
            raise OSError("connection refused")
        return self.verdict


@pytest.fixture
def served() -> Iterator[tuple[HttpEndpoint, Metrics, Health]]:
    """An endpoint on a free loopback port (closed afterwards)."""
    metrics, health = Metrics(), Health()
    endpoint = HttpEndpoint("127.0.0.1", 0, metrics=metrics.render, health=health)
    yield endpoint, metrics, health
    endpoint.close()


def test_healthz_is_200_or_503_with_the_reason(
    served: tuple[HttpEndpoint, Metrics, Health],
) -> None:
    """/healthz answers 200 when healthy, 503 with the reason when not or when the health
    check itself fails; other paths are 404."""
    endpoint, _, health = served
    assert get(endpoint.port, "/healthz") == (200, b'{"healthy": true, "health": "fine"}')
    health.verdict = (False, "the last cycle ended unavailable")
    code, body = get(endpoint.port, "/healthz")
    assert (code, json.loads(body)["health"]) == (503, "the last cycle ended unavailable")
    health.verdict = None
    code, body = get(endpoint.port, "/healthz")
    assert code == 503
    assert "connection refused" in json.loads(body)["health"]
    assert get(endpoint.port, "/nope")[0] == 404


def test_metrics_count_cycles_records_and_mail(
    served: tuple[HttpEndpoint, Metrics, Health],
) -> None:
    """A cycle's duration, its records by action and result, and mail runs show in /metrics."""
    endpoint, metrics, _ = served
    report = ApplyReport(ok={"create": 1, "update": 1}, errors={("create", "2"): "login taken"})
    result = CycleResult("r1", report=report, duration_s=0.3)
    metrics.observe_cycle(result, kind="sync", status="failed", now=1_700_000_000)
    metrics.observe_cycle(CycleResult("r2", duration_s=0.1), kind="full", status="ok", now=1.8e9)
    metrics.observe_mail(sent=3, failed=1)
    code, body = get(endpoint.port, "/metrics")
    text = body.decode()
    assert code == 200
    assert 'syncd_records_total{action="create",result="ok"} 1.0' in text
    assert 'syncd_records_total{action="create",result="failed"} 1.0' in text
    assert 'syncd_cycles_total{kind="sync",status="failed"} 1.0' in text
    assert 'syncd_cycle_duration_seconds_count{kind="full"} 1.0' in text
    assert 'syncd_mail_total{result="sent"} 3.0' in text
    assert "syncd_last_success_timestamp_seconds 1.8e+09" in text


class Clock:
    """A settable clock shared by two daemons' stores."""

    def __init__(self) -> None:
        self.now = datetime(2026, 1, 1, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def two_stores(tmp_path: Path) -> Iterator[tuple[StateStore, StateStore, Clock]]:
    """Two StateStore objects on one SQLite file: what two daemons see."""
    clock = Clock()
    url = f"sqlite:///{tmp_path}/state.db"
    first, second = StateStore.open(url, clock=clock), StateStore.open(url, clock=clock)
    first.migrate()
    yield first, second, clock
    first.close()
    second.close()


def test_one_daemon_leads_the_other_takes_over_when_its_lease_lapses(
    two_stores: tuple[StateStore, StateStore, Clock],
) -> None:
    """The first daemon leads; the second stays standby while renewals go on, takes over
    once they stop for a ttl, and the first then steps down at its next renewal."""
    first_store, second_store, clock = two_stores
    ttl = lease_ttl(timedelta(seconds=30))
    first, second = Leadership(first_store, ttl), Leadership(second_store, ttl)
    assert first.try_lead()
    assert not second.try_lead()
    assert second.active() == first.owner
    clock.now += ttl * 0.9
    first.renew()
    clock.now += ttl * 0.9
    assert not second.try_lead(), "renewed in time: still the first one's"
    clock.now += ttl + timedelta(seconds=1)  # the first one died: no renewals
    assert second.try_lead()
    first.renew()
    assert not first.leading
    second.resign()
    assert first.try_lead(), "a resigned lead is free at once"


def test_lease_ttl_is_one_interval_with_a_floor() -> None:
    """The daemon lease lives one interval (a standby takes over within two), at least 2 s."""
    assert lease_ttl(timedelta(minutes=5)) == timedelta(minutes=5)
    assert lease_ttl(timedelta(seconds=1)) == timedelta(seconds=2)
