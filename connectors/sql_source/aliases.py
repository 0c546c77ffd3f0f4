"""The column aliases a ``source.kind: sql`` query may use, and what is wrong with a set of them.

The aliases are the contract between the admin's SELECT and syncd: a column syncd does not
know is an error rather than ignored, because a misspelt ``emial`` would otherwise read
every contractor without an e-mail address and turn them all into conflicts. Aliases are
matched case-insensitively (PostgreSQL folds them to lower case, SQL Server keeps them).
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Sequence

ADDRESS_PARTS = ("street", "house", "flat", "postcode", "city", "country")
OWNER_PARTS = ("owner_first_name", "owner_last_name")

# The contractors query: ``key``, ``symbol`` and ``name`` are required.
REQUIRED = ("key", "symbol", "name")
CONTRACTOR = (
    *REQUIRED,
    "email",
    "tax_id",
    "phone",
    "address",
    *ADDRESS_PARTS,
    "price_level",
    "discount",
    "owner_name",
    *OWNER_PARTS,
    "owner_email",
    "blocked",
    "is_customer",
    "features",
    "group",  # the contractor group's name (customer_group); quote it: AS "group"
    "billing_email",  # where mail goes with mail.recipient: [billing, ...]
)

# The contacts query: ``contractor_key`` and something to name the person by.
CONTACT_NAMES = ("name", "first_name", "last_name", "email", "phone")
CONTACT = (
    "contractor_key",
    "id",
    *CONTACT_NAMES,
    "position",
    "is_primary",
    "receives_mail",  # authorised to receive the company's mail
    "represents",  # authorised to represent the company
)


def resolve(columns: Iterable[str]) -> dict[str, str]:
    """The result's column names by their lower-case alias (the first of any duplicates)."""
    found: dict[str, str] = {}
    for column in columns:
        found.setdefault(column.lower(), column)
    return found


def contractor_problems(columns: Sequence[str], *, feature: str | None) -> list[str]:
    """What is wrong with the contractors query's columns, one ``source.query:`` line each."""
    found = resolve(columns)
    problems = _common(columns, CONTRACTOR, "a contractor field")
    problems += [_missing(alias) for alias in REQUIRED if alias not in found]
    if "address" in found and (parts := [p for p in ADDRESS_PARTS if p in found]):
        problems.append(
            f'the query gives both "address" and its parts ({", ".join(parts)}): keep the '
            "ready one-line address or the parts, not both"
        )
    if "owner_name" in found and any(p in found for p in OWNER_PARTS):
        problems.append(
            'the query gives both "owner_name" and owner_first_name/owner_last_name: keep one'
        )
    if feature is not None and "features" not in found:
        problems.append(
            f"source.feature is {feature!r}, so the query needs a column aliased "
            '"features" holding the contractor\'s feature name(s): add "... AS features", '
            "or remove source.feature and keep the scope in the WHERE clause"
        )
    return [f"source.query: {p}" for p in problems]


def contact_problems(columns: Sequence[str]) -> list[str]:
    """What is wrong with the contacts query's columns, one ``source.contacts_query:`` each."""
    found = resolve(columns)
    problems = _common(columns, CONTACT, "a contact field")
    if "contractor_key" not in found:
        problems.append(_missing("contractor_key", "the contractor's key"))
    if not any(alias in found for alias in CONTACT_NAMES):
        problems.append(
            "the query has none of " + ", ".join(CONTACT_NAMES) + ": a contact needs a name "
            '(or at least an e-mail or phone), e.g. "... AS first_name, ... AS last_name"'
        )
    return [f"source.contacts_query: {p}" for p in problems]


def _common(columns: Sequence[str], allowed: Sequence[str], what: str) -> list[str]:
    """Duplicated and unknown aliases, with a did-you-mean for a near miss."""
    problems: list[str] = []
    seen: set[str] = set()
    for column in columns:
        alias = column.lower()
        if alias in seen:
            problems.append(f'the query has two columns named "{alias}" (ignoring case): keep one')
            continue
        seen.add(alias)
        if alias in allowed:
            continue
        close = difflib.get_close_matches(alias, allowed, n=1, cutoff=0.6)
        hint = (
            f'did you mean "{close[0]}"?'
            if close
            else "rename it to one of the fields or remove it"
        )
        problems.append(
            f'the column "{column}" is not {what}: {hint} (syncd reads only the aliases '
            f"{', '.join(allowed)})"
        )
    return problems


def _missing(alias: str, what: str | None = None) -> str:
    quoted = f'"{alias}"' if alias == "key" else alias  # KEY is reserved in MySQL and T-SQL
    about = f" ({what})" if what else ""
    return f'the query has no column aliased "{alias}"{about}; add "... AS {quoted}"'
