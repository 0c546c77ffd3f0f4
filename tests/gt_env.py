"""A Subiekt GT-shaped ERP with a handful of contractors, for the end-to-end CLI tests.

``GtEnv`` owns the three databases of one test (ERP, portal, state store), writes a config
pointing at them, runs ``syncd`` in-process through ``syncd.cli.main`` and hands out what a
test needs between cycles: a ``GtWriter`` to edit the ERP, the portal's rows, the state
store's rows, and a recorder of every statement that writes to a database.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
import structlog

from connectors.sql_portal.schema import account, contact
from connectors.subiekt_gt.fake import KIND_SUPPLIER, GtContact, GtWriter, create_gt_schema
from syncd.cli import main
from syncd.store.schema import metadata as store_metadata
from tests.support import write_config

# The contractors ``populate`` puts in scope, and how the portal must show them (spec 5).
IN_SCOPE = ("1", "2", "3", "6")
# How each in-scope contractor's feature is spelt in the ERP's dictionary (messy on purpose).
FEATURE_OF = {1: "b2b", 2: " B2B ", 3: "b2b", 6: "B2b"}
ERP_BLOCK_REASON = "Konto zablokowane w systemie ERP"
ZURAW = "Przedsiębiorstwo Handlowe „Żuraw” Sp. z o.o."
WRITES = ("INSERT", "UPDATE", "DELETE", "REPLACE", "MERGE", "CREATE", "ALTER", "DROP")


@dataclass(frozen=True, slots=True)
class Outcome:
    """One command's exit code and output; ``doc`` is stdout parsed as JSON, if it is."""

    code: int
    out: str
    err: str

    @property
    def doc(self) -> dict[str, Any]:
        parsed: dict[str, Any] = json.loads(self.out)
        return parsed


@dataclass(slots=True)
class Handles:
    """ERP row ids a test needs to edit the contractors ``populate`` wrote."""

    discounts: dict[str, int] = field(default_factory=dict)
    salespeople: dict[str, int] = field(default_factory=dict)
    contacts: dict[str, int] = field(default_factory=dict)


def populate(w: GtWriter, handles: Handles) -> None:
    """Six contractors: 1, 2, 3 and 6 in scope; 4 has another feature, 5 is a supplier."""
    w.set_price_names(["Detaliczna", "Hurtowa", "Dystrybutor"])
    handles.discounts["zuraw"] = w.add_discount("Żuraw indywidualny", Decimal("12.5"))
    handles.discounts["staly"] = w.add_discount("Stały klient", Decimal("5"))
    handles.salespeople["anna"] = w.add_salesperson("Anna", "Nowak", "Anna.Nowak@hurtownia.pl")
    handles.salespeople["piotr"] = w.add_salesperson("Piotr", "Wiśniewski", "p.wis@hurtownia.pl")
    w.add_country("Polska", "PL")
    w.add_contractor(
        1, "K001", ZURAW, email="  Biuro@Zuraw.PL ", nip="PL 521-301-72-28",
        phone=" 22 123 45 67 ", street="ul. Świętokrzyska", house="12", flat="3a",
        postcode="00-916", city="Warszawa", price=2, discount_id=handles.discounts["zuraw"],
        owner_id=handles.salespeople["anna"], features=["b2b"],
        contacts=[
            GtContact("Zofia", "Łęcka", email="Z.Lecka@zuraw.pl", phone="601 000 001",
                      position="Zaopatrzenie"),
            GtContact("Adam", "Ąbel", mobile="602 000 002", primary=True),
        ],
    )  # fmt: skip
    w.add_contractor(
        2, "K002", "Hurtownia Kowalski i Syn Sp. j.", email="zamowienia@kowalski.com.pl",
        city="Kraków", postcode="30-001", street="ul. Długa", house="7", price=1,
        discount_id=handles.discounts["staly"], owner_id=handles.salespeople["piotr"],
        features=[" B2B "],
    )  # fmt: skip
    handles.contacts["kowalski"] = w.add_contact(
        2, GtContact("Jan", "Kowalski", email="jan@kowalski.com.pl", phone="603 000 003")
    )
    w.add_contractor(3, "K003", "Sklep Pod Lipą", email="sklep@podlipa.pl", features=["b2b"])
    w.add_contractor(4, "K004", "Bez Cechy Sp. j.", email="x@bezcechy.pl", features=["inne"])
    w.add_contractor(
        5, "K005", "Dostawca S.A.", email="d@dostawca.pl", kind=KIND_SUPPLIER, features=["b2b"]
    )
    w.add_contractor(
        6, "K006", "Kontrolna S.A.", email="kontrola@kontrolna.pl", price=3,
        discount_id=handles.discounts["staly"], owner_id=handles.salespeople["anna"],
        features=["B2b"],
    )  # fmt: skip


def run_main(argv: list[str]) -> int:
    """``syncd.cli.main(argv)``, then structlog's previous configuration back.

    ``main`` points structlog at the current ``sys.stderr``, which under ``capsys`` is a
    buffer closed after the test: left in place, any later test that logs would fail.
    """
    saved = structlog.get_config()
    try:
        return main(argv)
    finally:
        structlog.configure(**saved)


