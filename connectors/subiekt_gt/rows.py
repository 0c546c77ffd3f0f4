"""Turning Subiekt GT result rows into ``SourceContractor`` and ``Contact`` records.

Pure functions over mappings, so every rule (name of a private person, the one-line address,
price level names, contact order) is visible in one place and testable without a database.
Only trimming happens here; validation and normalisation belong to the mapping step.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from connectors._rows import format_address as shared_address
from connectors._rows import join_words, percent, text
from syncd.model import Contact, SourceContractor

# A result row by column name (SQLAlchemy's RowMapping, or a plain dict in unit tests).
Row = Mapping[Any, Any]

__all__ = [
    "Row",
    "contacts",
    "contractor",
    "format_address",
    "join_words",
    "price_names",
    "text",
]


def format_address(row: Row) -> str | None:
    """The one-line address of a main ``adr__Ewid`` row (``connectors._rows.format_address``)."""
    return shared_address(
        row["adr_Ulica"], row["adr_NrDomu"], row["adr_NrLokalu"], row["adr_Kod"],
        row["adr_Miejscowosc"], country=row["pa_Nazwa"], country_iso=row["pa_KodPanstwaISO"],
    )  # fmt: skip


def price_names(row: Sequence[Any] | None) -> tuple[str | None, ...]:
    """The price level names from the ``tw_Parametr`` row, level 1 first."""
    return tuple(text(v) for v in row) if row is not None else ()


def price_level(number: Any, names: tuple[str | None, ...]) -> str | None:
    """The NAME of price level ``kh_Cena``; None for NULL, 0 or a level with no name."""
    if number is None or not 1 <= int(number) <= len(names):
        return None
    return names[int(number) - 1]


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


def contact(row: Row, roles: Mapping[str, str] | None = None) -> Contact | None:
    """A ``kh_Pracownik`` row as a Contact, or None when it has no name, e-mail or phone.
    ``roles`` maps a Contact role (``receives_mail``, ``represents``) to its column."""
    roles = roles or {}
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
        receives_mail="receives_mail" in roles and bool(row.get(roles["receives_mail"])),
        represents="represents" in roles and bool(row.get(roles["represents"])),
    )


def contacts(rows: Iterable[Row], roles: Mapping[str, str] | None = None) -> tuple[Contact, ...]:
    """Contacts in a stable order: the primary one first, then by name, then by ``pk_Id``."""
    found = [(c, int(row["pk_Id"])) for row in rows if (c := contact(row, roles)) is not None]
    found.sort(key=lambda item: (not item[0].is_primary, item[0].name.lower(), item[1]))
    return tuple(c for c, _ in found)


def contractor(
    row: Row,
    people: tuple[Contact, ...],
    names: tuple[str | None, ...],
    raw_digest: str | None = None,
) -> SourceContractor:
    """One main-query row plus its contacts as a SourceContractor (``raw_digest``: the
    digest of the rows it was built from, ``connectors._stream.read_records``)."""
    return SourceContractor(
        key=str(row["kh_Id"]),
        symbol=text(row["kh_Symbol"]) or str(row["kh_Id"]),
        name=contractor_name(row),
        tax_id=text(row["adr_NIP"]),
        email_raw=row["kh_EMail"],
        phone=text(row["adr_Telefon"]),
        address=format_address(row),
        price_level=price_level(row["kh_Cena"], names),
        discount=percent(row["rt_Procent"]),
        owner_name=join_words(row["uz_Imie"], row["uz_Nazwisko"]),
        owner_email=text(row["uz_EMail"]),
        erp_blocked=bool(row["kh_Zablokowany"]),
        contacts=people,
        customer_group=text(row["grk_Nazwa"]),
        billing_email=text(row.get("billing_email")),
        raw_digest=raw_digest,
    )
