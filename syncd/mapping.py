"""Mapping: one ERP contractor becomes the account the portal should hold, or a conflict.

Pure functions, no I/O. The e-mail is the login (``portal.login: email``, the default), so
it is normalised (trimmed, lower-case) and validated with email-validator (syntax only: no
DNS lookups, the ERP is often offline from the internet and a cycle must not depend on it).
The NIP is checked with python-stdnum; a bad NIP is only a warning: the account is still
created.

With ``portal.login: symbol`` the ERP symbol (the client number) is the login, kept as typed
but trimmed, and the e-mail is only where mail goes: it must still be valid, but several
contractors may share it and changing it changes no login.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Iterator, Mapping
from decimal import Decimal
from functools import lru_cache

from email_validator import EmailNotValidError, validate_email
from stdnum.eu import vat as eu_vat
from stdnum.pl import nip as pl_nip

from syncd._email import plain_login
from syncd.model import (
    Conflict,
    ConflictKind,
    Contact,
    DesiredAccount,
    PortalLimits,
    SourceContractor,
    format_discount,
)

# People separate several addresses in one ERP field with ';', ',' or spaces.
_SEPARATORS = re.compile(r"[;,\s]+")
# A symbol login keeps inner spaces (some ERPs have "KOWALSKI J") but no tab, new line or
# other control character: nobody can type those at a login prompt.
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def describe(contractor: SourceContractor | Conflict | DesiredAccount) -> str:
    """``contractor 1042 (K0042, ACME Sp. z o.o.)``: how every message names a contractor."""
    return f"contractor {contractor.key} ({contractor.symbol}, {contractor.name})"


def fold_login(login: str) -> str:
    """A login as a portal that compares logins case- and accent-insensitively sees it
    (MariaDB's and MySQL's ``*_ci`` collations: ``kąsia`` = ``kasia``, ``straße`` =
    ``strasse``): decomposed, its accents dropped, case-folded."""
    decomposed = unicodedata.normalize("NFKD", login)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()


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
    compact = _TAX_ID_SEPARATORS.sub("", text).upper()
    if compact.startswith("PL"):
        compact = compact[2:]
    if compact.isdigit():
        if _nip_valid(compact):
            return compact, None
        return text, f"NIP {text!r} fails the checksum: correct it in the ERP"
    if eu_vat.is_valid(compact):
        return eu_vat.compact(compact), None
    return text, f"tax id {text!r} is neither a valid NIP nor an EU VAT number"


_TAX_ID_SEPARATORS = re.compile(r"[\s\-.]")
_NIP_WEIGHTS = (6, 5, 7, 2, 3, 4, 5, 6, 7, -1)


def _nip_valid(digits: str) -> bool:
    """``stdnum.pl.nip.is_valid`` for ``digits``; ten ASCII digits (nearly every NIP) are
    checked here, as the library does but without its parsing (a tenth of mapping's CPU)."""
    if len(digits) != 10 or not digits.isascii():
        return bool(pl_nip.is_valid(digits))
    return sum(w * (c - 48) for w, c in zip(_NIP_WEIGHTS, digits.encode(), strict=True)) % 11 == 0


def login_key(login: str) -> str:
    """A login as compared for uniqueness: case-insensitively, as portals and GT's
    collation compare them (an e-mail login is lower-case already)."""
    return login.casefold()


def symbol_login(symbol: str) -> tuple[str | None, str | None]:
    """The symbol as a login (trimmed, case kept), or None and why it cannot be one."""
    login = symbol.strip()
    if not login:
        return None, "it is empty"
    if _CONTROL.search(login):
        return None, "it holds a tab, a new line or another control character"
    return login, None


def _contact(contact: Contact) -> Contact:
    email = (contact.email or "").strip().lower() or None
    return Contact(
        name=contact.name,
        email=email,
        phone=contact.phone,
        position=contact.position,
        is_primary=contact.is_primary,
        receives_mail=contact.receives_mail,
        represents=contact.represents,
    )


def _billing_email(raw: str | None) -> tuple[str | None, str | None]:
    """The billing e-mail (where ``mail.recipient: [billing, ...]`` sends), and a warning
    when the ERP's field holds nothing valid: mail then goes to the next source."""
    if not (raw or "").strip():
        return None, None
    address, _, problem = pick_login(raw)
    if address is None:
        return None, f"the billing e-mail {raw!r} is not valid ({problem}): mail goes elsewhere"
    return address, None


def map_contractor(
    contractor: SourceContractor,
    *,
    source_fingerprint: str | None = None,
    login_by: str = "email",
) -> DesiredAccount | Conflict:
    """Turn one in-scope contractor into its desired account, or a conflict saying what to fix.

    ``source_fingerprint`` is the row's ``raw_fingerprint(login_by)`` when the caller
    already has it; ``login_by`` is ``portal.login`` (``email`` or ``symbol``).
    """
    who = describe(contractor)
    by_symbol = login_by == "symbol"
    email, login_warnings, problem = pick_login(contractor.email_raw)
    warnings = list(login_warnings)
    if by_symbol:
        warnings = [w.replace("as the login", "for mail") for w in warnings]
    if email is None and problem is None:
        role = "mail goes there" if by_symbol else "it becomes the login"
        reason = (
            f"{who} has no e-mail address: add one in the ERP ({role}); "
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
    if email is None:
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
    login = email
    if by_symbol:
        by_symbol_login, symbol_problem = symbol_login(contractor.symbol)
        if by_symbol_login is None:
            reason = (
                f"{who} cannot log in by its symbol {contractor.symbol!r} "
                f"({symbol_problem}; portal.login is symbol): correct the symbol in the "
                "ERP; the account is created on the next cycle"
            )
            return Conflict(
                contractor.key,
                contractor.symbol,
                contractor.name,
                None,
                ConflictKind.INVALID_SYMBOL,
                reason,
            )
        login = by_symbol_login
    tax_id, tax_warning = normalise_tax_id(contractor.tax_id)
    if tax_warning:
        warnings.append(tax_warning)
    owner_email = (contractor.owner_email or "").strip().lower() or None
    billing_email, billing_warning = _billing_email(contractor.billing_email)
    if billing_warning:
        warnings.append(billing_warning)
    account = DesiredAccount(
        key=contractor.key,
        login=login,
        symbol=contractor.symbol,
        name=contractor.name,
        email=email,
        tax_id=tax_id,
        phone=contractor.phone,
        address=contractor.address,
        price_level=contractor.price_level,
        discount=contractor.discount,
        owner_name=contractor.owner_name,
        owner_email=owner_email,
        erp_blocked=contractor.erp_blocked,
        contacts=tuple(_contact(c) for c in contractor.contacts),
        customer_group=(contractor.customer_group or "").strip() or None,
        billing_email=billing_email,
        warnings=tuple(warnings),
        source_fingerprint=source_fingerprint or contractor.raw_fingerprint(login_by),
    )
    for _, what, value in _texts(account):
        if "\x00" in value:
            # PostgreSQL refuses it outright and C-based portals cut the text there; the
            # same ERP row must give the same result on every portal, so none gets it.
            problem = (
                f"{what} contains a NUL character (U+0000), which a portal cannot store: "
                "remove it in the ERP"
            )
            return _unfit(account, problem)
    return account


def within_limits(account: DesiredAccount, limits: PortalLimits) -> DesiredAccount | Conflict:
    """``account``, or a conflict naming the first value the portal cannot hold.

    A 10,000-character address is the ERP's to fix, like a broken e-mail: as a conflict it
    is listed every cycle with what to shorten, where a portal refusal would only put the
    record into backoff and, after five tries, into quarantine.
    """
    problem = _limit_problem(account, limits)
    return account if problem is None else _unfit(account, problem)


def _unfit(account: DesiredAccount, problem: str) -> Conflict:
    """The conflict of an account with a value no portal (or not this one) can hold."""
    reason = f"{describe(account)}: {problem}; the account is synced on the next cycle"
    return Conflict(
        account.key,
        account.symbol,
        account.name,
        account.login,
        ConflictKind.PORTAL_LIMIT,
        reason,
    )


def _texts(account: DesiredAccount) -> Iterator[tuple[str, str, str]]:
    """Every text value of the account: (limit name, how a person reads it, value)."""
    fields = account.fields()
    for name, value in fields.items():
        if name != "contacts" and isinstance(value, str):
            yield name, name, value
    for position, contact in enumerate(fields["contacts"], start=1):
        for name, value in contact.items():
            if isinstance(value, str):
                yield f"contacts.{name}", f"contact #{position} {name}", value


def _over_a_length(account: DesiredAccount, lengths: Mapping[str, int]) -> bool:
    """Whether a value named in ``lengths`` may be too long: read from the account's
    attributes (no fields dict built). False only when every such value fits; True sends
    ``_limit_problem`` through ``_texts``, which says which value and in which order."""
    for name, limit in lengths.items():
        if name.startswith("contacts."):
            attribute = name[len("contacts.") :]
            for contact in account.contacts:
                value = getattr(contact, attribute, None)
                if isinstance(value, str) and len(value) > limit:
                    return True
        elif name == "discount":
            return True  # a formatted value: left to ``_texts``
        else:
            value = getattr(account, name, None)
            if isinstance(value, str) and len(value) > limit:
                return True
    return False


def _limit_problem(account: DesiredAccount, limits: PortalLimits) -> str | None:
    texts = _texts(account) if _over_a_length(account, limits.lengths) else iter(())
    for name, what, value in texts:
        limit = limits.lengths.get(name)
        if limit is not None and len(value) > limit:
            return (
                f"{what} is {len(value)} characters long but the portal holds at most "
                f"{limit}: shorten it in the ERP"
            )
    top = limits.max_discount
    if top is not None and abs(account.discount.quantize(Decimal("0.01"))) > top:
        return (
            f"discount {format_discount(account.discount)}% is out of range: the portal holds "
            f"at most {top}%; correct it in the ERP"
        )
    return None


def map_all(
    contractors: Iterable[SourceContractor], *, login_by: str = "email"
) -> Iterator[DesiredAccount | Conflict]:
    """Map a stream of contractors lazily, so a 200,000-row ERP is never held twice."""
    for contractor in contractors:
        yield map_contractor(contractor, login_by=login_by)
