"""The source contract's parts: one factory per source kind, the contractors every kind
holds, and what every kind must read back.

A new source kind joins the contract suite by adding one line to ``FACTORIES`` (its fake
ERP comes from the registry) and nothing else.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import pytest

from connectors import SOURCES
from connectors._rows import format_address, join_words, text
from connectors.base import Source
from connectors.fake import FakeContact, FakeContractor, FakeErp, FakeSalesperson
from syncd.model import Contact, SourceContractor

ANNA = FakeSalesperson("Anna", "Nowak", "Anna.Nowak@hurtownia.pl")
PIOTR = FakeSalesperson("Piotr", "Wiśniewski", None)

# In scope: 1, 2, 3, 6, 8 (feature spelt three ways). Out: 4 (another feature), 5 (a
# supplier), 7 (no feature at all).
CONTRACTORS = (
    FakeContractor(
        1, "K001", "Przedsiębiorstwo Handlowe „Żuraw” Sp. z o.o.", email="  Biuro@Zuraw.PL ",
        tax_id="PL 521-301-72-28", phone=" 22 123 45 67 ", street="ul. Świętokrzyska",
        house="12", flat="3a", postcode="00-916", city="Warszawa", country="Polska",
        price_level="Hurtowa", discount=Decimal("12.5"), salesperson=ANNA, features=("b2b",),
        group="Hurtownie",
        contacts=(
            FakeContact("Zofia", "Łęcka", email="Z.Lecka@zuraw.pl", phone="601 000 001",
                        position="Zaopatrzenie", receives_mail=True),
            FakeContact("Adam", "Ąbel", phone="602 000 002", primary=True, represents=True),
            FakeContact(None, None, email="faktury@zuraw.pl"),
        ),
        billing_email="Ksiegowosc@Zuraw.pl",
    ),
    FakeContractor(
        2, "K002", "Krakbud S.A.", email="biuro@krakbud.pl", tax_id="6762461659",
        street="ul. Grzegórzecka", house="67", postcode="31-559", city="Kraków",
        price_level="Dystrybutor", discount=Decimal(5), salesperson=PIOTR, features=(" B2B ",),
        group="Budowlanka",
    ),
    FakeContractor(
        3, "DE-MUELLER", "Müller & Söhne GmbH", email="einkauf@mueller-soehne.de",
        tax_id="DE811907980", street="Hauptstraße", house="17", postcode="10115",
        city="Berlin", country="Niemcy", blocked=True, features=("b2b", "eksport"),
    ),
    FakeContractor(4, "K004", "Bez Cechy Sp. j.", email="x@bez.pl", features=("vip",)),
    FakeContractor(5, "DOST", "Dostawca S.A.", email="d@dost.pl", customer=False,
                   features=("b2b",)),
    FakeContractor(6, "K006", "Zalesie", city="Zalesie", house="7", features=("B2b",)),
    FakeContractor(7, "K007", "Bez Niczego", email="n@n.pl"),
    FakeContractor(8, "K008", "Hurtownia Ósemka", email="osemka@o.pl", features=("b2b",),
                   group="Hurtownie",
                   contacts=(FakeContact("Ewa", "Ósma", email="ewa@o.pl", primary=True),)),
)  # fmt: skip
IN_SCOPE = ("1", "2", "3", "6", "8")


def expected(c: FakeContractor) -> SourceContractor:
    """What every source kind must read for ``c`` (``email_raw`` compared trimmed)."""
    people = [
        (p, index)
        for index, p in enumerate(c.contacts)
        if join_words(p.first_name, p.last_name) or p.email or p.phone
    ]
    people.sort(key=lambda item: (not item[0].primary, _name(item[0]).lower(), item[1]))
    return SourceContractor(
        key=str(c.key),
        symbol=c.symbol,
        name=c.name,
        tax_id=text(c.tax_id),
        email_raw=text(c.email),
        phone=text(c.phone),
        address=format_address(c.street, c.house, c.flat, c.postcode, c.city, country=c.country),
        price_level=c.price_level,
        discount=Decimal(c.discount),
        owner_name=join_words(c.salesperson.first_name, c.salesperson.last_name)
        if c.salesperson
        else None,
        owner_email=c.salesperson.email if c.salesperson else None,
        erp_blocked=c.blocked,
        customer_group=c.group,
        contacts=tuple(
            Contact(
                _name(p),
                text(p.email),
                text(p.phone),
                text(p.position),
                p.primary,
                receives_mail=p.receives_mail,
                represents=p.represents,
            )
            for p, _ in people
        ),
        billing_email=text(c.billing_email),
    )


def _name(p: FakeContact) -> str:
    return join_words(p.first_name, p.last_name) or p.email or p.phone or ""


def trimmed(c: SourceContractor) -> SourceContractor:
    """``c`` with its raw e-mail trimmed: kinds may keep the ERP's spaces, mapping drops them."""
    from dataclasses import replace

    return replace(c, email_raw=text(c.email_raw))


@dataclass
class Erp:
    """One fake ERP of one kind on one backend, and how to build a source reading it."""

    kind: str
    fake: FakeErp
    section: dict[str, Any]

    def source(self, **overrides: Any) -> Source:
        """A source built the way the daemon builds it: config model, then ``from_config``."""
        kind = SOURCES[self.kind]
        config = kind.load_config().model_validate({**self.section, **overrides})
        built: Source = kind.load_connector().from_config(config)
        return built


def _plain(kind: str) -> Callable[[pytest.FixtureRequest, str], Erp]:
    def build(request: pytest.FixtureRequest, url: str) -> Erp:
        fake = SOURCES[kind].load_fake()(url)
        fake.create()
        return Erp(kind, fake, fake.source_config("b2b"))

    return build


def _gt_over_odbc(request: pytest.FixtureRequest, url: str) -> Erp:
    """GT written with pymysql, read through pyodbc + unixODBC + MariaDB's ODBC driver."""
    from tests.integration.test_odbc import odbc_url

    erp = _plain("subiekt_gt")(request, url)
    odbc = odbc_url(url).render_as_string(hide_password=False)
    return Erp(erp.kind, erp.fake, {**erp.section, "url": odbc})


# kind id -> (backends it runs on, factory). A new source kind is one more line here.
FACTORIES: dict[str, tuple[tuple[str, ...], Callable[[pytest.FixtureRequest, str], Erp]]] = {
    "subiekt_gt": (("sqlite", "postgres", "mariadb"), _plain("subiekt_gt")),
    "subiekt_gt-odbc": (("mariadb",), _gt_over_odbc),
    "subiekt_nexo": (("sqlite", "postgres", "mariadb"), _plain("subiekt_nexo")),
    "sql": (("sqlite", "postgres", "mariadb"), _plain("sql")),
}
