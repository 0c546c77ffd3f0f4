"""The benchmark's ERP: N GT-shaped contractors with realistic sizes, and the edits it makes.

Deterministic (the same N gives the same database). About 90% of contractors carry the
``b2b`` feature; a few are suppliers only; a small share has the mess real ERPs hold (no
e-mail, an invalid one, two contractors sharing one), so every cycle also carries a stable
set of conflicts. Each contractor has 0 to 2 contact persons, one on average.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal

import sqlalchemy as sa

from connectors.subiekt_gt.fake import (
    KIND_BOTH,
    KIND_CUSTOMER,
    KIND_SUPPLIER,
    GtContact,
    GtContractor,
    GtWriter,
    create_gt_schema,
)

PRICE_NAMES = ["Detaliczna", "Hurtowa", "Dystrybutor", "Specjalna", "Eksportowa"]
FIRST_ID = 100_001
_FORMS = ["Sp. z o.o.", "S.A.", "Sp. j.", "Sp. k.", "P.H.U.", "Spółka Cywilna"]
_WORDS = [
    "Przedsiębiorstwo", "Handlowe", "Hurtownia", "Budowlana", "Żuraw", "Łódzkie",
    "Świętokrzyskie", "Zakład", "Usługowy", "Materiałów", "Elektrycznych", "Instalacyjnych",
    "Gospodarstwa", "Dystrybucja", "Artykułów", "Spożywczych", "Kowalczyk", "Wiśniewski",
]  # fmt: skip
_STREETS = ["ul. Świętokrzyska", "ul. Grzegórzecka", "al. Jerozolimskie", "ul. Długa"]
_CITIES = [("00-916", "Warszawa"), ("31-559", "Kraków"), ("80-765", "Gdańsk"), ("90-006", "Łódź")]
_FIRST = ["Magdalena", "Grzegorz", "Katarzyna", "Paweł", "Jolanta", "Marek", "Żaneta"]
_LAST = ["Wójcik", "Brzęczyszczykiewicz", "Ślusarczyk", "Kołodziej", "Dąbrowski", "Żak", "Nowak"]


@dataclass(slots=True)
class ErpFacts:
    """What the fixture knows it wrote: the expected plan of a first sync, and ids to edit."""

    contractors: int = 0
    in_scope: int = 0
    conflicts: int = 0
    clean_ids: list[int] = field(default_factory=list)  # in scope, valid and unique e-mail
    discounts: list[int] = field(default_factory=list)
    owners: list[int] = field(default_factory=list)  # the salespeople's uz_Id

    @property
    def creates(self) -> int:
        return len(self.clean_ids)


def _nip(rng: random.Random) -> str:
    weights = (6, 5, 7, 2, 3, 4, 5, 6, 7)
    while True:
        digits = [rng.randint(1, 9), *(rng.randint(0, 9) for _ in range(8))]
        check = sum(d * w for d, w in zip(digits, weights, strict=True)) % 11
        if check != 10:
            text = "".join(map(str, digits)) + str(check)
            return f"{text[:3]}-{text[3:6]}-{text[6:8]}-{text[8:]}" if check % 2 else text


def _contractors(n: int, facts: ErpFacts, owners: list[int]) -> Iterator[GtContractor]:
    rng = random.Random(20261122)
    shared = ""
    for index in range(n):
        kh_id = FIRST_ID + index
        name = " ".join(rng.sample(_WORDS, rng.randint(2, 5))) + f" {index} {rng.choice(_FORMS)}"
        tagged = index % 10 != 9  # 90% carry the feature
        roll = index % 1000
        supplier = index % 97 == 5 and roll not in (611, 612)
        kind = KIND_SUPPLIER if supplier else rng.choice((KIND_CUSTOMER, KIND_BOTH))
        email: str | None = f"zamowienia.{index}@firma-{index % 5000}.com.pl"
        clean = True
        if roll == 17:
            email, clean = None, False  # no e-mail: a conflict
        elif roll == 433:
            email, clean = f"biuro{index}(at)firma.pl", False  # invalid: a conflict
        elif roll in (611, 612):
            shared = shared if roll == 612 else f"wspolny.{index}@firma.pl"
            email, clean = shared, False  # two contractors, one e-mail: a conflict each
        elif roll == 250:
            email = f"  Zamowienia.{index}@FIRMA-{index % 5000}.com.pl; ksiegowosc@firma.pl"
        street, (postcode, city) = rng.choice(_STREETS), rng.choice(_CITIES)
        contacts = [
            GtContact(
                rng.choice(_FIRST),
                rng.choice(_LAST),
                email=f"osoba{index}.{k}@firma-{index % 5000}.com.pl",
                phone=f"22 {rng.randint(100, 999)} {rng.randint(10, 99)} {rng.randint(10, 99)}",
                position="Kierownik zakupów" if k == 0 else "Magazyn",
                primary=k == 0,
            )
            for k in range(rng.choice((0, 1, 1, 2)))
        ]
        in_scope = tagged and kind != KIND_SUPPLIER
        if in_scope:
            facts.in_scope += 1
            if clean:
                facts.clean_ids.append(kh_id)
            else:
                facts.conflicts += 1
        yield GtContractor(
            kh_id, f"K{index:07d}", name, email=email, nip=_nip(rng),
            phone=f"+48 {rng.randint(500, 899)} {rng.randint(100, 999)} {rng.randint(100, 999)}",
            street=street, house=str(rng.randint(1, 250)),
            flat=str(rng.randint(1, 40)) if index % 3 == 0 else None, postcode=postcode,
            city=city, price=rng.randint(1, len(PRICE_NAMES)),
            discount_id=rng.choice([None, *facts.discounts]), owner_id=rng.choice(owners),
            kind=kind, features=["b2b"] if tagged else ["VIP"], contacts=contacts,
        )  # fmt: skip


def build_erp(engine: sa.Engine, n: int) -> ErpFacts:
    """Create the GT tables in ``engine``'s (empty) database and write ``n`` contractors."""
    create_gt_schema(engine)
    facts = ErpFacts(contractors=n)
    with engine.begin() as conn:
        w = GtWriter(conn)
        w.set_price_names(PRICE_NAMES)
        for feature in ("b2b", "VIP", "eksport"):
            w.add_feature(feature)
        for label, percent in (("Stały", "5"), ("Promocja", "7.5"), ("Dystrybutor", "15")):
            facts.discounts.append(w.add_discount(label, Decimal(percent)))
        owners = facts.owners = [
            w.add_salesperson(first, last, f"{first.lower()}.{i}@hurtownia.pl", code=f"S{i}")
            for i, (first, last) in enumerate(zip(_FIRST, _LAST, strict=True))
        ]
        w.add_many(_contractors(n, facts, owners))
    if engine.dialect.name == "postgresql":
        with engine.connect() as conn:
            conn.execute(sa.text("ANALYZE"))
    return facts


