"""The records that flow through a cycle: what the ERP says, and what the portal should hold.

    source connector -> SourceContractor -> mapping -> DesiredAccount | Conflict -> plan

They are frozen and hashable so that the plan can stay a pure function of its inputs.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum
from typing import Any, NamedTuple


class AccountStatus(StrEnum):
    """Status of a portal account (spec section 5)."""

    PENDING = "pending"  # created, activation mail not yet accepted by SMTP
    ACTIVE = "active"
    BLOCKED = "blocked"
    INACTIVE = "inactive"  # left scope in on_removed: deactivate mode


@dataclass(frozen=True, slots=True)
class Contact:
    """A contractor's contact person, as the portal's ``b2b_contact`` row holds it.

    The roles are what a CRM asks of a person: ``receives_mail`` (authorised to receive the
    company's mail; ``mail.recipient: [contact, ...]`` sends there) and ``represents``
    (authorised to act for the company). Each source kind says where it reads them.
    """

    name: str
    email: str | None = None
    phone: str | None = None
    position: str | None = None
    is_primary: bool = False
    receives_mail: bool = False
    represents: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "email": self.email,
            "phone": self.phone,
            "position": self.position,
            "is_primary": self.is_primary,
            "receives_mail": self.receives_mail,
            "represents": self.represents,
        }


@dataclass(frozen=True, slots=True)
class SourceContractor:
    """One in-scope contractor exactly as the ERP holds it (only trimmed, never validated).

    ``key`` is the ERP's stable contractor id as a string. ``email_raw`` is the raw content of
    the e-mail field, which may hold several addresses, spaces or nothing at all.
    """

    key: str
    symbol: str
    name: str
    tax_id: str | None = None
    email_raw: str | None = None
    phone: str | None = None
    address: str | None = None
    price_level: str | None = None
    discount: Decimal = Decimal(0)
    owner_name: str | None = None
    owner_email: str | None = None
    erp_blocked: bool = False
    contacts: tuple[Contact, ...] = ()
    customer_group: str | None = None  # the ERP's contractor group, by NAME
    billing_email: str | None = None  # where invoices go, when the ERP has one (raw)
    # The digest of the raw rows this record was built from (``RawRecord.digest``), when
    # the source computes one; left out of comparisons and of ``raw_fingerprint``'s payload.
    raw_digest: str | None = field(default=None, compare=False, repr=False)

    def raw_fingerprint(self, login_by: str = "email") -> str:
        """A digest of the row exactly as read; equal digests map to equal accounts.

        The source's own digest of its raw rows when it computed one, else one over this
        record. ``MAPPING_VERSION`` is part of both, so a release that maps differently
        maps every contractor again once; so is ``portal.login`` (``with_login_mode``).
        """
        if self.raw_digest is not None:
            return with_login_mode(self.raw_digest, login_by)
        payload = f"{MAPPING_VERSION}|{self!r}".encode()
        return with_login_mode(hashlib.blake2b(payload, digest_size=20).hexdigest(), login_by)


def with_login_mode(digest: str, login_by: str) -> str:
    """``digest`` as the binding stores it under ``portal.login: login_by``: itself for the
    default (e-mail), else digested again with the mode (same prefix and length, so it fits
    the binding's column), so that switching the mode maps and renames every contractor
    on the next cycle."""
    if login_by == "email":
        return digest
    payload = f"login={login_by}|{digest}".encode()
    return RAW_DIGEST_PREFIX + hashlib.blake2b(payload, digest_size=16).hexdigest()


# Bump when mapping.py would turn the same ERP row into a different account.
MAPPING_VERSION = 1


# Prefix of the digests ``RawRecord`` carries, and the version of their recipe
# (``connectors._stream.row_digester``; r2 hashed ``repr`` of the rows, r3 their pickle): a
# binding whose stored digest lacks it was applied before raw-row digests existed, or
# under another recipe, so its contractor is mapped (once) and compared account to
# account; an equal account only has its digest refreshed, nothing is sent to the portal.
RAW_DIGEST_PREFIX = "r3:"


class RawRecord(NamedTuple):
    """One contractor as the ERP streams it, before any object is built from its rows.

    ``digest`` covers the raw values of its main row and contact rows (``RAW_DIGEST_PREFIX``
    first): when it equals the binding's ``source_fingerprint`` the cycle builds nothing.
    ``symbol`` and ``tax_id`` are read cheaply for the plan's duplicate-NIP warnings;
    ``build()`` makes the full ``SourceContractor`` for the contractors that did change.
    A named tuple: one is made per ERP row on every cycle, and a tuple is the cheapest
    immutable object to make.
    """

    key: str
    digest: str
    symbol: str
    tax_id: str | None
    build: Callable[[], SourceContractor]


class Unchanged(NamedTuple):
    """A bound contractor whose raw ERP row equals the one its account was applied from:
    the cycle skips mapping it, and the plan only counts it and notes its NIP (as the ERP
    holds it). Its login is its binding's: the plan asks about it only when a changed
    contractor wants the same one. A named tuple, like ``RawRecord``: one per unchanged
    row on every cycle."""

    key: str
    symbol: str
    tax_id: str | None = None


# The account fields syncd manages, in the order they are shown and fingerprinted.
SYNCED_FIELDS: tuple[str, ...] = (
    "login",
    "symbol",
    "name",
    "tax_id",
    "email",
    "phone",
    "address",
    "price_level",
    "discount",
    "owner_name",
    "owner_email",
    "contacts",
    "customer_group",
)


@dataclass(frozen=True, slots=True)
class DesiredAccount:
    """What the portal account of one contractor should look like, after mapping."""

    key: str
    login: str
    symbol: str
    name: str
    email: str
    tax_id: str | None = None
    phone: str | None = None
    address: str | None = None
    price_level: str | None = None
    discount: Decimal = Decimal(0)
    owner_name: str | None = None
    owner_email: str | None = None
    erp_blocked: bool = False
    contacts: tuple[Contact, ...] = ()
    customer_group: str | None = None
    # Not a portal field: one of the places ``mail.recipient`` may send mail to. The
    # binding keeps it (``mail_fields``) so that the mailer can choose at send time.
    billing_email: str | None = None
    warnings: tuple[str, ...] = field(default=(), compare=False)
    source_fingerprint: str | None = field(default=None, compare=False)

    def fields(self) -> dict[str, Any]:
        """The synced fields as JSON-ready values (what bindings store and plans compare)."""
        return {
            "login": self.login,
            "symbol": self.symbol,
            "name": self.name,
            "tax_id": self.tax_id,
            "email": self.email,
            "phone": self.phone,
            "address": self.address,
            "price_level": self.price_level,
            "discount": format_discount(self.discount),
            "owner_name": self.owner_name,
            "owner_email": self.owner_email,
            "contacts": [c.as_dict() for c in self.contacts],
            "customer_group": self.customer_group,
        }

    def mail_fields(self) -> dict[str, Any]:
        """What the binding keeps besides the synced fields: where else mail may go."""
        return {"billing_email": self.billing_email}

    def fingerprint(self) -> str:
        """A digest of everything that, if it changed, must be written to the portal."""
        return fingerprint(self.fields(), erp_blocked=self.erp_blocked)


def format_discount(value: Decimal) -> str:
    """Discounts travel as strings with two decimals so that JSON never rounds them."""
    return str(Decimal(value).quantize(Decimal("0.01")))


def canonical_json(value: Any) -> str:
    """Sorted keys, real UTF-8, no spaces: equal documents give equal text."""
    return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def fingerprint(fields: dict[str, Any], *, erp_blocked: bool, encoded: str | None = None) -> str:
    """SHA-256 over the canonical JSON of the synced fields and the ERP block flag.

    ``encoded`` is ``canonical_json(fields)`` when the caller has it (a binding stores that
    text): the document is then assembled around it, the very text ``canonical_json`` of
    ``{"fields": ..., "erp_blocked": ...}`` gives, so each account's fields are encoded once.
    """
    text = canonical_json(fields) if encoded is None else encoded
    flag = "true" if erp_blocked else "false"
    payload = f'{{"erp_blocked":{flag},"fields":{text}}}'
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


class ConflictKind(StrEnum):
    """Why a contractor could not be given an account (spec section 2)."""

    MISSING_EMAIL = "missing_email"
    INVALID_EMAIL = "invalid_email"
    DUPLICATE_EMAIL = "duplicate_email"
    LOGIN_TAKEN = "login_taken"
    PORTAL_LIMIT = "portal_limit"  # a value longer (or a discount larger) than the portal holds
    # portal.login: symbol (issue 11): the symbol is the login.
    INVALID_SYMBOL = "invalid_symbol"
    DUPLICATE_SYMBOL = "duplicate_symbol"


@dataclass(frozen=True, slots=True)
class PortalLimits:
    """What the portal can hold: the most characters of each synced field (a contact's
    fields as ``contacts.name``, ``contacts.email``, ...) and the largest discount. A field
    not named has no known limit."""

    lengths: Mapping[str, int] = field(default_factory=dict)
    max_discount: Decimal | None = None
    # The portal holds one login per ``syncd.mapping.fold_login`` (a *_ci collation's
    # unique index), so two logins that fold alike are one login to it.
    fold_logins: bool = False


@dataclass(frozen=True, slots=True)
class Conflict:
    """A contractor that is in scope but cannot be synced; ``reason`` says what to fix."""

    key: str
    symbol: str
    name: str
    login: str | None
    kind: ConflictKind
    reason: str