class WriteRecorder:
    """Records every data-changing SQL statement any engine sends while it is installed."""

    def __init__(self) -> None:
        self.statements: list[tuple[str, str]] = []  # (database URL, statement)

    def _record(self, conn: sa.Connection, _cursor: Any, statement: str, *_: Any) -> None:
        if statement.lstrip().upper().startswith(WRITES):
            url = conn.engine.url.render_as_string(hide_password=True)
            self.statements.append((url, statement))

    def touching(self, *tables: str) -> list[str]:
        """The recorded statements that name one of ``tables``."""
        return [s for _, s in self.statements if any(t in s for t in tables)]

    def on(self, url: str) -> list[str]:
        """The recorded statements sent to the database at ``url``."""
        wanted = sa.make_url(url).render_as_string(hide_password=True)
        return [s for u, s in self.statements if u == wanted]


class GtEnv:
    """ERP, portal and state store of one test, a config on them, and the CLI to drive them."""

    def __init__(
        self,
        directory: Path,
        capsys: pytest.CaptureFixture[str],
        *,
        erp_url: str | None = None,
        portal_url: str | None = None,
        state_url: str | None = None,
        **sections: dict[str, Any],
    ) -> None:
        self.directory = directory
        self.capsys = capsys
        self.erp_url = erp_url or f"sqlite:///{directory}/erp.db"
        self.portal_url = portal_url or f"sqlite:///{directory}/portal.db"
        self.state_url = state_url or f"sqlite:///{directory}/state.db"
        self.sections = sections
        self.handles = Handles()
        self.erp = sa.create_engine(self.erp_url)
        self.portal = sa.create_engine(self.portal_url)
        self.state = sa.create_engine(self.state_url)
        self.write_config()
        create_gt_schema(self.erp)
        with self.edit() as w:
            populate(w, self.handles)

    @property
    def config_path(self) -> Path:
        return self.directory / "config.yaml"

    def write_config(self, **overrides: dict[str, Any]) -> None:
        """(Re)write the config; ``overrides`` replace keys of the sections given."""
        sections = {name: dict(values) for name, values in self.sections.items()}
        sections.setdefault("source", {})["url"] = self.erp_url
        sections.setdefault("portal", {})["url"] = self.portal_url
        sections.setdefault("state", {})["url"] = self.state_url
        for name, values in overrides.items():
            sections.setdefault(name, {}).update(values)
        write_config(self.directory, **sections)

    def close(self) -> None:
        for engine in (self.erp, self.portal, self.state):
            assert engine.pool.checkedout() == 0  # type: ignore[attr-defined]
            engine.dispose()

    @contextmanager
    def edit(self) -> Iterator[GtWriter]:
        """A GtWriter on the ERP inside one committed transaction."""
        with self.erp.begin() as conn:
            yield GtWriter(conn)

    def set_in_scope(self, *kh_ids: int, present: bool) -> None:
        """Give contractors of ``populate`` their feature back, or take it away."""
        with self.edit() as w:
            for kh_id in kh_ids:
                w.set_feature(kh_id, FEATURE_OF[kh_id], present=present)

    def cli(self, *args: str) -> Outcome:
        """Run ``syncd --config CONFIG ARGS...`` in-process."""
        self.capsys.readouterr()
        code = run_main(["--config", str(self.config_path), *args])
        captured = self.capsys.readouterr()
        return Outcome(code, captured.out, captured.err)

    # -- what the portal and the state store hold ----------------------------------------
    def accounts(self) -> dict[str, dict[str, Any]]:
        """Every ``b2b_account`` row by contractor key, with its contacts under ``contacts``."""
        with self.portal.connect() as conn:
            rows = [dict(r._mapping) for r in conn.execute(sa.select(account))]
            people = conn.execute(sa.select(contact).order_by(contact.c.id)).all()
        by_id = {row["id"]: row for row in rows}
        for row in rows:
            row["contacts"] = []
        for person in people:
            item = {k: v for k, v in person._mapping.items() if k not in ("id", "account_id")}
            by_id[person.account_id]["contacts"].append(item)
        return {row["contractor_key"]: row for row in rows}

    def state_rows(self, table: str) -> list[dict[str, Any]]:
        """Every row of one state-store table (``syncd_binding``, ``syncd_outbox``...)."""
        store_tables = store_metadata.tables
        with self.state.connect() as conn:
            result = conn.execute(sa.select(store_tables[table]))
            return [dict(r._mapping) for r in result]

    def snapshot(self) -> dict[str, Any]:
        """The portal's rows and the state store's bindings, audit trail and outbox."""
        return {
            "accounts": self.accounts(),
            **{t: self.state_rows(t) for t in ("syncd_binding", "syncd_audit", "syncd_outbox")},
        }

    @contextmanager
    def recording(self) -> Iterator[WriteRecorder]:
        """Record the data-changing statements every engine sends inside the block."""
        recorder = WriteRecorder()
        sa.event.listen(sa.Engine, "before_cursor_execute", recorder._record)
        try:
            yield recorder
        finally:
            sa.event.remove(sa.Engine, "before_cursor_execute", recorder._record)


@contextmanager
def gt_env(directory: Path, capsys: pytest.CaptureFixture[str], **kw: Any) -> Iterator[GtEnv]:
    """A GtEnv, closed (and checked for leaked connections) on the way out."""
    env = GtEnv(directory, capsys, **kw)
    try:
        yield env
    finally:
        env.close()
