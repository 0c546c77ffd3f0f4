"""Turning Subiekt GT result rows into ``SourceContractor`` and ``Contact`` records.

Pure functions over mappings, so every rule (name of a private person, the one-line address,
price level names, contact order) is visible in one place and testable without a database.
Only trimming happens here; validation and normalisation belong to the mapping step.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal
from typing import Any

from syncd.model import Contact, SourceContractor

# A result row by column name (SQLAlchemy's RowMapping, or a plain dict in unit tests).
Row = Mapping[Any, Any]
_HOME_COUNTRY = {"pl", "polska", "poland"}


def text(value: Any) -> str | None:
    """Trimmed text, or None for NULL and blanks (GT pads ``char`` columns with spaces)."""
    if value is None:
        return None
    stripped = str(value).strip()
    return stripped or None


def join_words(*parts: Any) -> str | None:
    """Non-empty parts joined by one space, or None: ``"Jan", None, "Kowalski"``."""
    words = [t for t in (text(p) for p in parts) if t]
    return " ".join(words) or None


def format_address(row: Row) -> str | None:
    """``Ulica NrDomu[/NrLokalu], Kod Miejscowość[, Kraj]`` from a main ``adr__Ewid`` row.

    The country is shown only when it is not Poland. A village without streets
    (``adr_Ulica`` empty, ``adr_NrDomu`` set) is addressed as ``Miejscowość NrDomu``, the
    Polish postal convention.
    """
    house, flat = text(row["adr_NrDomu"]), text(row["adr_NrLokalu"])
    number = f"{house}/{flat}" if house and flat else house or flat
    street = text(row["adr_Ulica"]) or (text(row["adr_Miejscowosc"]) if number else None)
    country = text(row["pa_Nazwa"])
    iso = text(row["pa_KodPanstwaISO"])
    if (country and country.lower() in _HOME_COUNTRY) or (iso and iso.lower() == "pl"):
        country = None
    parts = [
        join_words(street, number),
        join_words(row["adr_Kod"], row["adr_Miejscowosc"]),
        country,
    ]
    return ", ".join(p for p in parts if p) or None


def price_names(row: Sequence[Any] | None) -> tuple[str | None, ...]:
    """The price level names from the ``tw_Parametr`` row, level 1 first."""
    return tuple(text(v) for v in row) if row is not None else ()


def price_level(number: Any, names: tuple[str | None, ...]) -> str | None:
    """The NAME of price level ``kh_Cena``; None for NULL, 0 or a level with no name."""
    if number is None or not 1 <= int(number) <= len(names):
        return None
    return names[int(number) - 1]


def discount(value: Any) -> Decimal:
    """``sl_Rabat.rt_Procent`` as a Decimal; no discount row means 0 %."""
    if value is None:
        return Decimal(0)
    return value if isinstance(value, Decimal) else Decimal(str(value))


def contractor_name(row: Row) -> str:
    """Full name for a company; ``adr_Nazwa`` (or first and last name) for a private person."""
    symbol = text(row["kh_Symbol"]) or str(row["kh_Id"])
    if row["kh_Osoba"]:
        candidates = [row["adr_Nazwa"], join_words(row["kh_Imie"], row["kh_Nazwisko"])]
    else:
        candidates = [row["adr_NazwaPelna"], row["adr_Nazwa"]]
    for candidate in candidates:
        if name := text(candidate):
            return name
    return symbol


def contact(row: Row) -> Contact | None:
    """A ``kh_Pracownik`` row as a Contact, or None when it has no name, e-mail or phone."""
    email = text(row.get("pk_EMail"))
    phone = text(row["pk_Telefon"]) if "pk_Telefon" in row else None
    phone = phone or text(row.get("pk_TelKomorka"))
    name = join_words(row["pk_Imie"], row["pk_Nazwisko"]) or email or phone
    if name is None:
        return None
    return Contact(
        name=name,
        email=email,
        phone=phone,
        position=text(row["pk_Stanowisko"]),
        is_primary=bool(row.get("pk_Podstaw")),
    )


def contacts(rows: Iterable[Row]) -> tuple[Contact, ...]:
    """Contacts in a stable order: the primary one first, then by name, then by ``pk_Id``."""
    found = [(c, int(row["pk_Id"])) for row in rows if (c := contact(row)) is not None]
    found.sort(key=lambda item: (not item[0].is_primary, item[0].name.lower(), item[1]))
    return tuple(c for c, _ in found)


def contractor(
    row: Row, people: tuple[Contact, ...], names: tuple[str | None, ...]
) -> SourceContractor:
    """One main-query row plus its contacts as a SourceContractor."""
    return SourceContractor(
        key=str(row["kh_Id"]),
        symbol=text(row["kh_Symbol"]) or str(row["kh_Id"]),
        name=contractor_name(row),
        tax_id=text(row["adr_NIP"]),
        email_raw=row["kh_EMail"],
        phone=text(row["adr_Telefon"]),
        address=format_address(row),
        price_level=price_level(row["kh_Cena"], names),
        discount=discount(row["rt_Procent"]),
        owner_name=join_words(row["uz_Imie"], row["uz_Nazwisko"]),
        owner_email=text(row["uz_EMail"]),
        erp_blocked=bool(row["kh_Zablokowany"]),
        contacts=people,
    )
