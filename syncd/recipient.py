"""Where a contractor's mail goes: the first source of ``mail.recipient`` that has an address.

The login stays what it is; only the address mail is sent to is chosen here. The choice is
a pure function of an account's fields, so the mailer makes it at send time from the
binding (a mail that waited out ``send_delay`` goes to the address the ERP holds now, the
same way it follows a changed login) and ``explain`` makes it from the ERP row, with the
reason in words.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from syncd.config import MailRecipient
from syncd.mapping import normalise_email

__all__ = ["Recipient", "choose_recipient"]


@dataclass(frozen=True, slots=True)
class Recipient:
    """The chosen address and why: ``source`` is the chain's entry that gave it."""

    address: str
    source: MailRecipient
    reason: str  # "mail goes to anna@x.pl: contact person Anna Nowak is authorised ..."


def _contact(fields: Mapping[str, Any]) -> tuple[str, str] | None:
    """The first contact person authorised to receive mail who has a valid address."""
    for person in fields.get("contacts") or ():
        if person.get("receives_mail") and (address := normalise_email(person.get("email") or "")):
            return (
                address,
                f"contact person {person.get('name') or address} is authorised to receive mail",
            )
    return None


def _billing(fields: Mapping[str, Any]) -> tuple[str, str] | None:
    address = normalise_email(fields.get("billing_email") or "")
    return (address, "it is the billing e-mail") if address else None


_MISSING = {
    MailRecipient.CONTACT: "no contact person with an e-mail is authorised to receive mail",
    MailRecipient.BILLING: "there is no billing e-mail",
    MailRecipient.EMAIL: "there is no main e-mail",
}


def choose_recipient(
    chain: Sequence[MailRecipient], fields: Mapping[str, Any], *, login: str
) -> Recipient:
    """The address mail of the account with these synced ``fields`` (plus ``billing_email``)
    goes to. ``email`` falls back to ``login`` (the e-mail is the login by default), so a
    chain always ends with an address."""
    skipped: list[str] = []
    for index, source in enumerate(chain):
        where = f"mail.recipient[{index}]"
        found: tuple[str, str] | None
        if source is MailRecipient.CONTACT:
            found = _contact(fields)
        elif source is MailRecipient.BILLING:
            found = _billing(fields)
        else:
            address = fields.get("email") or login
            found = (address, "it is the contractor's main e-mail")
        if found is None:
            skipped.append(f"{_MISSING[source]} ({where})")
            continue
        address, why = found
        text = f"mail goes to {address}: {why}"
        if len(chain) > 1:
            text += f" ({where})"
        if skipped:
            text += "; " + "; ".join(skipped)
        return Recipient(address, source, text)
    address = fields.get("email") or login  # unreachable with a validated chain
    return Recipient(address, MailRecipient.EMAIL, f"mail goes to {address}: the main e-mail")
