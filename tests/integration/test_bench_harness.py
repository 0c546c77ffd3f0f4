"""`make bench`'s harness runs end to end at a tiny N, and its invariant checks catch breakage.

No timing is asserted (figures belong to `make bench`): only that every phase ran, planned
what the fixture expects, and that a figure broken on purpose is reported as broken.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from tests.bench import bench_cycle
from tests.bench._report import check_invariants


@pytest.mark.usefixtures("quick_bcrypt")
def test_bench_quick_path_runs_and_its_invariant_checks_fire(tmp_path: Path) -> None:
    """The harness's quick path runs at N=500 on SQLite with every invariant holding, and
    a no-op cycle that writes, an ERP read that grows with N and a wrong plan are caught."""
    out = tmp_path / "bench.json"
    code = bench_cycle.main(
        [
            "--quick", "--contractors", "500", "--password-mails", "2", "--notice-mails", "10",
            "--daemon-contractors", "500", "--daemon-cycles", "3", "--start-runs", "1",
            "--in-process", "--json", str(out),
        ]
    )  # fmt: skip
    doc = json.loads(out.read_text(encoding="utf-8"))
    assert code == 0, doc["invariants_broken"]
    assert doc["invariants_broken"] == []
    sqlite = doc["cycles"]["sqlite"]
    assert sorted(sqlite) == ["1000", "500"]
    assert set(sqlite["500"]["phases"]) == {"raw read", "first sync", "no-op cycle",
                                            "1% change cycle"}  # fmt: skip
    assert sqlite["500"]["phases"]["raw read"]["rows"][0] == sqlite["500"]["facts"]["in_scope"]
    assert doc["mail"]["sqlite"]["smtp_accepted"] == 12
    assert doc["daemon"]["cycles"] == 3
    assert {row["verdict"] for row in doc["goals"]} <= {"PASS", "MISS"}

    broken = copy.deepcopy(doc)
    noop = broken["cycles"]["sqlite"]["1000"]["phases"]["no-op cycle"]["statements"]
    noop["portal"]["writes"] = 1
    noop["portal"]["tables"] = {"b2b_accounts": 1}
    noop["store"]["tables"]["syncd_binding"] = 3
    broken["cycles"]["sqlite"]["1000"]["phases"]["first sync"]["statements"]["erp"]["all"] += 1
    broken["cycles"]["sqlite"]["500"]["phases"]["1% change cycle"]["counts"]["update"] = 0
    problems = check_invariants(broken)
    assert len(problems) == 4, problems
    assert any("no-op cycle: the portal received writes" in p for p in problems)
    assert any("beyond its run record and lease: ['syncd_binding']" in p for p in problems)
    assert any("first sync: ERP statements grow with N" in p for p in problems)
    assert any("1% change cycle: planned" in p for p in problems)