def _spread(ids: list[int], count: int, offset: int = 0) -> list[int]:
    """``count`` ids spread evenly over ``ids`` (shifted by ``offset`` places)."""
    step = len(ids) / max(count, 1)
    return [ids[(int(i * step) + offset) % len(ids)] for i in range(min(count, len(ids)))]


def edit_terms(engine: sa.Engine, facts: ErpFacts, share: float) -> int:
    """Change the price level (half) or the discount (other half) of ``share`` of the clean
    in-scope contractors, always to another value; returns how many changed."""
    chosen = facts.clean_ids[:: max(1, round(1 / share))]
    first, second = facts.discounts[0], facts.discounts[1]
    with engine.begin() as conn:
        kh = GtWriter(conn).t["kh__Kontrahent"]
        prices, discounts = chosen[0::2], chosen[1::2]
        for start in range(0, len(chosen), 500):
            conn.execute(
                kh.update()
                .where(kh.c.kh_Id.in_(prices[start : start + 500]))
                .values(kh_Cena=kh.c.kh_Cena % len(PRICE_NAMES) + 1)
            )
            other = sa.case((kh.c.kh_IdRabat == first, second), else_=first)
            conn.execute(
                kh.update()
                .where(kh.c.kh_Id.in_(discounts[start : start + 500]))
                .values(kh_IdRabat=other)
            )
    return len(chosen)


