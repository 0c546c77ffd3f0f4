"""The password stage of a mail batch: fresh passwords for a chunk, set on the portal in one call.

Private to ``syncd.mail``. ``syncd.mail._batch`` runs ``set_passwords`` for chunk k+1 on a
background thread while it sends chunk k, so every core hashes (the SQL portal hashes a
chunk on all of them) while the mail server is fed. The plaintext passwords live only in
the ``PasswordsSet`` handed back, in this process, until the chunk's mails are rendered.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from connectors.base import OpOutcome, Portal, PortalOp, SetPassword
from syncd.config import Config
from syncd.config.base import Passwords
from syncd.errors import PortalUnavailable
from syncd.mail._rules import Live
from syncd.mail.render import PASSWORD_TEMPLATES
from syncd.passwords import generate_password
from syncd.store import MailRow


@dataclass(slots=True)
class PasswordsSet:
    """What the background stage hands back for one chunk: the passwords it generated and
    the portal's outcome for each (in the order of ``wanted``)."""

    wanted: list[Live]
    passwords: dict[int, str]
    outcomes: list[OpOutcome]


def setting_passwords(config: Config, live: list[Live]) -> bool:
    """Whether any mail of ``live`` needs a password set on the portal first."""
    if config.portal.passwords is Passwords.NONE:
        return False
    return any(row.template in PASSWORD_TEMPLATES for row, _ in live)


def set_passwords(
    portal: Portal, part: list[Live], typed_for: Callable[[MailRow], str | None]
) -> PasswordsSet:
    """Generate a password per password mail of ``part`` (or take the one a person typed,
    ``typed_for``) and hand them to the portal in one call; the portal connector hashes or
    sends each as its portal needs. With ``portal.passwords: none`` the portal keeps
    passwords itself: nothing is set, and the mail says how to set one there."""
    wanted = [(row, b) for row, b in part if row.template in PASSWORD_TEMPLATES]
    passwords: dict[int, str] = {}
    ops: list[PortalOp] = []
    for row, binding in wanted:
        password = typed_for(row) or generate_password()
        passwords[row.id] = password
        ops.append(SetPassword(row.key, binding.account_id, password))
    if not ops:
        return PasswordsSet(wanted, passwords, [])
    try:
        outcomes = portal.apply(ops)
    except PortalUnavailable as error:
        outcomes = [OpOutcome(op, error=error) for op in ops]
    return PasswordsSet(wanted, passwords, outcomes)
