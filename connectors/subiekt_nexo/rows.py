"""Turning Subiekt nexo result rows into ``SourceContractor``, ``Contact`` and scope text.

Pure functions over mappings keyed by the labels ``query.py`` gives, so every rule is
testable without a database. Trimming, names and addresses go through ``connectors._rows``,
the helpers every kind shares, so a contractor held in nexo yields the record, character
for character, that the same contractor held in Subiekt GT yields.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from connectors._rows import flag, format_address, percent, text
from connectors.subiekt_nexo.tables import OWN_COMPANY
from syncd.model import Contact, SourceContractor

# A result row by label (SQLAlchemy's RowMapping, or a plain dict in unit tests).
Row = Mapping[Any, Any]


@dataclass(frozen=True, slots=True)
class Kinds:
    """The ``RodzajeKontaktu`` ids whose names are the configured e-mail, phone and billing
    e-mail kinds."""

    email: tuple[int, ...]
    phone: tuple[int, ...]
    billing: tuple[int, ...] = ()


def same_name(a: Any, b: Any) -> bool:
    """Names compared trimmed and case-insensitively, as the SQL side compares them."""
    return (text(a) or "").lower() == (text(b) or "").lower()


def kinds(rows: Iterable[Row], email: str, phone: str, billing: str | None = None) -> Kinds:
    """Sort the dictionary rows that ``kinds_query`` found into e-mail, phone and billing
    e-mail ids."""
    found = list(rows)

    def named(name: str | None) -> tuple[int, ...]:
        if name is None:
            return ()
        return tuple(sorted(int(r["id"]) for r in found if same_name(r["name"], name)))

    return Kinds(email=named(email), phone=named(phone), billing=named(billing))


def contact(row: Row) -> Contact | None:
    """A contact person's row as a Contact, or None when it has no name, e-mail or phone.

    A person without a name is shown by e-mail or phone, as in Subiekt GT. The phone is
    the person's phone contact, else the ``Telefon`` of its ``Podmioty`` row.
    """
    email = text(row["email"])
    phone = text(row["phone"]) or text(row["own_phone"])
    name = text(row["name"]) or email or phone
    if name is None:
        return None
    return Contact(
        name=name,
        email=email,
        phone=phone,
        position=text(row.get("position")),
        is_primary=flag(row.get("primary")),
        receives_mail=flag(row.get("receives_mail")),
        represents=flag(row.get("represents")),
    )


def contacts(rows: Iterable[Row]) -> tuple[Contact, ...]:
    """Contacts in a stable order: the primary one first, then by name, then by person id."""
    found = [(c, int(row["person_id"])) for row in rows if (c := contact(row)) is not None]
    found.sort(key=lambda item: (not item[0].is_primary, item[0].name.lower(), item[1]))
    return tuple(c for c, _ in found)


def address(row: Row) -> str | None:
    """The one-line main address (``connectors._rows.format_address``; nexo keeps no ISO)."""
    parts = (row[k] for k in ("street", "house", "flat", "postcode", "city"))
    return format_address(*parts, country=row["country"])


def contractor(
    row: Row, people: tuple[Contact, ...], raw_digest: str | None = None
) -> SourceContractor:
    """One main-query row plus its contacts as a SourceContractor (``raw_digest``: the
    digest of the rows it was built from, ``connectors._stream.read_records``).

    The e-mail is passed on untrimmed (``email_raw``): the mapping step owns its rules.
    """
    key = str(row["id"])
    symbol = text(row["symbol"]) or key
    return SourceContractor(
        key=key,
        symbol=symbol,
        name=text(row["name"]) or symbol,
        tax_id=text(row["tax_id"]),
        email_raw=row["email"],
        phone=text(row["phone"]),
        address=address(row),
        price_level=text(row["price_level"]),
        discount=percent(row.get("discount")),
        owner_name=text(row["owner_name"]),
        owner_email=text(row["owner_email"]),
        erp_blocked=flag(row.get("blocked")),
        contacts=people,
        customer_group=text(row.get("customer_group")),
        billing_email=text(row.get("billing_email")),
        raw_digest=raw_digest,
    )


def scope(row: Row, features: Sequence[str | None], feature: str) -> tuple[bool, str]:
    """Whether a ``describe_query`` row is in scope, and a sentence saying why (not).

    Every reason it is out of scope is named, each with what to change in Subiekt nexo.
    """
    reasons: list[str] = []
    if not flag(row["is_contractor"]):
        reasons.append(
            "it is not a contractor (Podmioty.Kontrahent is not 1: a contact person, an "
            "employee or another record); only contractors get portal accounts"
        )
    if (row["kind"], row["subkind"]) == OWN_COMPANY:
        reasons.append("it is your own company (Typ=2, Podtyp=11), which never gets an account")
    if not flag(row["active"]):
        reasons.append("it is inactive (Podmioty.Aktywny = 0); make it active in Subiekt nexo")
    if not any(same_name(name, feature) for name in features):
        shown = ", ".join(repr(n) for n in features) or "none"
        reasons.append(
            f"it does not carry the feature {feature!r} (its features: {shown}); add it in "
            "Subiekt nexo via „Klienci – Popraw – Cechy”"
        )
    if not reasons:
        return True, f"in scope: an active contractor carrying the feature {feature!r}"
    return False, "NOT in scope: " + "; ".join(reasons)
