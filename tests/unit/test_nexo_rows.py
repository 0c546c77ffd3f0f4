"""Unit tests of the Subiekt nexo source's pure parts: rows to records, scope text, config."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from pydantic import ValidationError
from sqlalchemy.dialects import mssql

from connectors.subiekt_nexo import query as q
from connectors.subiekt_nexo import rows
from connectors.subiekt_nexo.catalogue import _like
from connectors.subiekt_nexo.config import NexoTables, SubiektNexoConfig
from connectors.subiekt_nexo.tables import NexoSchema, fake_tables
from syncd.model import Contact, SourceContractor

MAIN: dict[str, Any] = {
    "id": 42, "symbol": " K042 ", "name": " Hurtownia Ąę ", "tax_id": " 5213017228 ",
    "phone": " 22 1 ", "email": " Biuro@X.PL ", "street": "ul. Długa", "house": "7",
    "flat": None, "postcode": "00-001", "city": "Warszawa", "country": "Polska",
    "price_level": " Hurtowa ", "owner_name": " Anna Nowak ", "owner_email": " a@h.pl ",
    "blocked": 1, "discount": Decimal("12.5000"),
}  # fmt: skip


def person(pid: int, name: str | None, **kw: Any) -> dict[str, Any]:
    """A contacts-query row with every label the query gives."""
    base = {"contractor_id": 42, "person_id": pid, "name": name, "own_phone": None}
    return {**base, "email": None, "phone": None, "position": None, "primary": None, **kw}


def test_a_main_row_maps_to_a_trimmed_source_contractor() -> None:
    """Every field is trimmed but the e-mail, which the mapping step handles raw."""
    got = rows.contractor(MAIN, ())
    assert got == SourceContractor(
        key="42", symbol="K042", name="Hurtownia Ąę", tax_id="5213017228",
        email_raw=" Biuro@X.PL ", phone="22 1", address="ul. Długa 7, 00-001 Warszawa",
        price_level="Hurtowa", discount=Decimal("12.5"), owner_name="Anna Nowak",
        owner_email="a@h.pl", erp_blocked=True,
    )  # fmt: skip


def test_missing_optional_values_fall_back_like_subiekt_gt() -> None:
    """No name shows the symbol, no symbol the id; no discount is 0 %; absent columns are
    not blocked and no foreign country is dropped."""
    row = {**MAIN, "symbol": "  ", "name": None, "country": "Niemcy"}
    del row["discount"], row["blocked"]
    got = rows.contractor(row, ())
    assert (got.symbol, got.name, got.discount, got.erp_blocked) == ("42", "42", 0, False)
    assert got.address == "ul. Długa 7, 00-001 Warszawa, Niemcy"


def test_a_contact_without_a_name_is_shown_by_email_or_phone_and_empty_ones_dropped() -> None:
    """A nameless person is named by e-mail, then phone (own Telefon as a fallback)."""
    assert rows.contact(person(1, " ", email=" f@x.pl ")) == Contact("f@x.pl", email="f@x.pl")
    assert rows.contact(person(2, "", own_phone=" 601 ")) == Contact("601", phone="601")
    assert rows.contact(person(3, None)) is None


def test_contacts_sort_primary_first_then_by_name_then_by_person_id() -> None:
    """The order GT gives: primary, then name case-insensitively, then the lower id."""
    got = rows.contacts([
        person(5, "zofia"), person(4, "Adam"), person(3, "Zofia", position=" Szef "),
        person(9, "Ewa", primary=1),
    ])  # fmt: skip
    assert got == (
        Contact("Ewa", is_primary=True), Contact("Adam"), Contact("Zofia", position="Szef"),
        Contact("zofia"),
    )  # fmt: skip


def test_contact_kinds_are_matched_by_name_trimmed_and_case_insensitively() -> None:
    """Kind ids come from the dictionary by name, never from fixed numbers."""
    found = [
        {"id": 7, "name": " e-MAIL "},
        {"id": 3, "name": "E-mail"},
        {"id": 1, "name": "Telefon"},
    ]
    assert rows.kinds(found, "E-mail", "telefon") == rows.Kinds(email=(3, 7), phone=(1,))
    assert rows.kinds([], "E-mail", "Telefon") == rows.Kinds(email=(), phone=())


def test_the_scope_sentence_names_every_reason_and_what_to_do() -> None:
    """In scope says so; out of scope lists each failing rule with the fix in nexo."""
    ok = {"is_contractor": 1, "active": 1, "kind": 2, "subkind": 7}
    assert rows.scope(ok, [" B2B "], "b2b") == (
        True, "in scope: an active contractor carrying the feature 'b2b'"
    )  # fmt: skip
    inside, sentence = rows.scope({**ok, "active": 0, "kind": 2, "subkind": 11}, ["vip"], "b2b")
    assert not inside
    assert sentence.startswith("NOT in scope: it is your own company (Typ=2, Podtyp=11)")
    assert "inactive (Podmioty.Aktywny = 0)" in sentence
    assert "its features: 'vip'); add it in Subiekt nexo via „Klienci – Popraw – Cechy”" in sentence
    _, sentence = rows.scope({**ok, "is_contractor": 0}, [], "b2b")
    assert "it is not a contractor" in sentence
    assert "its features: none" in sentence


def test_the_config_has_flat_table_defaults_and_rejects_unknown_keys() -> None:
    """source.tables is a flat mapping with guesses as defaults; null switches a read off."""
    config = SubiektNexoConfig.model_validate(
        {"kind": "subiekt_nexo", "url": "sqlite://", "feature": "b2b",
         "tables": {"feature_link": "CechyKontrahentow", "discounts": None}}
    )  # fmt: skip
    assert config.db_schema == "ModelDanychContainer"
    assert config.tables.feature_link == "CechyKontrahentow"
    assert config.tables.feature_dictionary == "CechyPodmiotow"
    assert config.tables.discounts is None
    with pytest.raises(ValidationError, match="feature_lnk"):
        NexoTables.model_validate({"feature_lnk": "X"})
    with pytest.raises(ValidationError):
        NexoTables.model_validate({"feature_link": None})


def test_the_statements_compile_for_sql_server() -> None:
    """The reads compile for mssql: TOP 1 subqueries, bracketed mixed-case names, schema."""
    t = NexoSchema(NexoTables(), "ModelDanychContainer")
    main = str(q.main_query(t, "b2b", [1, 2], (3,)).compile(dialect=mssql.dialect()))
    assert "[ModelDanychContainer].[CechyPodmiotowPodmiot]" in main
    assert "SELECT TOP" in main
    assert "lower(ltrim(rtrim(" in main
    assert "TimeStamp" not in main  # change detection never reads the rowversion
    people = str(q.contacts_query(t, "b2b", None, (3,), (1,)).compile(dialect=mssql.dialect()))
    assert "[ModelDanychContainer].[Przedstawiciele]" in people


def test_the_fake_indexes_every_reference_column() -> None:
    """Each column that holds another table's id is indexed in the fake (no quadratic EXISTS)."""
    tables = fake_tables(NexoTables())
    link = tables["feature_link"]
    indexed = {c.name for index in link.indexes for c in index.columns}
    assert indexed == {"Cechy_Id", "Podmioty_Id"}
    assert {fk.column.table.name for fk in link.foreign_keys} == {"CechyPodmiotow", "Podmioty"}


def test_like_patterns_match_case_insensitively_as_sql_like_does() -> None:
    """%Cech% finds CechyKontrahentow; Rodzaj%Kontakt% needs the prefix."""
    assert _like("CechyKontrahentow", "%Cech%")
    assert _like("rodzajekontaktu", "Rodzaj%Kontakt%")
    assert not _like("XRodzajeKontaktu", "Rodzaj%Kontakt%")
