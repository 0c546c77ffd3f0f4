"""A light cycle maps only the contractors whose raw ERP row changed since it was applied."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from decimal import Decimal
from pathlib import Path

import pytest
import sqlalchemy as sa

from syncd.clock import utcnow
from syncd.cycle import CycleRequest, map_changed, run_cycle
from syncd.model import DesiredAccount, SourceContractor, Unchanged
from syncd.wiring import Services, make_portal, open_store
from tests.support import ListSource, write_config

ERP = [
    SourceContractor("1", "K1", "Alfa", email_raw=" Alfa@X.pl ", discount=Decimal(5)),
    SourceContractor("2", "K2", "Beta", email_raw="beta@x.pl", tax_id="PL 526-000-12-46"),
]


@pytest.fixture
def services(tmp_path: Path) -> Iterator[Services]:
    config = write_config(tmp_path)
    store = open_store(config)
    portal = make_portal(config)
    try:
        yield Services(config, store, ListSource(list(ERP)), portal, utcnow)
    finally:
        portal.close()
        store.close()


def _mapped(services: Services, *, full: bool = False) -> list[object]:
    bindings = services.store.load_bindings()
    return list(map_changed(services.source.contractors(), bindings, full=full))


def test_only_changed_rows_are_mapped_again(services: Services) -> None:
    """After a sync every row is Unchanged; an edited row alone is mapped again."""
    assert run_cycle(services, CycleRequest()).exit_code == 0
    assert all(isinstance(item, Unchanged) for item in _mapped(services))
    source = services.source
    assert isinstance(source, ListSource)
    source.contractors_list[0] = replace(ERP[0], discount=Decimal("7.5"))
    kinds = {item.key: type(item) for item in _mapped(services)}  # type: ignore[attr-defined]
    assert kinds == {"1": DesiredAccount, "2": Unchanged}
    assert all(isinstance(item, DesiredAccount) for item in _mapped(services, full=True))


def test_bindings_from_before_the_fingerprint_are_filled_without_portal_writes(
    services: Services,
) -> None:
    """An upgraded store (no raw fingerprints) fills them in one cycle, touching no account."""
    assert run_cycle(services, CycleRequest()).exit_code == 0
    with services.store.engine.begin() as conn:
        conn.execute(sa.text("UPDATE syncd_binding SET source_fingerprint = NULL"))
    portal_engine = services.portal._engine  # type: ignore[attr-defined]
    writes: list[str] = []

    def count(conn: object, cursor: object, statement: str, *args: object) -> None:
        if statement.lstrip().upper().startswith(("INSERT", "UPDATE", "DELETE")):
            writes.append(statement)

    sa.event.listen(portal_engine, "before_cursor_execute", count)
    try:
        refreshed = run_cycle(services, CycleRequest())
    finally:
        sa.event.remove(portal_engine, "before_cursor_execute", count)
    assert refreshed.exit_code == 0
    assert refreshed.plan is not None
    assert len(refreshed.plan.refresh) == 2
    assert refreshed.as_json()["unchanged"] == 2  # the accounts themselves did not change
    assert refreshed.plan.is_empty is False
    assert writes == []
    assert all(isinstance(item, Unchanged) for item in _mapped(services))
