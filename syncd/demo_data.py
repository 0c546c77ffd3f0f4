"""The demo ERP's contractors: a few dozen realistic, messy ones, the same for every kind.

``syncd demo`` writes them into an ERP of the chosen kind through that kind's fake
(``connectors/<kind>/fake.py``) and syncs it into a demo portal, so it shows off every
rule at once: about thirty
contractors tagged ``b2b`` (spelled ``b2b``, ``B2B`` and `` b2b ``), and on purpose the
mess real ERPs hold: an upper-case e-mail with spaces, two addresses in one field, a
missing and an invalid e-mail, two contractors sharing an e-mail, NIPs with dashes and a
``PL`` prefix, an invalid NIP, a contractor blocked in the ERP and a supplier that carries
the tag but is not a customer. Everything is fixed data, so the demo is deterministic.
"""

from __future__ import annotations

from decimal import Decimal

from connectors.fake import FakeContact, FakeContractor, FakeSalesperson

PRICE_NAMES = ["Detaliczna", "Hurtowa", "Dystrybutor", "Specjalna", "Eksportowa"]

# One contractor per entry (ids 101, 102, ... in order): symbol, name, e-mail, NIP,
# "street|house[/flat]|postcode|city", "price level|discount|salesperson|feature" where an
# empty feature means untagged and price level 0 means none.
_COMPANIES: list[tuple[str, str, str | None, str | None, str, str]] = [
    ("HURT-ZUR", "Przedsiębiorstwo Handlowe „Żuraw” Sp. z o.o.",
     "zamowienia@zuraw.com.pl", "521-301-72-28",
     "ul. Świętokrzyska|12/3|00-916|Warszawa", "2|stały|1|b2b"),
    ("KRAK-BUD", "Krakbud S.A.",
     "  Biuro@KRAKBUD.pl ", "PL6762461659",
     "ul. Grzegórzecka|67|31-559|Kraków", "3|dystrybutor|2|b2b"),
    ("GDA-MOR", "Morskie Hurtownie Gdańsk Sp. z o.o.",
     "handel@morskie-hurtownie.pl; ksiegowosc@morskie-hurtownie.pl", "5842735319",
     "ul. Długie Ogrody|8|80-765|Gdańsk", "2|stały|3|b2b"),
    ("POZ-AGD", "AGD Serwis Poznań Sp. j.",
     None, "7781020342",
     "ul. Głogowska|144|60-243|Poznań", "1|brak|1|b2b"),
    ("WRO-ELE", "Elektro-Wrocław Sp. z o.o.",
     "biuro(at)elektro-wroclaw.pl", "8971798720",
     "ul. Legnicka|55/12|54-203|Wrocław", "2|brak|2|b2b"),
    ("LDZ-TEX1", "Tekstylia Łódzkie Sp. z o.o.",
     "info@tekstylia-lodz.pl", "7251234561",
     "ul. Piotrkowska|120|90-006|Łódź", "2|stały|3|B2B"),
    ("LDZ-TEX2", "Tekstylia Łódzkie – Oddział Zgierz",
     "info@tekstylia-lodz.pl", "7322081137",
     "ul. Długa|3|95-100|Zgierz", "2|stały|3|b2b"),
    ("SZCZ-PORT", "Port-Trans Szczecin Sp. z o.o.",
     "logistyka@porttrans.pl", "123-456-78-90",
     "ul. Jana z Kolna|7|71-603|Szczecin", "5|brak|1|b2b"),
    ("LUB-PIEK", "Piekarnia „Złoty Kłos” Lublin",
     "zloty.klos@piekarnia-lublin.pl", "9462148836",
     "ul. Zana|38A|20-601|Lublin", "1|brak|2| b2b "),
    ("KAT-STAL", "Stalbud Katowice S.A.",
     "zaopatrzenie@stalbud.com.pl", "6340197424",
     "ul. Chorzowska|150|40-101|Katowice", "3|dystrybutor|3|b2b"),
    ("BIA-MLEK", "Spółdzielnia Mleczarska „Podlasie”",
     "sklep@sm-podlasie.pl", "5420200843",
     "ul. Mickiewicza|2|15-213|Białystok", "2|stały|1|b2b"),
    ("RZE-AUTO", "Auto-Części Rzeszów Sp. z o.o.",
     "rzeszow@autoczesci.pl", "8133172939",
     "al. Rejtana|53|35-326|Rzeszów", "2|promocja|2|b2b"),
    ("OPO-MEB", "Meble Śląskie Opole Sp. z o.o.",
     "meble@meble-opole.pl", "7543046926",
     "ul. Ozimska|72/4|45-368|Opole", "4|brak|3|b2b"),
    ("TOR-PIER", "Toruńskie Pierniki Sp. z o.o.",
     "hurt@pierniki-torun.pl", "8790167855",
     "ul. Żółkiewskiego|15|87-100|Toruń", "2|promocja|1|b2b"),
    ("OLS-ROL", "Agro-Olsztyn Sp. z o.o.",
     "agro@agro-olsztyn.pl", "7393008136",
     "ul. Towarowa|9|10-417|Olsztyn", "3|dystrybutor|2|b2b"),
    ("KIE-KAM", "Kamieniołomy Świętokrzyskie S.A.",
     "biuro@kamien-kielce.pl", "6570079496",
     "ul. Zagnańska|27|25-558|Kielce", "2|brak|3|b2b"),
    ("ZIE-WIN", "Winnice Zielonogórskie Sp. z o.o.",
     "winnice@winnice-zg.pl", "9291863347",
     "ul. Botaniczna|50|65-392|Zielona Góra", "1|brak|1|b2b"),
    ("GOR-BUD", "Budmat Gorzów Sp. z o.o.",
     "budmat@budmat.pl", "5992981534",
     "ul. Walczaka|25|66-400|Gorzów Wielkopolski", "2|stały|2|b2b"),
    ("BYD-CHEM", "Chemia Bydgoszcz Sp. z o.o.",
     "chemia@chemia-bydgoszcz.pl", "9532583739",
     "ul. Fordońska|199|85-739|Bydgoszcz", "3|dystrybutor|3|b2b"),
    ("CZE-PAP", "Papiernia Częstochowa Sp. z o.o.",
     "papier@papiernia-cz.pl", "5730002712",
     "ul. Jagiellońska|86|42-202|Częstochowa", "2|brak|1|b2b"),
    ("RAD-SKO", "Skóry Radomskie Sp. j.",
     "skory@skory-radom.pl", "7960054381",
     "ul. Żeromskiego|53/2|26-600|Radom", "2|brak|2|b2b"),
    ("PLO-PAL", "Paliwa Płock Sp. z o.o.",
     "paliwa@paliwa-plock.pl", "7740001454",
     "ul. Chemików|7|09-411|Płock", "5|brak|3|b2b"),
    ("ELB-MASZ", "Maszyny Elbląg Sp. z o.o.",
     "maszyny@maszyny-elblag.pl", "5783056277",
     "ul. Grunwaldzka|2|82-300|Elbląg", "2|stały|1|b2b"),
    ("KOS-RYB", "Rybołówstwo Koszalin Sp. z o.o.",
     "ryby@ryby-koszalin.pl", "6692505391",
     "ul. Zwycięstwa|126|75-601|Koszalin", "1|brak|2|b2b"),
    ("TAR-SZK", "Szkło Tarnów Sp. z o.o.",
     "szklo@szklo-tarnow.pl", "8730105336",
     "ul. Krakowska|11|33-100|Tarnów", "2|promocja|3|b2b"),
    ("CHO-ZIOL", "Zioła Chełmskie Sp. z o.o.",
     "ziola@ziola-chelm.pl", "5631001282",
     "ul. Lubelska|63|22-100|Chełm", "2|brak|1|b2b"),
    ("NOW-GOR", "Górskie Przysmaki Nowy Sącz",
     "przysmaki@gorskie.pl", "7342874906",
     "ul. Lwowska|14|33-300|Nowy Sącz", "2|brak|2|"),
    ("SUW-DREW", "Drewno Suwałki Sp. z o.o.",
     "drewno@drewno-suwalki.pl", "8442145998",
     "ul. Kościuszki|71|16-400|Suwałki", "2|brak|3|"),
    ("LEG-MIED", "Miedź-Handel Legnica Sp. z o.o.",
     "miedz@miedz-handel.pl", "6911002716",
     "ul. Złotoryjska|194|59-220|Legnica", "3|brak|1|"),
    ("DOS-OPAK", "Opakowania Dostawca S.A.",
     "sprzedaz@opakowania.pl", "5272525995",
     "ul. Przemysłowa|4|05-800|Pruszków", "0|brak|1|b2b"),
]  # fmt: skip

