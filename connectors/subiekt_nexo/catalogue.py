"""``doctor``'s look at a nexo database's catalogue: missing tables and columns, and the
candidate tables ``doctor --discover`` offers for each ``source.tables`` setting.

Only SQLAlchemy's inspector is used (table names, columns, foreign keys), so the same code
reads the catalogue of SQL Server, SQLite, PostgreSQL and MariaDB. Names are compared
exactly, as a quoted identifier is on PostgreSQL; a name that differs only in case is
pointed out.
"""

from __future__ import annotations

import re
from typing import Any, get_args

import sqlalchemy as sa

from connectors.base import Candidate
from connectors.subiekt_nexo.config import DEFAULT_SCHEMA, NexoTables
from connectors.subiekt_nexo.tables import NexoSchema, Spec, specs

_DISCOVER = "run `syncd doctor --discover` to list candidate tables"
# Table name patterns (SQL LIKE, case-insensitive) and the settings a match could fill.
PATTERNS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("%Cech%", ("feature_dictionary", "feature_link")),
    ("%Przedstawic%", ("contact_persons",)),
    ("%Opiekun%", ("contact_persons",)),
    ("%Poziom%", ("price_levels",)),
    ("%Rabat%", ("discounts",)),
    ("%Upust%", ("discounts",)),
    ("Kontakt%", ("contact_primary",)),
    ("Rodzaj%Kontakt%", ("contact_kinds",)),
    ("%Grup%", ("groups",)),
)
# What a table with a foreign key to Podmioty that matches no pattern could be.
LINK_SETTINGS = ("feature_link", "discounts", "contact_persons")
CONTRACTORS = "Podmioty"
# Settings that name a column of a verified table rather than a table.
COLUMN_SETTINGS = ("contact_primary", "blocked")


def _qualified(schema: str | None, *names: str) -> str:
    return ".".join(n for n in (schema, *names) if n)


def _nullable(setting: str) -> bool:
    """Whether ``source.tables.<setting>`` may be null (the value is then not read)."""
    return type(None) in get_args(NexoTables.model_fields[setting].annotation)


def _case_hint(name: str, present: list[str]) -> str:
    same = [p for p in present if p.lower() == name.lower()]
    return f" (did you mean {same[0]}? names are case-sensitive here)" if same else ""


def _missing_table(spec: Spec, schema: str | None, present: list[str]) -> str:
    where = _qualified(schema, spec.name)
    hint = _case_hint(spec.name, present)
    if spec.setting is None:
        return (
            f"source.schema: table {where} does not exist{hint}: source.url must point at a "
            f"Subiekt nexo company database and source.schema at the schema of its tables "
            f"({DEFAULT_SCHEMA} in nexo; null for the login's default schema)"
        )
    key = f"source.tables.{spec.setting}"
    message = f"{key}: table {where} does not exist{hint}; {_DISCOVER}, then set {key}"
    if _nullable(spec.setting):
        message += " (or null if this nexo keeps no such table)"
    return message


def _missing_column(
    spec: Spec, name: str, setting: str | None, schema: str | None, has: list[str]
) -> str:
    where = _qualified(schema, spec.name, name)
    hint = _case_hint(name, has)
    shown = ", ".join(has)
    if setting is None:
        return (
            f"source: column {where} does not exist{hint} (the table has: {shown}); syncd "
            "expects it in every Subiekt nexo: check that source.url points at a nexo "
            "company database"
        )
    key = f"source.tables.{setting}"
    message = (
        f"{key}: column {where} does not exist{hint} (the table has: {shown}); set {key} to "
        f"one of them ({_DISCOVER} and their columns)"
    )
    if _nullable(setting):
        message += ", or to null if this nexo keeps no such column"
    return message


def problems(inspector: sa.Inspector, t: NexoSchema) -> list[str]:
    """One line per table or column that ``t`` names and the database lacks."""
    present = inspector.get_table_names(schema=t.schema)
    if not present:
        where = f"schema {t.schema}" if t.schema else "the login's default schema"
        return [
            f"source.schema: {where} has no tables: source.url must point at a Subiekt nexo "
            f"company database and source.schema at the schema of its tables "
            f"({DEFAULT_SCHEMA} in nexo; null for the login's default schema)"
        ]
    found: list[str] = []
    for spec in t.specs:
        if spec.name not in present:
            found.append(_missing_table(spec, t.schema, present))
            continue
        has = [c["name"] for c in inspector.get_columns(spec.name, schema=t.schema)]
        found.extend(
            _missing_column(spec, col.name, col.setting, t.schema, has)
            for col in spec.columns.values()
            if col.name not in has
        )
    return found


def _like(name: str, pattern: str) -> bool:
    regex = ".*".join(re.escape(part) for part in pattern.split("%"))
    return re.fullmatch(regex, name, flags=re.IGNORECASE) is not None


def discover(inspector: sa.Inspector, schema: str | None) -> list[Candidate]:
    """Candidate tables for each ``source.tables`` setting: by name pattern, by a foreign
    key to ``Podmioty``, and ``Podmioty``'s own columns that look like a blocked flag."""
    names = inspector.get_table_names(schema=schema)
    columns = inspector.get_multi_columns(schema=schema)
    keys = inspector.get_multi_foreign_keys(schema=schema)
    verified = {s.name for s in specs(NexoTables()) if s.setting is None}
    why: dict[tuple[str, str], list[str]] = {}

    def offer(setting: str, table: str, reason: str) -> None:
        why.setdefault((setting, table), []).append(reason)

    for name in names:
        # A verified table is offered only for the settings that name one of its columns.
        matched = [
            (p, tuple(s for s in ss if name not in verified or s in COLUMN_SETTINGS))
            for p, ss in PATTERNS
            if _like(name, p)
        ]
        for pattern, settings in matched:
            for setting in settings:
                offer(setting, name, f"name matches {pattern}")
        for fk in keys.get((schema, name), []):
            if fk["referred_table"].lower() != CONTRACTORS.lower() or name in verified:
                continue
            reason = (
                f"foreign key {', '.join(fk['constrained_columns'])} -> {CONTRACTORS}."
                f"{', '.join(fk['referred_columns'])}"
            )
            settings = LINK_SETTINGS
            if matched:
                settings = tuple(s for _, ss in matched for s in ss if s in LINK_SETTINGS)
            for setting in settings or LINK_SETTINGS:
                offer(setting, name, reason)
    flags = _blocked_columns(columns.get((schema, CONTRACTORS), []))
    order = list(NexoTables.model_fields)
    found = [
        Candidate(
            setting=f"source.tables.{setting}",
            table=_qualified(schema, table),
            columns=tuple(c["name"] for c in columns.get((schema, table), [])),
            why="; ".join(reasons),
        )
        for (setting, table), reasons in sorted(
            why.items(), key=lambda i: (order.index(i[0][0]), i[0][1])
        )
    ]
    if flags:
        found.append(
            Candidate(
                setting="source.tables.blocked",
                table=_qualified(schema, CONTRACTORS),
                columns=tuple(flags),
                why=f"columns of {CONTRACTORS} named like %Blok%",
            )
        )
    return found


def _blocked_columns(columns: list[Any]) -> list[str]:
    return [c["name"] for c in columns if "blok" in c["name"].lower()]
