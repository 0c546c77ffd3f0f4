"""Which contractor a person means: ``K`` as an ERP id, a symbol or an account's login.

Every command that takes ``K`` (``plan``/``sync --contractor``, ``explain``, the support
commands) resolves it here, so each accepts the same three forms and an unknown ``K`` is
the same clear error everywhere instead of a silently empty result.
"""

from __future__ import annotations

from collections.abc import Iterable

from connectors.base import ContractorFacts, Source
from syncd.errors import UnknownContractor
from syncd.store import StateStore


def resolve(
    ident: str, *, source: Source | None, store: StateStore
) -> tuple[str, ContractorFacts | None]:
    """The contractor key ``ident`` names, and the ERP's facts about it when there are any.

    A login is looked up among the bindings; an id or symbol in the ERP first (whatever the
    contractor's scope), then among the bindings (a contractor deleted in the ERP still has
    its account until the next cycle). With ``portal.login: symbol`` an e-mail is not a
    login: it names the one account whose e-mail it is, and is refused when several share
    it. Raises ``UnknownContractor``.
    """
    wanted = ident.strip()
    if "@" in wanted:
        binding = store.find_binding_by_login(wanted.lower())
        key = binding.key if binding is not None else _by_email(wanted, store)
        return key, source.describe(key) if source is not None else None
    facts = source.describe(wanted) if source is not None else None
    if facts is not None:
        return facts.key, facts
    if store.binding(wanted) is not None:
        return wanted, None
    folded = wanted.casefold()
    matches = [
        b.key
        for b in store.load_bindings().values()
        if str(b.fields.get("symbol") or "").casefold() == folded
    ]
    if len(matches) == 1:
        return matches[0], None
    raise UnknownContractor(ident)


def _by_email(email: str, store: StateStore) -> str:
    """The key of the one account whose e-mail (not login) is ``email``."""
    folded = email.casefold()
    keys = sorted(
        b.key
        for b in store.load_bindings().values()
        if str(b.fields.get("email") or "").casefold() == folded
    )
    if len(keys) == 1:
        return keys[0]
    raise UnknownContractor(email, shared_by=tuple(keys))


def resolve_all(idents: Iterable[str], *, source: Source, store: StateStore) -> frozenset[str]:
    """The keys of ``--contractor K`` given several times; any unknown ``K`` is an error."""
    return frozenset(resolve(ident, source=source, store=store)[0] for ident in idents)