_CONTACTS: dict[str, list[FakeContact]] = {
    "HURT-ZUR": [
        FakeContact("Magdalena", "Wójcik", email="m.wojcik@zuraw.com.pl", phone="22 621 44 10",
                    position="Kierownik zakupów", primary=True),
        FakeContact("Grzegorz", "Brzęczyszczykiewicz", phone="601 234 567", position="Magazyn"),
    ],
    "KRAK-BUD": [FakeContact("Katarzyna", "Ślusarczyk", email="k.slusarczyk@krakbud.pl",
                             phone="12 411 22 33", position="Zaopatrzeniowiec", primary=True)],
    "GDA-MOR": [FakeContact("Paweł", "Kołodziej", phone="58 301 00 00", position="Prezes")],
    "KAT-STAL": [
        FakeContact("Jolanta", "Żak", email="j.zak@stalbud.com.pl", position="Księgowość"),
        FakeContact("Marek", "Dąbrowski", email="m.dabrowski@stalbud.com.pl", primary=True),
    ],
}  # fmt: skip


_DISCOUNTS = {"brak": Decimal(0), "stały": Decimal(5), "promocja": Decimal("7.5"),
              "dystrybutor": Decimal(15)}  # fmt: skip
_OWNERS = {
    1: FakeSalesperson("Agnieszka", "Zielińska", "a.zielinska@hurtownia-demo.pl"),
    2: FakeSalesperson("Michał", "Łukaszewicz", "m.lukaszewicz@hurtownia-demo.pl"),
    3: FakeSalesperson("Bożena", "Kowalczyk", None),
}


