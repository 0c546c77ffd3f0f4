"""Mapping: one ERP contractor becomes the account the portal should hold, or a conflict.

Pure functions, no I/O. The e-mail is the login, so it is normalised (trimmed, lower-case)
and validated with email-validator (syntax only: no DNS lookups, the ERP is often offline
from the internet and a cycle must not depend on it). The NIP is checked with python-stdnum;
a bad NIP is only a warning: the account is still created.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from functools import lru_cache

from email_validator import EmailNotValidError, validate_email
from stdnum.eu import vat as eu_vat
from stdnum.pl import nip as pl_nip

from syncd.model import Conflict, ConflictKind, Contact, DesiredAccount, SourceContractor

# People separate several addresses in one ERP field with ';', ',' or spaces.
_SEPARATORS = re.compile(r"[;,\s]+")


def describe(contractor: SourceContractor | Conflict | DesiredAccount) -> str:
    """``contractor 1042 (K0042, ACME Sp. z o.o.)``: how every message names a contractor."""
    return f"contractor {contractor.key} ({contractor.symbol}, {contractor.name})"


# The addresses nearly every ERP holds: ASCII dot-atom local part, LDH domain labels, an
# alphabetic top-level domain. email-validator accepts every address this matches and
# returns it with the domain lower-cased (tests/unit/test_email_fast_path.py proves it
# against the library), so these skip its full parse, which is most of a first sync's
# mapping CPU. Anything else (IDNA, quoted local parts, special-use names, odd lengths)
# goes through the library.
_PLAIN_EMAIL = re.compile(
    r"[A-Za-z0-9_+-]{1,64}(?:\.[A-Za-z0-9_+-]+)*"
    r"@(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,24}"
)
_SPECIAL_USE = frozenset({"arpa", "invalid", "local", "localhost", "onion", "test"})


def plain_login(candidate: str) -> str | None:
    """``candidate`` in login form when it is a plain address (see ``_PLAIN_EMAIL``), else
    None: the caller then asks email-validator."""
    if len(candidate) > 254 or not _PLAIN_EMAIL.fullmatch(candidate):
        return None
    local, domain = candidate.rsplit("@", 1)
    if len(local) > 64 or len(domain) > 253 or "--" in domain:
        return None
    if domain.rsplit(".", 1)[-1].lower() in _SPECIAL_USE:
        return None
    return candidate.lower()


def normalise_email(value: str) -> str | None:
    """The address in login form (trimmed, lower-case), or None when it is not valid."""
    candidate = value.strip()
    if not candidate:
        return None
    fast = plain_login(candidate)
    if fast is not None:
        return fast
    try:
        result = validate_email(candidate, check_deliverability=False)
    except EmailNotValidError:
        return None
    return result.normalized.lower()


def _email_problem(value: str) -> str:
    try:
        validate_email(value.strip(), check_deliverability=False)
    except EmailNotValidError as error:
        return str(error)
    return "not a valid e-mail address"


# A cycle maps only the contractors whose raw rows changed (syncd._cycle_plan), and plain
# addresses skip the library (``plain_login``), so these caches only spare repeated work
# within a cycle (shared addresses, ``explain``). Small on purpose: a cache sized to the
# ERP would hold tens of megabytes at 100,000 contractors for no gain.
_CACHE_SIZE = 1 << 12


@lru_cache(maxsize=_CACHE_SIZE)
def pick_login(raw: str | None) -> tuple[str | None, tuple[str, ...], str | None]:
    """Choose the login from the raw e-mail field.

    Returns ``(login, warnings, problem)``: the first valid address of the field, what a
    person should know about the choice, and, when no address is valid, why not.
    """
    text = (raw or "").strip()
    if not text:
        return None, (), None
    candidates = [part for part in _SEPARATORS.split(text) if part]
    for candidate in candidates:
        login = normalise_email(candidate)
        if login is not None:
            if len(candidates) == 1:
                return login, (), None
            warning = (
                f"the e-mail field holds {len(candidates)} addresses ({text!r}); "
                f"using the first valid one, {login}, as the login"
            )
            return login, (warning,), None
    return None, (), _email_problem(candidates[0])


@lru_cache(maxsize=_CACHE_SIZE)
def normalise_tax_id(raw: str | None) -> tuple[str | None, str | None]:
    """The NIP in compact form (``PL`` prefix and dashes removed), and a warning if invalid.

    A foreign EU VAT number keeps its country prefix. An invalid value is kept as typed,
    trimmed, so the portal still shows what the ERP holds.
    """
    text = (raw or "").strip()
    if not text:
        return None, None
    compact = re.sub(r"[\s\-.]", "", text).upper()
    if compact.startswith("PL"):
        compact = compact[2:]
    if compact.isdigit():
        if pl_nip.is_valid(compact):
            return compact, None
        return text, f"NIP {text!r} fails the checksum: correct it in the ERP"
    if eu_vat.is_valid(compact):
        return eu_vat.compact(compact), None
    return text, f"tax id {text!r} is neither a valid NIP nor an EU VAT number"


def _contact(contact: Contact) -> Contact:
    email = (contact.email or "").strip().lower() or None
    return Contact(
        name=contact.name,
        email=email,
        phone=contact.phone,
        position=contact.position,
        is_primary=contact.is_primary,
    )


def map_contractor(
    contractor: SourceContractor, *, source_fingerprint: str | None = None
) -> DesiredAccount | Conflict:
    """Turn one in-scope contractor into its desired account, or a conflict saying what to fix.

    ``source_fingerprint`` is the row's ``raw_fingerprint()`` when the caller already has it.
    """
    who = describe(contractor)
    login, login_warnings, problem = pick_login(contractor.email_raw)
    warnings = list(login_warnings)
    if login is None and problem is None:
        reason = (
            f"{who} has no e-mail address: add one in the ERP (it becomes the login); "
            "the account is created on the next cycle"
        )
        return Conflict(
            contractor.key,
            contractor.symbol,
            contractor.name,
            None,
            ConflictKind.MISSING_EMAIL,
            reason,
        )
    if login is None:
        reason = (
            f"{who} has an invalid e-mail address {contractor.email_raw!r} ({problem}): "
            "correct it in the ERP; the account is created on the next cycle"
        )
        return Conflict(
            contractor.key,
            contractor.symbol,
            contractor.name,
            None,
            ConflictKind.INVALID_EMAIL,
            reason,
        )
    tax_id, tax_warning = normalise_tax_id(contractor.tax_id)
    if tax_warning:
        warnings.append(tax_warning)
    owner_email = (contractor.owner_email or "").strip().lower() or None
    return DesiredAccount(
        key=contractor.key,
        login=login,
        symbol=contractor.symbol,
        name=contractor.name,
        email=login,
        tax_id=tax_id,
        phone=contractor.phone,
        address=contractor.address,
        price_level=contractor.price_level,
        discount=contractor.discount,
        owner_name=contractor.owner_name,
        owner_email=owner_email,
        erp_blocked=contractor.erp_blocked,
        contacts=tuple(_contact(c) for c in contractor.contacts),
        warnings=tuple(warnings),
        source_fingerprint=source_fingerprint or contractor.raw_fingerprint(),
    )


def map_all(contractors: Iterable[SourceContractor]) -> Iterator[DesiredAccount | Conflict]:
    """Map a stream of contractors lazily, so a 200,000-row ERP is never held twice."""
    for contractor in contractors:
        yield map_contractor(contractor)
