"""``accounts find`` over the whole ERP: the accounts, and the contractors without one, with why.

Support searches by what the customer says (a name, a NIP, an e-mail, a symbol) and must
learn in one step both "this is the account" and "this one has none, because ...". The
accounts come from the bindings; the contractors without one from one streamed read of
every contractor in the ERP (``Source.directory``: symbol, name, e-mail, NIP and the scope
decision, nothing else): one in scope with the reason from the state store (a conflict, a
portal refusal, or simply not created yet), one out of scope with the ERP's own reason
(``Source.describe``, one query each, because the ERP says why per contractor only: the
first ``OUT_OF_SCOPE_SHOWN`` matches, the rest counted), and a query that is an exact id
the same way. When the ERP cannot be read, the state store's conflicts and
refusals are still searched and ``erp_error`` says what is missing.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from typing import Any

from syncd._search import Query
from syncd.errors import UnavailableError
from syncd.store import Binding, ConflictRow, RecordFailure
from syncd.wiring import Services

# What each kind of "no account" is called in ``why`` (the JSON) and the text output.
CONFLICT, QUARANTINED, RETRYING, NOT_YET, OUT_OF_SCOPE = (
    "conflict",
    "quarantined",
    "retrying",
    "not_created_yet",
    "out_of_scope",
)
# Out-of-scope matches described (one ERP query each); more are counted, not described.
OUT_OF_SCOPE_SHOWN = 20


def find_everywhere(
    services: Services, query: str, account_json: Callable[[Binding], dict[str, Any]]
) -> dict[str, Any]:
    """The ``accounts find`` document: ``results`` ranked (exact symbol or login first, then
    by name), each with ``account`` (has one) and ``reason``; ``accounts`` is the subset
    with an account, in the same order. ``account_json`` renders a binding."""
    store = services.store
    compiled = Query.parse(query)
    bindings = store.load_bindings()
    failures = store.record_failures()
    conflicts = {c.key: c for c in store.conflicts()}
    hits: list[tuple[tuple[bool, str, str], dict[str, Any]]] = []

    def add(fields: dict[str, Any], login: str, entry: dict[str, Any]) -> None:
        if compiled.matches(fields, login):
            rank = compiled.rank(fields, login)
            hits.append((rank, {**entry, "exact": not rank[0]}))

    for binding in bindings.values():
        note = _account_note(binding, conflicts.get(binding.key), failures.get(binding.key))
        add(binding.fields, binding.login, {**account_json(binding), "account": True, **note})
    for row in conflicts.values():
        if row.key not in bindings:
            fields: dict[str, Any] = {"symbol": row.symbol, "name": row.name}
            add(fields, row.login or "", _without(row.key, fields, row.login, *_conflict(row)))
    erp_error = None
    more = 0
    try:
        skip = bindings.keys() | conflicts.keys()
        erp_keys, more = _search_erp(services, compiled, add, skip, failures)
    except UnavailableError as error:
        erp_error = (
            f"the ERP could not be read ({error}): contractors without an account are listed "
            "only from syncd's own records (conflicts, portal refusals); search again when the "
            "ERP is back"
        )
        erp_keys = set()
        for key, failure in failures.items():
            if key not in bindings and key not in conflicts:
                fields = {"symbol": None, "name": None}
                entry = _without(key, fields, failure.login, *_refused(failure))
                add(fields, failure.login or "", entry)
    hits.sort(key=lambda hit: hit[0])
    results = [entry for _, entry in hits]
    if erp_error is None and not any(entry["exact"] for entry in results):
        listed = {entry["key"] for entry in results}
        results[:0] = _out_of_scope(services, query, erp_keys | set(bindings) | listed, erp_error)
    return {
        "query": query,
        "results": results,
        "accounts": [entry for entry in results if entry["account"]],
        "erp_error": erp_error,
        "more_out_of_scope": more,
    }


def _search_erp(
    services: Services,
    compiled: Query,
    add: Callable[[dict[str, Any], str, dict[str, Any]], None],
    skip: Collection[str],
    failures: dict[str, RecordFailure],
) -> tuple[set[str], int]:
    """Search every contractor of the ERP without an account (one streamed read of
    ``Source.directory``; ``skip``: those already listed). One in scope says why from
    syncd's records; the first ``OUT_OF_SCOPE_SHOWN`` out of scope say the ERP's reason.
    Returns the in-scope keys and how many more out-of-scope contractors matched."""
    in_scope: set[str] = set()
    outside: list[tuple[str, dict[str, Any]]] = []
    for entry in services.source.directory():
        if entry.in_scope:
            in_scope.add(entry.key)
        if entry.key in skip:
            continue
        fields = {
            "symbol": entry.symbol,
            "name": entry.name,
            "email": entry.email,
            "tax_id": entry.tax_id,
        }
        if not compiled.matches(fields, ""):
            continue
        if entry.in_scope:
            failure = failures.get(entry.key)
            why = _refused(failure) if failure else (NOT_YET, _not_yet(entry.key))
            add(fields, "", _without(entry.key, fields, None, *why))
        else:
            outside.append((entry.key, fields))
    outside.sort(key=lambda item: compiled.rank(item[1], ""))
    for key, fields in outside[:OUT_OF_SCOPE_SHOWN]:
        facts = services.source.describe(key)
        if facts is None or facts.in_scope:
            continue  # deleted, or entered scope, since the read: the next search says
        add(fields, "", _without(key, fields, None, OUT_OF_SCOPE, f"out of scope: {facts.scope}"))
    return in_scope, max(0, len(outside) - OUT_OF_SCOPE_SHOWN)


def _not_yet(key: str) -> str:
    return (
        "in scope, no account yet: the next cycle creates it "
        f"(`syncd plan --contractor {key}` shows how)"
    )


def _out_of_scope(
    services: Services, query: str, known: set[str], erp_error: str | None
) -> list[dict[str, Any]]:
    """The contractor whose id or symbol is exactly ``query``, when it is out of scope."""
    ident = query.strip()
    if erp_error is not None or not ident or any(c in ident for c in "*?"):
        return []
    try:
        facts = services.source.describe(ident)
    except UnavailableError:
        return []
    if facts is None or facts.in_scope or facts.key in known:
        return []
    fields = {"symbol": facts.symbol, "name": facts.name, "email": facts.email}
    entry = _without(facts.key, fields, None, OUT_OF_SCOPE, f"out of scope: {facts.scope}")
    return [{**entry, "exact": True}]


def _without(
    key: str, fields: dict[str, Any], login: str | None, why: str, reason: str
) -> dict[str, Any]:
    """One contractor without an account, shaped like an account entry plus the reason."""
    return {
        "key": key,
        "symbol": fields.get("symbol"),
        "name": fields.get("name"),
        "login": login,
        "tax_id": fields.get("tax_id"),
        "status": None,
        "account": False,
        "exact": False,
        "why": why,
        "reason": reason,
    }


def _conflict(row: ConflictRow) -> tuple[str, str]:
    return CONFLICT, f"in conflict ({row.kind}): {row.reason}"


def _refused(failure: RecordFailure) -> tuple[str, str]:
    """Why a record the portal refused has no account, and what to do."""
    if failure.quarantined:
        return QUARANTINED, (
            f"quarantined: the portal refused it {failure.failures} time(s) "
            f"({failure.last_error}); fix that, then `syncd sync --contractor {failure.key}`"
        )
    when = failure.retry_after.isoformat() if failure.retry_after else "at the next cycle"
    return RETRYING, (
        f"the portal refused it {failure.failures} time(s) ({failure.last_error}); "
        f"retried automatically, next try {when}"
    )


def _account_note(
    binding: Binding, conflict: ConflictRow | None, failure: RecordFailure | None
) -> dict[str, Any]:
    """An account's ``reason`` is a problem it has now: a conflict, or a portal refusal."""
    reason = None
    if conflict is not None:
        reason = _conflict(conflict)[1]
    elif failure is not None:
        reason = _refused(failure)[1]
    return {"why": None, "reason": reason}
