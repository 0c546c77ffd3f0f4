"""Turning the rows of the admin's queries into ``SourceContractor`` records, and scope.

Pure functions over mappings keyed by lower-case alias. Every field goes through the
helpers of ``connectors._rows`` that Subiekt GT uses too, so the same contractor gives the
same record, character for character, whichever kind reads it.

Rows with the same key are one contractor: a query that joins a feature table returns one
row per feature, and their ``features`` are united. Both streams arrive ordered by key as
text in code-point order (see ``query``); ``groups`` checks that as it goes, because a
merge join over a misordered stream would silently attach contacts to no one.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from decimal import Decimal, InvalidOperation
from typing import Any

import structlog

from connectors._rows import flag, format_address, join_words, percent, text
from syncd.errors import SourceUnavailable
from syncd.model import Contact, SourceContractor

log = structlog.get_logger(__name__)

# A result row by lower-case alias (SQLAlchemy's RowMapping, or a dict in unit tests).
Row = Mapping[Any, Any]
Group = tuple[str, list[Row]]
_FEATURE_SEPARATORS = re.compile(r"[,;]")
# The aliases that decide scope once the query has returned a row.
SCOPE_COLUMNS = ("key", "features", "is_customer")


def key_text(value: Any) -> str | None:
    """A key as syncd holds it: text without the padding of a CHAR column, or None."""
    if value is None:
        return None
    return str(value).rstrip() or None


def groups(rows: Iterable[Row], column: str, setting: str) -> Iterator[Group]:
    """Consecutive rows with the same key, as ``(key, rows)``; rows without a key are
    skipped (and logged). Raises ``SourceUnavailable`` if the keys do not ascend."""
    current: str | None = None
    batch: list[Row] = []
    for row in rows:
        key = key_text(row[column])
        if key is None:
            log.warning("sql_source.row_without_key", query=f"source.{setting}", column=column)
            continue
        if current is not None and key < current:
            message = (
                f"source.{setting} returned the key {key!r} after {current!r}: syncd merges "
                "the queries by key as text in code-point order and this database ordered "
                "them otherwise; make the key an integer or plain text column"
            )
            raise SourceUnavailable(message)
        if key != current:
            if current is not None:
                yield current, batch
            current, batch = key, []
        batch.append(row)
    if current is not None and batch:
        yield current, batch


def merge(
    main: Iterator[Group], people: Iterator[Group]
) -> Iterator[tuple[str, list[Row], list[Row]]]:
    """Each contractor's rows with its contact rows; contacts of keys the main query did
    not return (out of scope, or changed between the two reads) are dropped."""
    contact = next(people, None)
    for key, rows in main:
        while contact is not None and contact[0] < key:
            contact = next(people, None)
        mine: list[Row] = []
        if contact is not None and contact[0] == key:
            mine = contact[1]
            contact = next(people, None)
        yield key, rows, mine


def features(rows: Iterable[Row]) -> list[str]:
    """The feature names of a contractor's rows, trimmed, each once, in the order met."""
    found: dict[str, None] = {}
    for row in rows:
        for part in _FEATURE_SEPARATORS.split(str(row.get("features") or "")):
            if name := part.strip():
                found.setdefault(name, None)
    return list(found)


def has_feature(names: Iterable[str], feature: str) -> bool:
    """Whether one of ``names`` is ``feature``, trimmed and case-insensitively."""
    wanted = feature.strip().lower()
    return any(name.strip().lower() == wanted for name in names)


def out_of_scope(row: Row, names: Sequence[str], feature: str | None) -> str | None:
    """Why a contractor the query returns is not in scope, or None when it is."""
    if feature is not None and not has_feature(names, feature):
        shown = ", ".join(repr(n) for n in names) or "none"
        return (
            f"it does not carry the feature {feature!r} (its features: {shown}); add the "
            "feature to the contractor in the ERP"
        )
    if "is_customer" in row and not flag(row["is_customer"]):
        return (
            f"is_customer is {row['is_customer']!r}, so it is not a customer; make it one in "
            "the ERP"
        )
    return None


def first(key: str, rows: list[Row]) -> Row:
    """The row that stands for the contractor. Rows that differ beyond ``features`` mean the
    query returns the key twice (two addresses?): logged, and the same one always wins."""
    if len(rows) == 1:
        return rows[0]
    fields = [alias for alias in rows[0] if alias != "features"]
    distinct = {tuple(repr(row[alias]) for alias in fields): row for row in rows}
    if len(distinct) > 1:
        log.warning("sql_source.duplicate_key", contractor=key, rows=len(distinct))
    return distinct[min(distinct)]


def contact(row: Row) -> Contact | None:
    """A contacts-query row as a Contact, or None when it has no name, e-mail or phone."""
    email, phone = text(row.get("email")), text(row.get("phone"))
    name = join_words(row.get("first_name"), row.get("last_name")) or text(row.get("name"))
    name = name or email or phone
    if name is None:
        return None
    return Contact(
        name=name,
        email=email,
        phone=phone,
        position=text(row.get("position")),
        is_primary=flag(row.get("is_primary")),
        receives_mail=flag(row.get("receives_mail")),
        represents=flag(row.get("represents")),
    )


def contacts(rows: Iterable[Row]) -> tuple[Contact, ...]:
    """Contacts in a stable order: the primary one first, then by name, then by ``id``
    (when the query has one), then by every field, so the order never depends on the
    order the database happened to return them in."""
    found = [(c, _orderable(row.get("id"))) for row in rows if (c := contact(row)) is not None]
    found.sort(
        key=lambda item: (
            not item[0].is_primary,
            item[0].name.lower(),
            item[1],
            tuple(str(v) for v in item[0].as_dict().values()),
        )
    )
    return tuple(c for c, _ in found)


def _orderable(value: Any) -> tuple[int, Any]:
    """Numbers before text, NULL last, so that mixed ids still sort."""
    if value is None:
        return (2, "")
    if isinstance(value, int | float | Decimal) and not isinstance(value, bool):
        return (0, value)
    return (1, str(value))


def contractor(key: str, row: Row, people: tuple[Contact, ...]) -> SourceContractor:
    """One contractor row (see ``first``) plus its contacts as a SourceContractor."""
    symbol = text(row["symbol"]) or key
    if "address" in row:
        address = text(row["address"])
    else:
        parts = ("street", "house", "flat", "postcode", "city")
        address = format_address(*(row.get(part) for part in parts), country=row.get("country"))
    owner = text(row.get("owner_name"))
    email = row.get("email")
    return SourceContractor(
        key=key,
        symbol=symbol,
        name=text(row["name"]) or symbol,
        tax_id=text(row.get("tax_id")),
        email_raw=None if email is None else str(email),
        phone=text(row.get("phone")),
        address=address,
        price_level=text(row.get("price_level")),
        discount=_discount(key, row.get("discount")),
        owner_name=owner or join_words(row.get("owner_first_name"), row.get("owner_last_name")),
        owner_email=text(row.get("owner_email")),
        erp_blocked=flag(row.get("blocked")),
        contacts=people,
        customer_group=text(row.get("group")),
        billing_email=text(row.get("billing_email")),
    )


def _discount(key: str, value: Any) -> Decimal:
    """``percent`` that also reads a decimal comma; text that is no number stops the read."""
    if isinstance(value, str):
        value = value.strip().replace(",", ".") or None
    try:
        return percent(value)
    except InvalidOperation:
        message = (
            f"contractor {key}: the discount {value!r} is not a number; make the query return "
            "a number (or NULL for none) in the discount column"
        )
        raise SourceUnavailable(message) from None