def demo_contractors() -> list[FakeContractor]:
    """The demo's contractors, said once for every source kind (ids 101.., then 201..204)."""
    found = []
    for number, (symbol, name, email, nip, address, terms) in enumerate(_COMPANIES, start=101):
        street, house, postcode, city = address.split("|")
        price, rebate, owner, tag = terms.split("|")
        number_part, _, flat = house.partition("/")
        found.append(FakeContractor(
            number, symbol, name, email=email, tax_id=nip, phone=f"{number % 50 + 12} 4{number} 00",
            street=street, house=number_part, flat=flat or None, postcode=postcode, city=city,
            price_level=PRICE_NAMES[int(price) - 1] if int(price) else None,
            discount=_DISCOUNTS[rebate], salesperson=_OWNERS[int(owner)],
            customer=not symbol.startswith("DOS-"), blocked=symbol == "RAD-SKO",
            features=(tag,) if tag else (), contacts=tuple(_CONTACTS.get(symbol, ())),
        ))  # fmt: skip
    # A private person, a customer that is also a supplier, and two foreign customers.
    found += [
        FakeContractor(
            201, "KOWALSKA-J", "Janina Kowalska", email="janina.kowalska@poczta.onet.pl",
            street="ul. Kwiatowa", house="5", postcode="05-500", city="Piaseczno",
            price_level=PRICE_NAMES[0], salesperson=_OWNERS[1], features=("b2b",),
        ),
        FakeContractor(
            202, "WIELK-HURT", "Wielkopolska Hurtownia Spożywcza Sp. z o.o.",
            email="hurt@whs.pl", tax_id="PL 782-00-11-236", street="ul. Obornicka", house="229",
            postcode="60-650", city="Poznań", price_level=PRICE_NAMES[2],
            discount=_DISCOUNTS["dystrybutor"], salesperson=_OWNERS[2], features=("B2B", "VIP"),
        ),
        FakeContractor(
            203, "DE-MUELLER", "Müller & Söhne GmbH", email="einkauf@mueller-soehne.de",
            tax_id="DE811907980", street="Hauptstraße", house="17", postcode="10115",
            city="Berlin", country="Niemcy", price_level=PRICE_NAMES[4], salesperson=_OWNERS[3],
            features=("b2b", "eksport"),
        ),
        FakeContractor(
            204, "CZ-NOVAK", "Novák a syn s.r.o.", email="obchod@novak-syn.cz",
            tax_id="CZ25596641", street="Náměstí Míru", house="8", postcode="120 00",
            city="Praha", country="Czechy", price_level=PRICE_NAMES[4], salesperson=_OWNERS[3],
            features=("b2b", "eksport"),
        ),
    ]  # fmt: skip
    return found


def build_demo_erp(kind: str, url: str) -> dict[str, object]:
    """Create an ERP of ``kind`` in the (new, empty) database at ``url``, fill in the demo,
    and return the ``source`` section that reads it."""
    from connectors import SOURCES

    fake = SOURCES[kind].load_fake()(url)
    try:
        fake.create()
        fake.add(demo_contractors())
        section: dict[str, object] = fake.source_config("b2b")
    finally:
        fake.close()
    return section
