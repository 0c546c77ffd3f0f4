"""Row helpers every source kind shares: trimming, joining words, the one-line address.

Every source kind turns its rows into ``SourceContractor`` through these, so the same
contractor held in Subiekt GT, Subiekt nexo or a plain SQL database ends in the same
account, character for character. Only trimming happens here; validation and
normalisation belong to ``syncd.mapping``.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

_HOME_COUNTRY = {"pl", "polska", "poland"}


def text(value: Any) -> str | None:
    """Trimmed text, or None for NULL and blanks (SQL Server pads ``char`` columns)."""
    if value is None:
        return None
    stripped = str(value).strip()
    return stripped or None


def join_words(*parts: Any) -> str | None:
    """Non-empty parts joined by one space, or None: ``"Jan", None, "Kowalski"``."""
    words = [t for t in (text(p) for p in parts) if t]
    return " ".join(words) or None


def format_address(
    street: Any,
    house: Any,
    flat: Any,
    postcode: Any,
    city: Any,
    *,
    country: Any = None,
    country_iso: Any = None,
) -> str | None:
    """``Ulica NrDomu[/NrLokalu], Kod Miejscowość[, Kraj]``, the way every kind shows it.

    The country is shown only when it is not Poland. A village without streets (no street,
    a house number) is addressed as ``Miejscowość NrDomu``, the Polish postal convention.
    """
    house_t, flat_t = text(house), text(flat)
    number = f"{house_t}/{flat_t}" if house_t and flat_t else house_t or flat_t
    street_t = text(street) or (text(city) if number else None)
    country_t, iso = text(country), text(country_iso)
    if (country_t and country_t.lower() in _HOME_COUNTRY) or (iso and iso.lower() == "pl"):
        country_t = None
    parts = [join_words(street_t, number), join_words(postcode, city), country_t]
    return ", ".join(p for p in parts if p) or None


def percent(value: Any) -> Decimal:
    """A discount percentage as a Decimal; NULL (no discount) is 0 %."""
    if value is None:
        return Decimal(0)
    return value if isinstance(value, Decimal) else Decimal(str(value))


def flag(value: Any) -> bool:
    """A bit/boolean/int/'1'/'T' column as a bool; NULL is False."""
    if isinstance(value, str):
        return value.strip().lower() in {"1", "t", "true", "y", "yes", "tak"}
    return bool(value)
