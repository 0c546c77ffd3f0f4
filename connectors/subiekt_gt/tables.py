"""Subiekt GT's tables as SQLAlchemy ``Table`` objects: the one place their names are written.

Names, types and lengths are GT's exact ones (``../shared/reference/subiekt-gt.md``), and
so are the indexes on foreign-key columns. The connector's queries select from these
tables; the fake ERP (``fake.py``) creates them for the demo, the tests and the benchmark.
``uz_Haslo`` is here so a test can prove syncd never reads it.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

import sqlalchemy as sa

# Customer kinds in kh__Kontrahent.kh_Rodzaj: 0 supplier and customer, 1 supplier, 2 customer.
KIND_BOTH, KIND_SUPPLIER, KIND_CUSTOMER = 0, 1, 2
CUSTOMER_KINDS = (KIND_BOTH, KIND_CUSTOMER)
# adr__Ewid.adr_TypAdresu of a contractor's main address.
ADDRESS_MAIN = 1
PRICE_LEVELS = 10  # tw_Parametr.twp_NazwaCeny1 .. twp_NazwaCeny10
# kh_Pracownik columns that older GT versions lack; syncd reads without them.
OPTIONAL_CONTACT_COLUMNS = ("pk_EMail", "pk_TelKomorka", "pk_Zablokowany")


def gt_metadata(
    *,
    optional_contact_columns: bool | Collection[str] = True,
    schema: str | None = None,
    contact_role_columns: Collection[str] = (),
) -> sa.MetaData:
    """The GT tables syncd reads (plus ``adr_Email`` and ``tel__Ewid``), with GT's indexes.

    ``optional_contact_columns``: ``True`` for all of ``OPTIONAL_CONTACT_COLUMNS``, ``False``
    for none (an older GT), or the names of those to include. ``contact_role_columns``: bit
    columns someone added to ``kh_Pracownik`` for the contact roles GT has no column for
    (``source.contact_receives_mail`` / ``contact_represents``); GT's own ones are skipped.
    """
    if optional_contact_columns is True:
        optional_contact_columns = OPTIONAL_CONTACT_COLUMNS
    elif optional_contact_columns is False:
        optional_contact_columns = ()
    md = sa.MetaData(schema=schema)
    s = sa.String
    sa.Table(
        "kh__Kontrahent", md,
        sa.Column("kh_Id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("kh_Symbol", s(20), nullable=False),
        sa.Column("kh_EMail", s(255)),
        sa.Column("kh_Cena", sa.Integer),
        sa.Column("kh_IdRabat", sa.Integer, index=True),
        sa.Column("kh_IdOpiekun", sa.Integer, index=True),
        sa.Column("kh_IdGrupa", sa.Integer, index=True),
        sa.Column("kh_Zablokowany", sa.Boolean, nullable=False, default=False),
        sa.Column("kh_Rodzaj", sa.Integer, nullable=False, default=KIND_CUSTOMER),
        sa.Column("kh_Osoba", sa.Boolean, nullable=False, default=False),
        sa.Column("kh_Imie", s(20)),
        sa.Column("kh_Nazwisko", s(51)),
        sa.Column("kh_DataZmiany", sa.DateTime),
        sa.Index("IX_kh__Kontrahent_Symbol", "kh_Symbol", unique=True),
    )  # fmt: skip
    sa.Table(
        "adr__Ewid", md,
        sa.Column("adr_Id", sa.Integer, primary_key=True),
        sa.Column("adr_IdObiektu", sa.Integer, nullable=False),
        sa.Column("adr_TypAdresu", sa.Integer, nullable=False),
        sa.Column("adr_Nazwa", s(53)),
        sa.Column("adr_NazwaPelna", s(255)),
        sa.Column("adr_NIP", s(20)),
        sa.Column("adr_Telefon", s(35)),
        sa.Column("adr_Ulica", s(60)),
        sa.Column("adr_NrDomu", s(10)),
        sa.Column("adr_NrLokalu", s(10)),
        sa.Column("adr_Kod", s(8)),
        sa.Column("adr_Miejscowosc", s(40)),
        sa.Column("adr_IdPanstwo", sa.Integer, index=True),
        sa.Column("adr_DataZmiany", sa.DateTime),
        sa.Index("IX_adr__Ewid_Obiekt", "adr_IdObiektu", "adr_TypAdresu"),
    )  # fmt: skip
    sa.Table(
        "sl_Panstwo", md,
        sa.Column("pa_Id", sa.Integer, primary_key=True),
        sa.Column("pa_Nazwa", s(50), nullable=False),
        sa.Column("pa_KodPanstwaISO", s(3)),
    )  # fmt: skip
    sa.Table(
        "sl_CechaKh", md,
        sa.Column("ckh_Id", sa.Integer, primary_key=True),
        sa.Column("ckh_Nazwa", s(50), nullable=False),
    )  # fmt: skip
    sa.Table(
        "kh_CechaKh", md,
        sa.Column("ck_Id", sa.Integer, primary_key=True),
        sa.Column("ck_IdKhnt", sa.Integer, nullable=False, index=True),
        sa.Column("ck_IdCecha", sa.Integer, nullable=False, index=True),
    )  # fmt: skip
    sa.Table(
        "sl_GrupaKh", md,  # the contractor group dictionary (grupa kontrahentów)
        sa.Column("grk_Id", sa.Integer, primary_key=True),
        sa.Column("grk_Nazwa", s(50), nullable=False),
    )  # fmt: skip
    sa.Table(
        "sl_Rabat", md,
        sa.Column("rt_id", sa.Integer, primary_key=True),
        sa.Column("rt_Nazwa", s(50), nullable=False),
        sa.Column("rt_Procent", sa.Numeric(19, 4), nullable=False),
    )  # fmt: skip
    sa.Table(
        "pd_Uzytkownik", md,
        sa.Column("uz_Id", sa.Integer, primary_key=True),
        sa.Column("uz_Imie", s(20)),
        sa.Column("uz_Nazwisko", s(51)),
        sa.Column("uz_EMail", s(255)),
        sa.Column("uz_Identyfikator", s(3)),
        sa.Column("uz_Login", s(20)),
        sa.Column("uz_Haslo", s(255)),  # present so that a test can prove syncd never reads it
    )  # fmt: skip
    sa.Table(
        "tw_Parametr", md,
        sa.Column("twp_Id", sa.Integer, primary_key=True),
        *(sa.Column(f"twp_NazwaCeny{n}", s(30)) for n in range(1, PRICE_LEVELS + 1)),
    )  # fmt: skip
    optional: list[sa.Column[Any]] = [
        sa.Column("pk_EMail", s(255)),
        sa.Column("pk_TelKomorka", s(35)),
        sa.Column("pk_Zablokowany", sa.Boolean, nullable=False, default=False),
    ]
    sa.Table(
        "kh_Pracownik", md,
        sa.Column("pk_Id", sa.Integer, primary_key=True),
        sa.Column("pk_IdKh", sa.Integer, nullable=False, index=True),
        sa.Column("pk_Imie", s(20)),
        sa.Column("pk_Nazwisko", s(51)),
        sa.Column("pk_Stanowisko", s(50)),
        sa.Column("pk_Telefon", s(35)),
        sa.Column("pk_Podstaw", sa.Boolean, nullable=False, default=False),
        sa.Column("pk_DataZmiany", sa.DateTime),
        *(c for c in optional if c.name in optional_contact_columns),
    )  # fmt: skip
    contact = md.tables[f"{schema}.kh_Pracownik" if schema else "kh_Pracownik"]
    for name in contact_role_columns:
        if name not in contact.c:
            contact.append_column(sa.Column(name, sa.Boolean, nullable=False, default=False))
    sa.Table(
        "adr_Email", md,
        sa.Column("am_Id", sa.Integer, primary_key=True),
        sa.Column("am_IdAdres", sa.Integer, nullable=False, index=True),
        sa.Column("am_Email", s(255)),
        sa.Column("am_Podstawowy", sa.Boolean, nullable=False, default=False),
    )  # fmt: skip
    sa.Table(
        "tel__Ewid", md,
        sa.Column("tel_Id", sa.Integer, primary_key=True),
        sa.Column("tel_IdAdresu", sa.Integer, nullable=False, index=True),
        sa.Column("tel_Numer", s(35)),
        sa.Column("tel_Podstawowy", sa.Boolean, nullable=False, default=False),
    )  # fmt: skip
    return md
