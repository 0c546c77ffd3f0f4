"""The plain-address fast path: most e-mail addresses checked without email-validator.

email-validator's full parse is most of a first sync's mapping CPU, and importing it (its
tables of rules) a tenth of loading the configuration; the plain addresses nearly every
ERP and every configuration hold need neither. ``syncd.mapping`` and ``syncd.config`` ask
``plain_login`` first and the library only when it answers None.
"""

from __future__ import annotations

import re

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
