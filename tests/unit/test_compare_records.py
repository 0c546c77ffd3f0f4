"""Compare before building: only contractors whose raw rows changed are built and mapped."""

from __future__ import annotations

from collections.abc import Collection, Mapping

from syncd._binding_index import BindingIndex
from syncd._cycle_plan import compare_records
from syncd.model import DesiredAccount, RawRecord, SourceContractor, Unchanged
from syncd.plan import PlanOptions, make_plan
from syncd.store import INACTIVE, Binding


def _record(key: str, digest: str, built: list[str], email: str | None = None) -> RawRecord:
    def build() -> SourceContractor:
        built.append(key)
        return SourceContractor(key, f"K{key}", f"Firma {key}", email_raw=email or f"k{key}@x.pl")

    return RawRecord(key, digest, f"K{key}", None, build)


def _binding(key: str, login: str | None = None) -> Binding:
    return Binding(
        key=key,
        account_id=f"acc-{key}",
        login=login or f"k{key}@x.pl",
        fingerprint="0" * 64,
        fields_json=f'{{"symbol": "K{key}"}}',
        status="active",
        erp_blocked=False,
        support_block_reason=None,
        source_fingerprint="r2:old",
    )


class Store:
    """The bindings of keys 1 to 5, counting how often they are asked for."""

    def __init__(self) -> None:
        self.all = {str(k): _binding(str(k)) for k in range(1, 6)}
        self.loads: list[list[str]] = []

    def load(self, keys: Collection[str]) -> Mapping[str, Binding]:
        self.loads.append(sorted(keys))
        return {k: self.all[k] for k in keys if k in self.all}


def test_only_changed_rows_are_built_and_their_bindings_loaded() -> None:
    """Equal digests build nothing; a changed or new row is built; a vanished binding is
    loaded for its removal, an inactive one is not."""
    store = Store()
    entries = {"1": "r2:a", "2": "r2:b", "3": "r2:c", "4": "r2:d", "5": INACTIVE}
    index = BindingIndex(entries.items)
    built: list[str] = []
    records = [
        _record("1", "r2:a", built),
        _record("2", "r2:NEW", built),
        _record("9", "r2:z", built),
    ]
    bindings: dict[str, Binding] = {}
    items = list(compare_records(records, index, bindings, store.load, full=False))
    assert [type(i).__name__ for i in items] == ["Unchanged", "DesiredAccount", "DesiredAccount"]
    assert built == ["2", "9"]
    assert store.loads == [["2"], ["3", "4"]]
    assert sorted(bindings) == ["2", "3", "4"]
    assert index.managed == 4


def test_full_reconcile_builds_everything() -> None:
    """A full reconcile maps every row, even an unchanged one."""
    store = Store()
    built: list[str] = []
    bindings = dict(store.all)
    index = BindingIndex({"1": "r2:a"}.items)
    items = list(
        compare_records([_record("1", "r2:a", built)], index, bindings, store.load, full=True)
    )
    assert built == ["1"]
    assert isinstance(items[0], DesiredAccount)
    assert store.loads == []


def test_an_unchanged_contractor_keeps_its_login_against_a_changed_one() -> None:
    """With only the touched bindings given, the plan asks ``owners`` who holds a wanted
    login: a changed contractor asking for an unchanged one's login gets a conflict."""
    store = Store()
    built: list[str] = []
    index = BindingIndex({"1": "r2:a", "2": "r2:b"}.items)
    records = [_record("1", "r2:a", built), _record("2", "r2:NEW", built, email="k1@x.pl")]
    bindings: dict[str, Binding] = {}
    stream = compare_records(records, index, bindings, store.load, full=False)

    def owners(logins: Collection[str]) -> dict[str, Binding]:
        return {k: b for k, b in store.all.items() if b.login in logins}

    plan = make_plan(stream, bindings, PlanOptions(), owners=owners)
    assert plan.unchanged == 1
    assert not plan.update
    assert [(c.key, c.kind.value) for c in plan.conflict] == [("2", "login_taken")]
    assert not plan.remove


def test_unchanged_items_carry_the_nip_for_duplicate_warnings() -> None:
    """Two contractors with one NIP are reported even when neither changed."""
    items = [Unchanged("1", "K1", "PL 526-000-12-46"), Unchanged("2", "K2", "5260001246")]
    plan = make_plan(items, {}, PlanOptions(), owners=lambda logins: {})
    assert [d["keys"] for d in plan.duplicate_tax_ids] == [["1", "2"]]
