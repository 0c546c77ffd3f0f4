"""A sync spools the accounts it will create: the plan keeps nothing per create."""

from __future__ import annotations

import dataclasses
from decimal import Decimal

from syncd._binding_index import BindingIndex
from syncd._cycle_plan import Mapped, compare_records
from syncd._spool import Spool, Spooled
from syncd.mapping import login_key
from syncd.model import Contact, DesiredAccount, RawRecord, SourceContractor, Unchanged
from syncd.plan import Deferral, PlanOptions, make_plan, resolve_creates


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


def test_an_account_comes_back_whole_and_the_plan_reads_only_what_it_needs() -> None:
    """Every field (those left out of equality too) survives the spool; the plan reads key,
    login, symbol and NIP of it, and the raw digest only for a record in backoff."""
    spool = Spool(login_key, keep_digest={"7"})
    try:
        whole, other = _whole("7"), _whole("8")
        assert spool.put(whole) == Spooled("7", "k7@x.pl", "K7", "5260001246", "r2:abc")
        assert spool.put(other).source_fingerprint is None
        back = list(spool.accounts())
        for field in dataclasses.fields(DesiredAccount):
            assert getattr(back[0], field.name) == getattr(whole, field.name), field.name
        assert back[1] == other
        assert spool.count == 2
    finally:
        spool.close()


def _record(key: str, email: str) -> RawRecord:
    def build() -> SourceContractor:
        return SourceContractor(key, f"K{key}", f"Firma {key}", email_raw=email, phone="123")

    return RawRecord(key, f"r2:{key}", f"K{key}", None, build)


def _spooled(records: list[RawRecord], spool: Spool) -> list[Mapped]:
    """What a first sync's compare yields for ``records`` (no binding), spooling each."""
    return list(compare_records(records, BindingIndex(tuple), {}, dict, full=False, spool=spool))


def test_a_spooled_plan_creates_the_same_accounts_and_keeps_login_conflicts() -> None:
    """With a spool, creates are planned with nothing held per create and come back whole;
    two new contractors sharing an e-mail (in another case) are still both conflicts."""
    records = [_record("1", "a@x.pl"), _record("2", "b@x.pl"), _record("3", "B@x.pl")]
    spool = Spool(login_key)
    try:
        items = list(
            compare_records(records, BindingIndex(tuple), {}, dict, full=False, spool=spool)
        )
        assert all(isinstance(i, Spooled) for i in items)
        plan = make_plan(items, {}, PlanOptions(), spool=spool)
        plan = resolve_creates(plan, {}, adopt_existing=False)
        assert plan.create.held == []
        assert [c.desired.key for c in plan.create] == ["1"]
        assert len(plan.create) == 1
        assert sorted(c.key for c in plan.conflict) == ["2", "3"]
        assert "shares e-mail" in plan.conflict[0].reason
        full = next(iter(plan.create)).desired
        assert (full.key, full.login, full.phone) == ("1", "a@x.pl", "123")
        assert plan.as_json()["create"][0]["fields"]["phone"] == "123"
    finally:
        spool.close()


def test_a_spooled_create_whose_login_a_binding_holds_is_a_conflict() -> None:
    """A new contractor asking for a login bound to another contractor is found in the
    spool and becomes a conflict; the others stay creates."""

    class Owner:
        key, account_id, login, fingerprint = "9", "acc-9", "a@x.pl", "f"
        fields = {"symbol": "K9"}  # noqa: RUF012 - read only
        status, erp_blocked, support_block_reason = "active", False, None
        activated, source_fingerprint = True, "r2:9"

    records = [_record("1", "a@x.pl"), _record("2", "c@x.pl")]
    spool = Spool(login_key)
    try:
        items = list(
            compare_records(records, BindingIndex(tuple), {}, dict, full=False, spool=spool)
        )
        unchanged = Unchanged("9", "K9", None)
        plan = make_plan([*items, unchanged], {"9": Owner()}, PlanOptions(), spool=spool)
        assert [c.desired.key for c in plan.create] == ["2"]
        assert [c.key for c in plan.conflict] == ["1"]
        assert "already the login of contractor 9 (K9)" in plan.conflict[0].reason
    finally:
        spool.close()


def test_a_spooled_record_in_backoff_is_deferred_but_keeps_its_login() -> None:
    """A new account whose ERP row is the one the portal refused waits for its backoff;
    its login still counts, so another new contractor with the same e-mail is a conflict."""
    records = [_record("1", "a@x.pl"), _record("2", "a@x.pl"), _record("3", "c@x.pl")]
    deferral = Deferral(
        fingerprint="r2:1", failures=1, quarantined=False, retry_after=None, error="refused"
    )
    options = PlanOptions(deferred={"1": deferral})
    spool = Spool(login_key, keep_digest={"1"})
    try:
        items = list(
            compare_records(records, BindingIndex(tuple), {}, dict, full=False, spool=spool)
        )
        plan = make_plan(items, {}, options, spool=spool)
        assert [d.key for d in plan.deferred] == ["1"]
        assert [c.desired.key for c in plan.create] == ["3"]
        assert [c.key for c in plan.conflict] == ["2"]
    finally:
        spool.close()


def test_resolve_creates_adopts_a_spooled_account_the_portal_has() -> None:
    """A spooled create whose login the portal already has (unmanaged) is adopted and
    leaves the spool; the rest stay creates, in order."""

    class Existing:
        id, login, contractor_key, status, block_reason = "p-1", "b@x.pl", None, "active", None
        fields: dict[str, object] = {}  # noqa: RUF012 - read only

    records = [_record("1", "a@x.pl"), _record("2", "b@x.pl"), _record("3", "c@x.pl")]
    spool = Spool(login_key)
    try:
        items = list(
            compare_records(records, BindingIndex(tuple), {}, dict, full=False, spool=spool)
        )
        plan = make_plan(items, {}, PlanOptions(), spool=spool)
        assert list(plan.create.login_batches(2)) == [["a@x.pl", "b@x.pl"], ["c@x.pl"]]
        plan = resolve_creates(plan, {"b@x.pl": Existing()}, adopt_existing=True)
        assert [a.desired.key for a in plan.adopt] == ["2"]
        assert [c.desired.key for c in plan.create] == ["1", "3"]
        assert len(plan.create) == 2
    finally:
        spool.close()


def test_a_cycle_with_nothing_to_create_opens_no_database() -> None:
    """The spool's database is made by the first account put in it: a quiet cycle writes
    no disk."""
    spool = Spool(login_key)
    assert list(spool.accounts()) == []
    assert spool.duplicate_logins() == []
    assert spool._db is None
    spool.close()
    assert spool._db is None
