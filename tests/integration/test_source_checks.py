"""What `doctor` and `check-config --online` say about a source that does not fit its config."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from connectors.sql_source.fake import PlainSqlFake
from connectors.subiekt_nexo.config import NexoTables
from connectors.subiekt_nexo.fake import NexoFake
from tests.contract.sources import CONTRACTORS
from tests.gt_env import run_main
from tests.support import write_config


def test_nexo_link_table_elsewhere_fails_doctor_and_discover_finds_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """doctor names the missing feature link table (exit 2); --discover lists the real one."""
    url = f"sqlite:///{tmp_path}/nexo.db"
    fake = NexoFake(url, tables=NexoTables(feature_link="CechyKontrahentow"))
    fake.create()
    fake.add(CONTRACTORS)
    fake.close()
    source = {"kind": "subiekt_nexo", "url": url, "feature": "b2b", "schema": None}
    config = write_config(tmp_path, source=source)
    argv = ["--config", str(config.path), "doctor"]
    assert run_main(argv) == 2
    out = capsys.readouterr().out
    assert "source.tables.feature_link" in out
    assert "CechyPodmiotowPodmiot" in out
    assert "doctor --discover" in out
    assert run_main([*argv, "--discover", "--json"]) == 2
    document = json.loads(capsys.readouterr().out)
    links = [c["table"] for c in document["candidates"] if c["setting"].endswith("feature_link")]
    assert "CechyKontrahentow" in links


def _sql_source(tmp_path: Path, query: str) -> Path:
    url = f"sqlite:///{tmp_path}/erp.db"
    fake = PlainSqlFake(url)
    fake.create()
    fake.add(CONTRACTORS)
    fake.close()
    config = write_config(tmp_path, source={"kind": "sql", "url": url, "query": query})
    assert config.path is not None
    return config.path


def test_sql_misspelt_alias_fails_check_config_online_naming_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A misspelt alias passes the offline check but fails --online with exit 2, named."""
    path = _sql_source(
        tmp_path, 'SELECT id AS "key", code AS symbol, name AS name, email AS emial FROM customers'
    )
    assert run_main(["--config", str(path), "check-config"]) == 0
    assert run_main(["--config", str(path), "check-config", "--online"]) == 2
    err = capsys.readouterr().err
    assert "emial" in err
    assert 'did you mean "email"' in err
    assert "Traceback" not in err


def test_sql_broken_query_fails_check_config_online_naming_the_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A query the database refuses is exit 2 with the line it points at, never a traceback."""
    query = 'SELECT id AS "key",\n  code AS symbol,\n  name AS name\nFROM customerz\n'
    path = _sql_source(tmp_path, query)
    assert run_main(["--config", str(path), "check-config", "--online"]) == 2
    err = capsys.readouterr().err
    assert "source.query" in err
    assert "line 4" in err
    assert "Traceback" not in err
