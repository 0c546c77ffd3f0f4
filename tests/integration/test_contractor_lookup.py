"""K is the contractor id, its symbol or its login in every command; an unknown K says so."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.gt_env import GtEnv, gt_env


@pytest.fixture
def env(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Iterator[GtEnv]:
    """The GT environment on SQLite files, synced once."""
    with gt_env(tmp_path, capsys) as built:
        assert built.cli("sync").code == 0
        yield built


@pytest.mark.parametrize("ident", ["1", "K001", "biuro@zuraw.pl", " k001 "])
def test_plan_contractor_takes_an_id_a_symbol_or_a_login(env: GtEnv, ident: str) -> None:
    """plan --contractor plans exactly that contractor however it is named."""
    with env.edit() as w:
        w.set_price(1, 3)
        w.set_price(2, 3)
    document = env.cli("plan", "--json", "--contractor", ident.strip()).doc
    assert [item["key"] for item in document["update"]] == ["1"]


@pytest.mark.parametrize("command", [["plan"], ["sync"]])
def test_an_unknown_contractor_is_an_error_not_an_empty_plan(
    env: GtEnv, command: list[str]
) -> None:
    """An id, symbol or login nobody knows exits 2 and says what K may be."""
    outcome = env.cli(*command, "--contractor", "NO-SUCH")
    assert outcome.code == 2
    assert "neither the ERP nor syncd knows contractor 'NO-SUCH'" in outcome.err


def test_explain_takes_a_symbol_and_an_unknown_one_is_exit_2(env: GtEnv) -> None:
    """explain resolves a symbol to its contractor; an unknown K exits 2 with the reason."""
    assert env.cli("explain", "K001", "--json").doc["key"] == "1"
    unknown = env.cli("explain", "nobody@example.com")
    assert unknown.code == 2
    assert "neither the ERP nor syncd knows" in unknown.out
