"""Reading the admin's SQL text without a database: statements, placeholders, lines.

Enough lexing to validate a query offline and to point at its lines, not a SQL parser:
``--`` and ``/* */`` comments, ``'...'`` strings and ``"..."`` / ```...``` identifiers
(doubled quotes inside them) are masked out before looking for a second statement or a
write. Backslash escapes and PostgreSQL's ``$$`` strings are not understood; a query that
needs them still runs, the offline check may only misplace a line number.

Placeholders are found exactly as SQLAlchemy's ``text()`` finds them, even inside strings
and comments (where it would bind them too); ``\\:name`` keeps a colon literal.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# The regex of ``sqlalchemy.sql.elements.TextClause``: the two must find the same names.
PLACEHOLDER = re.compile(r"(?<![:\w\x5c]):(\w+)(?![:\w])", re.UNICODE)
_QUOTES = ("'", '"', "`")
_READS = ("select", "with")
# Words that make a statement write, lock or run code; none belongs in a contractor read.
_WRITES = re.compile(
    r"\b(insert|update|delete|merge|upsert|replace\s+into|drop|alter|create|truncate|grant|"
    r"revoke|exec|execute|call|into)\b",
    re.IGNORECASE,
)


def mask(sql: str, *, quoted: bool = True) -> str:
    """``sql`` with comments (and quoted text, unless ``quoted`` is False) blanked, keeping
    its length and newlines so that every index and line number still holds."""
    out: list[str] = []
    i, n = 0, len(sql)
    while i < n:
        ch = sql[i]
        if sql.startswith("--", i):
            end = sql.find("\n", i)
            end = n if end < 0 else end
        elif sql.startswith("/*", i):
            end = sql.find("*/", i + 2)
            end = n if end < 0 else end + 2
        elif ch in _QUOTES:
            end = _closing_quote(sql, i)
            if not quoted:
                out.append(sql[i:end])
                i = end
                continue
        else:
            out.append(ch)
            i += 1
            continue
        out.append(_blank(sql[i:end]))
        i = end
    return "".join(out)


def _closing_quote(sql: str, start: int) -> int:
    """The index just after the quote that closes the one at ``start`` (doubled ones skip)."""
    quote, end = sql[start], start + 1
    while end < len(sql):
        if sql.startswith(quote * 2, end):
            end += 2
        elif sql[end] == quote:
            return end + 1
        else:
            end += 1
    return end


def _blank(part: str) -> str:
    return "".join("\n" if c == "\n" else " " for c in part)


def line_at(sql: str, index: int) -> int:
    """The 1-based line number of character ``index``."""
    return sql.count("\n", 0, index) + 1


@dataclass(frozen=True, slots=True)
class Placeholder:
    """A ``:name`` that SQLAlchemy will bind: where it first appears, and whether that is
    inside a string or comment (where binding it is rarely what the admin meant)."""

    name: str
    line: int
    quoted: bool


def placeholders(sql: str) -> dict[str, Placeholder]:
    """Every ``:name`` in ``sql`` by name, at its first appearance."""
    masked = mask(sql)
    found: dict[str, Placeholder] = {}
    for match in PLACEHOLDER.finditer(sql):
        name = match.group(1)
        if name not in found:
            quoted = masked[match.start()] != ":"
            found[name] = Placeholder(name, line_at(sql, match.start()), quoted)
    return found


def problems(sql: str) -> list[str]:
    """Why ``sql`` is not one read-only SELECT, one sentence each; empty when it is."""
    masked = mask(sql)
    opening = re.match(r"[\s(]*(\S\w*)", masked)
    first = opening.group(1) if opening else ""
    found: list[str] = []
    if first.lower() not in _READS:
        shown = f"it starts with {first[:30]!r}" if first else "it is only comments"
        found.append(f"must be one SELECT (or WITH ... SELECT) statement; {shown}")
    extra = _second_statement(masked)
    if extra is not None:
        found.append(
            f"must be one statement, but another one follows the ';' on line "
            f"{line_at(masked, extra)}: remove it (and the ';')"
        )
    write = _WRITES.search(masked) if not found else None
    if write is not None:
        word = " ".join(write.group(1).split()).upper()
        found.append(
            f"must only read, but uses {word} on line {line_at(masked, write.start())}: "
            "syncd never writes to the ERP (give its login SELECT rights only)"
        )
    return found


def _second_statement(masked: str) -> int | None:
    """Where the first ``;`` that is followed by more SQL is, if there is one."""
    for match in re.finditer(";", masked):
        if masked[match.end() :].strip(" \t\r\n;"):
            return match.start()
    return None


def without_trailing_semicolon(sql: str) -> str:
    """``sql`` without the ``;`` that may end it, so that it can be wrapped as a subquery."""
    masked = mask(sql)
    end = len(masked.rstrip())
    if end and masked[end - 1] == ";":
        return sql[: end - 1] + sql[end:]
    return sql


def line_with(sql: str, token: str) -> int | None:
    """The first line of ``sql`` (outside comments) where ``token`` appears as a word; a
    qualified ``db.table`` is also looked for as ``table``."""
    searched = mask(sql, quoted=False)
    for candidate in (token, token.rsplit(".", 1)[-1]):
        word = re.escape(candidate.strip("\"'`[]"))
        match = re.search(rf"(?<!\w){word}(?!\w)", searched, re.IGNORECASE) if word else None
        if match is not None:
            return line_at(sql, match.start())
    return None


def line(sql: str, number: int) -> str:
    """Line ``number`` (1-based) of ``sql``, trimmed and shortened for a message."""
    lines = sql.splitlines()
    text = lines[number - 1].strip() if 1 <= number <= len(lines) else ""
    return text if len(text) <= 60 else text[:57] + "..."