def edit_one_percent(engine: sa.Engine, facts: ErpFacts) -> dict[str, int]:
    """The 1% change: 1% of N clean contractors get another price level, discount,
    salesperson or contact persons (a quarter each), 0.5% of N are added (clean, tagged)
    and 0.5% of N lose the ``b2b`` feature. Returns the plan counts the cycle must show.

    A few statements per 500 ids, so the edit itself costs little at 200,000."""
    n = facts.contractors
    changed = _spread(facts.clean_ids, max(4, n // 100))
    taken = set(changed)
    rest = [kh_id for kh_id in facts.clean_ids if kh_id not in taken]
    removed = _spread(rest, max(1, n // 200), offset=len(rest) // 400 + 1)
    added = max(1, n // 200)
    groups = [changed[k::4] for k in range(4)]
    with engine.begin() as conn:
        w = GtWriter(conn)
        kh, people = w.t["kh__Kontrahent"], w.t["kh_Pracownik"]
        first, second = facts.discounts[0], facts.discounts[1]
        owner_a, owner_b = facts.owners[0], facts.owners[1]
        for start in range(0, len(changed), 500):
            prices, discounts, owners, contacts = (g[start : start + 500] for g in groups)
            conn.execute(
                kh.update()
                .where(kh.c.kh_Id.in_(prices))
                .values(kh_Cena=kh.c.kh_Cena % len(PRICE_NAMES) + 1)
            )
            other = sa.case((kh.c.kh_IdRabat == first, second), else_=first)
            conn.execute(kh.update().where(kh.c.kh_Id.in_(discounts)).values(kh_IdRabat=other))
            owner = sa.case((kh.c.kh_IdOpiekun == owner_a, owner_b), else_=owner_a)
            conn.execute(kh.update().where(kh.c.kh_Id.in_(owners)).values(kh_IdOpiekun=owner))
            conn.execute(
                people.update()
                .where(people.c.pk_IdKh.in_(contacts))
                .values(pk_Telefon="22 000 00 01")
            )
            having = set(
                conn.execute(
                    sa.select(people.c.pk_IdKh).where(people.c.pk_IdKh.in_(contacts))
                ).scalars()
            )
            new_people = [kh_id for kh_id in contacts if kh_id not in having]
            if new_people:
                conn.execute(
                    people.insert(),
                    [w._contact_row(kh_id, GtContact("Nowa", "Osoba", phone="22 000 00 02"))
                     for kh_id in new_people],
                )  # fmt: skip
        feature = w.add_feature("b2b")
        tags = w.t["kh_CechaKh"]
        for start in range(0, len(removed), 500):
            chunk = removed[start : start + 500]
            conn.execute(
                tags.delete().where(tags.c.ck_IdKhnt.in_(chunk), tags.c.ck_IdCecha == feature)
            )
        w.add_many(_added(facts, added))
    return {"update": len(changed), "create": added, "remove": len(removed)}


def _added(facts: ErpFacts, count: int) -> Iterator[GtContractor]:
    """``count`` new clean, tagged customers after the last id (a new customer each)."""
    first = FIRST_ID + facts.contractors
    facts.contractors += count
    for k in range(count):
        index = first - FIRST_ID + k
        yield GtContractor(
            first + k, f"N{index:07d}", f"Nowy Klient {index} Sp. z o.o.",
            email=f"nowy.{index}@klient-{index % 5000}.com.pl", nip="5260250274",
            street="ul. Nowa", house="1", postcode="00-001", city="Warszawa", price=1,
            owner_id=facts.owners[0], kind=KIND_CUSTOMER, features=["b2b"],
            contacts=[GtContact("Jan", "Nowy", email=f"jan.{index}@klient.com.pl", primary=True)],
        )  # fmt: skip


def change_emails(engine: sa.Engine, facts: ErpFacts, count: int) -> list[int]:
    """Give ``count`` clean contractors a new e-mail (so a new login, and a notice mail)."""
    chosen = _spread(facts.clean_ids, count)
    with engine.begin() as conn:
        kh = GtWriter(conn).t["kh__Kontrahent"]
        conn.execute(
            kh.update().where(kh.c.kh_Id == sa.bindparam("id")).values(kh_EMail=sa.bindparam("e")),
            [{"id": kh_id, "e": f"nowy.adres.{kh_id}@firma.com.pl"} for kh_id in chosen],
        )
    return chosen
