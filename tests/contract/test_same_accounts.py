"""One ERP, three shapes: the same contractors held in a Subiekt GT, a Subiekt nexo and a
plain SQL database end in the same portal accounts, field for field."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from connectors import SOURCES
from connectors.sql_portal.schema import account, contact
from tests.contract.sources import CONTRACTORS, IN_SCOPE
from tests.gt_env import run_main
from tests.support import write_config

KINDS = ("subiekt_gt", "subiekt_nexo", "sql")
# What a portal row is once syncd's own bookkeeping (ids, times, hashes) is left out.
_SKIP = {"id", "created_at", "updated_at", "password_hash", "account_id"}


def _sync(kind: str, erp_url: str, directory: Path) -> dict[str, Any]:
    """Write CONTRACTORS into a fake ERP of ``kind``, run `syncd sync` twice, read the portal."""
    fake = SOURCES[kind].load_fake()(erp_url)
    fake.create()
    fake.add(CONTRACTORS)
    section = fake.source_config("b2b")
    fake.close()
    directory.mkdir()
    config = write_config(directory, source=section)
    assert config.path is not None
    assert run_main(["--config", str(config.path), "sync"]) == 0
    assert run_main(["--config", str(config.path), "sync"]) == 0  # the second finds nothing
    engine = sa.create_engine(f"sqlite:///{directory}/portal.db")
    with engine.connect() as conn:
        accounts = {
            row.contractor_key: {k: v for k, v in row._mapping.items() if k not in _SKIP}
            for row in conn.execute(sa.select(account))
        }
        ids = {row.id: row.contractor_key for row in conn.execute(sa.select(account))}
        for row in conn.execute(sa.select(contact).order_by(contact.c.id)):
            person = {k: v for k, v in row._mapping.items() if k not in _SKIP}
            accounts[ids[row.account_id]].setdefault("contacts", []).append(person)
    engine.dispose()
    return accounts


@pytest.mark.parametrize(
    "backend",
    ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)],
)
def test_gt_nexo_and_plain_sql_end_in_the_same_accounts(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """The three source kinds, fed the same contractors, give identical portal accounts."""
    portals = {}
    for kind in KINDS:
        if backend == "sqlite":
            url = f"sqlite:///{tmp_path}/{kind}-erp.db"
        else:
            url = str(request.getfixturevalue("pg_url"))
            admin = sa.create_engine(url)
            with admin.begin() as conn:  # one database, emptied for each kind
                conn.exec_driver_sql("DROP SCHEMA public CASCADE; CREATE SCHEMA public")
            admin.dispose()
        portals[kind] = _sync(kind, url, tmp_path / kind)
    gt = portals["subiekt_gt"]
    assert sorted(gt) == sorted(k for k in IN_SCOPE if k != "6")  # 6 has no e-mail: a conflict
    assert gt["1"]["login"] == "biuro@zuraw.pl"
    assert [c["name"] for c in gt["1"]["contacts"]] == ["Adam Ąbel", "faktury@zuraw.pl",
                                                        "Zofia Łęcka"]  # fmt: skip
    assert portals["subiekt_nexo"] == gt
    assert portals["sql"] == gt
