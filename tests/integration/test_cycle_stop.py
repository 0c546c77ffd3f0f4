"""A cycle asked to stop (the daemon's SIGTERM) stops at a safe point and says so."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from connectors.base import OpOutcome, Portal, PortalOp
from syncd.clock import utcnow
from syncd.cycle import CycleRequest, run_cycle
from syncd.lease import Lease
from syncd.model import SourceContractor
from syncd.wiring import Services, make_portal, open_store
from tests.support import ListSource, write_config


class StopAfterFirstBatch:
    """The real SQL portal, with a stop request arriving while its first batch is applied."""

    def __init__(self, portal: Portal, stop: threading.Event) -> None:
        self.portal, self.stop = portal, stop

    def apply(self, ops: Sequence[PortalOp]) -> list[OpOutcome]:
        self.stop.set()
        return self.portal.apply(ops)

    def __getattr__(self, name: str) -> object:
        return getattr(self.portal, name)


def erp(count: int) -> list[SourceContractor]:
    return [
        SourceContractor(key=str(n), symbol=f"K{n}", name=f"Firma {n}", email_raw=f"k{n}@x.pl")
        for n in range(1, count + 1)
    ]


@pytest.fixture
def services(tmp_path: Path) -> Iterator[Services]:
    """SQLite state store and SQL portal, with an in-memory ERP."""
    config = write_config(tmp_path)
    store, portal = open_store(config), make_portal(config)
    yield Services(config, store, ListSource(), portal, utcnow)
    portal.close()
    store.close()


def test_stop_during_apply_commits_the_batch_in_hand_and_no_more(services: Services) -> None:
    """Stop requested during the first of three batches: that batch is applied and recorded
    in full, the rest is left for the next cycle, which finishes the job."""
    services.source.contractors_list = erp(1200)  # type: ignore[attr-defined]
    stop = threading.Event()
    stopping = Services(
        services.config, services.store, services.source,
        StopAfterFirstBatch(services.portal, stop), services.clock,  # type: ignore[arg-type]
    )  # fmt: skip
    result = run_cycle(stopping, CycleRequest(stop=stop))
    assert result.interrupted
    assert len(services.store.load_bindings()) == 500
    assert services.store.last_runs(1)[0].status == "interrupted"
    again = run_cycle(services, CycleRequest())
    assert not again.interrupted
    assert again.plan is not None
    assert again.plan.counts()["create"] == 700
    assert len(services.store.load_bindings()) == 1200


def test_stop_while_reading_applies_nothing(services: Services) -> None:
    """Stop already requested: the read gives up at its next 5,000-row heartbeat and the
    cycle applies nothing, records itself as interrupted and releases the lease."""
    services.source.contractors_list = erp(5001)  # type: ignore[attr-defined]
    stop = threading.Event()
    stop.set()
    result = run_cycle(services, CycleRequest(stop=stop))
    assert result.interrupted
    assert result.plan is None
    assert services.store.load_bindings() == {}
    assert services.store.last_runs(1)[0].status == "interrupted"
    assert Lease(services.store).holder() is None
