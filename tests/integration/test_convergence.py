"""Invariants of the whole cycle on real SQLite databases, checked with hypothesis.

For random ERP states and random edits between cycles: after a sync, planning again
yields an empty plan (the portal and the bindings agree with the ERP), and the portal
holds one account per contractor that is in scope and free of conflicts (a contractor
that falls into a conflict keeps the account it had, untouched).
"""

from __future__ import annotations

import tempfile
from decimal import Decimal
from pathlib import Path

import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from syncd.clock import utcnow
from syncd.cycle import CycleRequest, run_cycle
from syncd.model import Contact, SourceContractor
from syncd.wiring import Services, make_portal, open_store
from tests.support import ListSource, write_config

EMAILS = ["a@x.pl", "B@x.pl", "c@x.pl", "d@x.pl", "", "not-an-email", "e@x.pl; f@x.pl"]

contacts = st.lists(
    st.builds(
        Contact,
        name=st.sampled_from(["Anna Nowak", "Jan Kowalski", "Łucja Żak"]),
        email=st.sampled_from([None, "anna@x.pl"]),
        is_primary=st.booleans(),
    ),
    max_size=2,
).map(tuple)


@st.composite
def erp_states(draw: st.DrawFn) -> list[SourceContractor]:
    keys = draw(st.lists(st.integers(1, 12), unique=True, max_size=8))
    return [
        SourceContractor(
            key=str(key),
            symbol=f"K{key:04d}",
            name=draw(st.sampled_from(["ACME Sp. z o.o.", "Żółw S.A.", "Jan Kowalski"])),
            email_raw=draw(st.sampled_from(EMAILS)),
            price_level=draw(st.sampled_from([None, "Hurtowa", "Detaliczna"])),
            discount=draw(st.sampled_from([Decimal(0), Decimal("5"), Decimal("12.5")])),
            owner_name=draw(st.sampled_from([None, "Ewa Wiśniewska"])),
            erp_blocked=draw(st.booleans()),
            contacts=draw(contacts),
        )
        for key in keys
    ]


def _sync(services: Services) -> None:
    result = run_cycle(services, CycleRequest())
    assert result.exit_code == 0, result.as_json()


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    states=st.lists(erp_states(), min_size=1, max_size=4),
    on_removed=st.sampled_from(["delete", "deactivate"]),
)
def test_any_sequence_of_erp_states_converges(
    states: list[list[SourceContractor]], on_removed: str
) -> None:
    """After each sync of a random ERP state, a new plan is empty and the portal matches."""
    with tempfile.TemporaryDirectory() as tmp:
        config = write_config(Path(tmp), portal={"on_removed": on_removed})
        source = ListSource()
        store = open_store(config)
        portal = make_portal(config)
        services = Services(config, store, source, portal, utcnow)
        try:
            for state in states:
                source.contractors_list = state
                _sync(services)
                again = run_cycle(services, CycleRequest(dry_run=True))
                assert again.plan is not None
                assert again.plan.is_empty, again.as_json()
                _assert_portal_matches(config.portal.url, again.plan.conflict, state, on_removed)
        finally:
            portal.close()
            store.close()


def _assert_portal_matches(
    url: str, conflicts: list[object], state: list[SourceContractor], on_removed: str
) -> None:
    conflicted = {c.key for c in conflicts}  # type: ignore[attr-defined]
    expected = {c.key for c in state} - conflicted
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(sa.text("SELECT contractor_key, status FROM b2b_account")).all()
    finally:
        engine.dispose()
    keys = [key for key, _ in rows]
    assert len(keys) == len(set(keys)), "one account per contractor"
    live = {key for key, status in rows if status != "inactive"}
    # A contractor that had an account and then fell into a conflict keeps it untouched.
    assert expected <= live <= expected | conflicted
    if on_removed == "delete":
        assert set(keys) <= expected | conflicted


def test_two_contractors_can_swap_e_mails_in_one_cycle(tmp_path: Path) -> None:
    """Swapping the e-mails of two contractors swaps their logins in a single cycle."""
    config = write_config(tmp_path)
    first = [
        SourceContractor("1", "K1", "Alfa", email_raw="a@x.pl"),
        SourceContractor("2", "K2", "Beta", email_raw="b@x.pl"),
    ]
    source = ListSource(first)
    store = open_store(config)
    portal = make_portal(config)
    services = Services(config, store, source, portal, utcnow)
    try:
        _sync(services)
        source.contractors_list = [
            SourceContractor("1", "K1", "Alfa", email_raw="b@x.pl"),
            SourceContractor("2", "K2", "Beta", email_raw="a@x.pl"),
        ]
        _sync(services)
        again = run_cycle(services, CycleRequest(dry_run=True))
        assert again.plan is not None
        assert again.plan.is_empty
        logins = {key: b.login for key, b in store.load_bindings().items()}
        assert logins == {"1": "b@x.pl", "2": "a@x.pl"}
    finally:
        portal.close()
        store.close()
