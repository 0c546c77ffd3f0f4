"""A sync spools the accounts it will create: the plan keeps slim copies, apply the whole."""

from __future__ import annotations

import dataclasses
from decimal import Decimal

from syncd._binding_index import BindingIndex
from syncd._cycle_plan import _attach, compare_records
from syncd._spool import Spool
from syncd.model import Contact, DesiredAccount, RawRecord, SourceContractor
from syncd.plan import PlanOptions, make_plan, resolve_creates


def _whole(key: str = "7") -> DesiredAccount:
    return DesiredAccount(
        key=key,
        login=f"k{key}@x.pl",
        symbol=f"K{key}",
        name="Zakład Żółć Sp. z o.o.",
        email=f"k{key}@x.pl",
        tax_id="5260001246",
        phone="+48 22 123 45 67",
        address="ul. Długa 5, 00-001 Warszawa",
        price_level="Hurtowa",
        discount=Decimal("12.50"),
        owner_name="Anna Nowak",
        owner_email="anna@x.pl",
        erp_blocked=True,
        contacts=(Contact("Ewa", "ewa@x.pl", "123", "Zakupy", True, True, False),),
        customer_group="Hurt",
        billing_email="faktury@x.pl",
        warnings=("a warning",),
        source_fingerprint="r2:abc",
    )


def test_an_account_comes_back_whole_and_the_plan_keeps_what_it_reads() -> None:
    """Every field (those left out of equality too) survives the spool; the slim copy keeps
    key, login, symbol, name, e-mail, NIP, ERP block and warnings, and the raw digest only
    for a record in backoff."""
    spool = Spool(keep_digest={"7"})
    try:
        whole, other = _whole("7"), _whole("8")
        slim = spool.put(whole)
        spool.put(other)
        back = spool.get(spool.offsets["7"])
        for field in dataclasses.fields(DesiredAccount):
            assert getattr(back, field.name) == getattr(whole, field.name), field.name
        assert spool.get(spool.offsets["8"]).source_fingerprint == "r2:abc"
        assert spool.put(_whole("9")).source_fingerprint is None
        assert (slim.key, slim.login, slim.symbol, slim.name, slim.email, slim.tax_id) == (
            "7", "k7@x.pl", "K7", whole.name, "k7@x.pl", "5260001246"
        )  # fmt: skip
        assert (slim.erp_blocked, slim.warnings, slim.source_fingerprint) == (
            True, ("a warning",), "r2:abc"
        )  # fmt: skip
        assert (slim.contacts, slim.address, slim.phone) == ((), None, None)
    finally:
        spool.close()


def _record(key: str, email: str) -> RawRecord:
    def build() -> SourceContractor:
        return SourceContractor(key, f"K{key}", f"Firma {key}", email_raw=email, phone="123")

    return RawRecord(key, f"r2:{key}", f"K{key}", None, build)


def test_a_spooled_plan_creates_the_same_accounts_and_keeps_login_conflicts() -> None:
    """With a spool, creates are planned from slim copies and ``full()`` gives each whole
    account back; two new contractors sharing an e-mail are still both conflicts."""
    records = [_record("1", "a@x.pl"), _record("2", "b@x.pl"), _record("3", "b@x.pl")]
    spool = Spool()
    try:
        items = list(
            compare_records(records, BindingIndex(tuple), {}, dict, full=False, spool=spool)
        )
        assert all(isinstance(i, DesiredAccount) and i.phone is None for i in items)
        plan = make_plan(items, {}, PlanOptions())
        _attach(plan.create, spool)
        plan = resolve_creates(plan, {}, adopt_existing=False)
        assert [c.desired.key for c in plan.create] == ["1"]
        assert sorted(c.key for c in plan.conflict) == ["2", "3"]
        full = plan.create[0].full()
        assert (full.key, full.login, full.phone) == ("1", "a@x.pl", "123")
        assert plan.as_json()["create"][0]["fields"]["phone"] == "123"
    finally:
        spool.close()


def test_a_cycle_with_nothing_to_create_opens_no_file() -> None:
    """The spool's file is made by the first account put in it: a quiet cycle writes no disk."""
    spool = Spool()
    assert spool._file is None
    spool.close()
    assert spool._file is None


def test_puts_after_a_get_are_read_back_whole() -> None:
    """A read moves the file's position; accounts written after it still come back whole."""
    spool = Spool()
    first = _whole("1")
    spool.put(first)
    assert spool.get(spool.offsets["1"]) == first
    second, third = _whole("2"), _whole("3")
    spool.put(second)
    spool.put(third)
    assert [spool.get(spool.offsets[k]) for k in ("3", "1", "2")] == [third, first, second]
    spool.close()
