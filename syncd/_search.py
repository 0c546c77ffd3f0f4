"""Matching for ``accounts find``: wildcards, case- and accent-insensitive, NIP in any format.

``*`` matches any run of characters and ``?`` exactly one; a query with neither matches
anywhere in a value. ``rank`` orders the hits: an exact symbol or login first, then by name.

Pure functions, so the rules can be tested without a database. Text is folded with
Unicode NFKD (``ś`` becomes ``s`` plus a combining accent, which is dropped), a short
table for the letters that have no decomposition (``ł``, ``đ``, ``ø``...) and
``casefold``; that covers Polish, Czech and Romanian without a transliteration package.
A NIP is compared by its letters and digits only, without a leading country prefix
(``PL 521-301-72-28`` and ``5213017228`` are one NIP).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

# Letters that NFKD leaves whole, mapped to what people type instead.
_UNDECOMPOSED = str.maketrans({"ł": "l", "Ł": "L", "đ": "d", "Đ": "D", "ø": "o", "Ø": "O"})
_COUNTRY_PREFIX = re.compile(r"^[a-z]{2}(?=\d)")
_NOT_ALNUM = re.compile(r"[^0-9a-z*?]")
_WILDCARD = re.compile(r"([*?])")
# The Unicode blocks of combining marks (accents NFKD splits off a letter).
_COMBINING = re.compile("[\u0300-\u036f\u1ab0-\u1aff\u1dc0-\u1dff\u20d0-\u20ff\ufe20-\ufe2f]")
# The fields a query is matched against, from a binding's snapshot of the synced fields.
TEXT_FIELDS = ("name", "symbol", "email", "login")


def fold(text: str) -> str:
    """``text`` without case and accents: ``Kowalśki`` and ``KOWALSKI`` fold alike.

    ``accounts find`` folds every field of every contractor in the ERP, so ASCII text (most
    symbols, e-mails and NIPs) skips the Unicode work, and the accents are dropped by one
    regular expression over the combining-mark blocks rather than character by character.
    """
    if text.isascii():
        return text.lower()
    decomposed = unicodedata.normalize("NFKD", text.translate(_UNDECOMPOSED))
    stripped = _COMBINING.sub("", decomposed)
    if not stripped.isascii():  # another script's marks: the exact, slower way
        stripped = "".join(c for c in stripped if not unicodedata.combining(c))
    return stripped.casefold()


def fold_tax_id(text: str) -> str:
    """A NIP (or a query for one) as bare letters and digits, country prefix dropped."""
    bare = _NOT_ALNUM.sub("", fold(text))
    return _COUNTRY_PREFIX.sub("", bare)


def _pattern(folded_query: str) -> re.Pattern[str]:
    """``*`` matches anything, ``?`` one character; without either, anywhere in the value."""
    if "*" not in folded_query and "?" not in folded_query:
        folded_query = f"*{folded_query}*"
    wildcards = {"*": ".*", "?": "."}
    parts = (wildcards.get(part) or re.escape(part) for part in _WILDCARD.split(folded_query))
    return re.compile("".join(parts), re.DOTALL)


@dataclass(frozen=True, slots=True)
class Query:
    """A compiled ``accounts find`` query."""

    text: re.Pattern[str]
    tax_id: re.Pattern[str] | None  # None when the query holds no digit: never a NIP
    folded: str = ""  # the whole query folded, for ``is_exact``

    @classmethod
    def parse(cls, query: str) -> Query:
        folded = fold(query.strip())
        tax_id = fold_tax_id(query) if any(c.isdigit() for c in query) else None
        return cls(_pattern(folded), _pattern(tax_id) if tax_id else None, folded)

    def is_exact(self, fields: dict[str, Any], login: str) -> bool:
        """True when the query is the symbol or the login itself (any case and accents)."""
        values = (fields.get("symbol"), login)
        return any(isinstance(v, str) and v and fold(v) == self.folded for v in values)

    def rank(self, fields: dict[str, Any], login: str) -> tuple[bool, str, str]:
        """Sort key of a hit: an exact symbol or login first, then by name, then symbol."""
        name, symbol = fields.get("name"), fields.get("symbol")
        return (
            not self.is_exact(fields, login),
            fold(name) if isinstance(name, str) else "",
            fold(symbol) if isinstance(symbol, str) else "",
        )

    def matches(self, fields: dict[str, Any], login: str) -> list[str]:
        """The names of the fields that match (empty: no match)."""
        values = {name: fields.get(name) for name in TEXT_FIELDS} | {"login": login}
        found = [
            name
            for name, value in values.items()
            if isinstance(value, str) and self.text.fullmatch(fold(value))
        ]
        tax_id = fields.get("tax_id")
        if isinstance(tax_id, str) and tax_id and self._matches_tax_id(tax_id):
            found.append("tax_id")
        return found

    def _matches_tax_id(self, tax_id: str) -> bool:
        if self.text.fullmatch(fold(tax_id)):
            return True
        return self.tax_id is not None and bool(self.tax_id.fullmatch(fold_tax_id(tax_id)))


def search(query: str, rows: Iterable[tuple[dict[str, Any], str]]) -> list[int]:
    """Indexes of the ``(fields, login)`` rows that ``query`` matches, in order."""
    compiled = Query.parse(query)
    return [index for index, (fields, login) in enumerate(rows) if compiled.matches(fields, login)]


def ranked(query: str, rows: Sequence[tuple[dict[str, Any], str]]) -> list[int]:
    """``search``, ordered by ``Query.rank``: exact symbol or login first, then by name."""
    compiled = Query.parse(query)
    hits = [index for index, (fields, login) in enumerate(rows) if compiled.matches(fields, login)]
    return sorted(hits, key=lambda index: compiled.rank(*rows[index]))
