"""Fake ERPs: databases shaped like each source kind's, for tests, the demo and the benchmark.

Scaffolding, not product: nothing in a cycle imports this. Each source kind ships a
``fake.py`` beside its connector whose class satisfies ``FakeErp``; its table and column
names come from that connector's own definitions, so the connector is always tested
against the shape it reads. ``FakeContractor`` says a contractor once, whatever the kind:
the contract suite and ``syncd demo --source KIND`` write the same contractors into every
kind and expect the same accounts.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Protocol


@dataclass(frozen=True, slots=True)
class FakeContact:
    """A contact person of a contractor."""

    first_name: str | None = None
    last_name: str | None = None
    email: str | None = None
    phone: str | None = None
    position: str | None = None
    primary: bool = False
    receives_mail: bool = False  # authorised to receive the company's mail
    represents: bool = False  # authorised to represent the company


@dataclass(frozen=True, slots=True)
class FakeSalesperson:
    """An ERP user who looks after contractors ("opiekun")."""

    first_name: str
    last_name: str
    email: str | None = None


@dataclass(frozen=True, slots=True)
class FakeContractor:
    """One contractor, said once for every kind.

    ``key`` is the ERP id; ``price_level`` the level's NAME (each fake keeps its own
    numbering or dictionary); ``discount`` a percentage; ``features`` the feature names
    exactly as typed in the ERP (``" B2B "`` stays so); ``customer`` False makes it a
    supplier only. ``country`` is a name ("Niemcy"); Poland is not shown in addresses.
    ``group`` is the contractor group's name, each fake keeping its own dictionary.
    """

    key: int
    symbol: str
    name: str
    email: str | None = None
    tax_id: str | None = None
    phone: str | None = None
    street: str | None = None
    house: str | None = None
    flat: str | None = None
    postcode: str | None = None
    city: str | None = None
    country: str | None = None
    price_level: str | None = None
    discount: Decimal = Decimal(0)
    salesperson: FakeSalesperson | None = None
    blocked: bool = False
    customer: bool = True
    features: tuple[str, ...] = ()
    contacts: tuple[FakeContact, ...] = ()
    group: str | None = None  # the contractor group's NAME (customer_group)
    billing_email: str | None = None  # where invoices go, where the kind keeps one


class FakeErp(Protocol):
    """A database shaped like one source kind's ERP. The fake owns its transactions."""

    def create(self) -> None:
        """Create the kind's tables (with the real ERP's indexes) in the empty database."""

    def add(self, contractors: Iterable[FakeContractor]) -> int:
        """Insert contractors in bulk (executemany, a few thousand rows a batch)."""

    def replace(self, contractor: FakeContractor) -> None:
        """Rewrite every row of the contractor with the same key, as an ERP edit would."""

    def delete(self, key: int) -> None:
        """Delete a contractor and its rows, as the ERP does (no soft delete)."""

    def set_features(self, key: int, features: Sequence[str]) -> None:
        """Give the contractor exactly these features (names as typed)."""

    def source_config(self, feature: str) -> dict[str, Any]:
        """The YAML ``source`` section (as a mapping) that reads this database."""

    def close(self) -> None:
        """Dispose of the fake's engine."""
