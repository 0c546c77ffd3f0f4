"""``syncd explain K``: the whole story of one contractor, for "why has X no account?".

ERP row and scope decision, mapped fields and validation, binding, what the next cycle
would do, the current conflict, the portal's last refusals (backoff or quarantine), the
audit trail and the mail. Read-only everywhere.
"""

from __future__ import annotations

from typing import Any, TextIO

from syncd import backoff, lookup
from syncd._cycle_plan import portal_limits
from syncd._plan_duplicates import last_stored, warnings_for
from syncd._plan_items import conflict_json
from syncd._render import dump_json
from syncd.config import Config
from syncd.errors import ExitCode, UnknownContractor
from syncd.mail.bounces import undeliverable
from syncd.mapping import map_contractor, within_limits
from syncd.model import Conflict, DesiredAccount
from syncd.plan import PlanOptions, make_plan, resolve_creates
from syncd.recipient import choose_recipient
from syncd.store import Binding, RecordFailure
from syncd.wiring import Services, open_services


def collect(services: Services, ident: str) -> dict[str, Any]:
    """The explain document. Raises ``UnknownContractor`` when neither the ERP nor syncd
    knows ``ident`` (an id, a symbol or a login)."""
    key, facts = lookup.resolve(ident, source=services.source, store=services.store)
    store = services.store
    document: dict[str, Any] = {"key": key, "erp": facts.as_json() if facts else None}
    if facts is None:
        document["scope"] = "the ERP has no such contractor (deleted?)"
    else:
        document["scope"] = facts.scope
    mapped: Any = None
    if facts is not None and facts.in_scope:
        contractor = next(iter(services.source.contractors(keys=[key])), None)
        if contractor is not None:
            login_by = services.config.portal.login.value
            mapped = map_contractor(
                contractor,
                source_fingerprint=contractor.raw_fingerprint(login_by),
                login_by=login_by,
            )
            limits = portal_limits(services.portal)  # as the cycle maps it
            if limits is not None and isinstance(mapped, DesiredAccount):
                mapped = within_limits(mapped, limits)
    if isinstance(mapped, Conflict):
        document["mapping"] = {"conflict": conflict_json(mapped)}
    elif mapped is not None:
        document["mapping"] = {
            "fields": mapped.fields(),
            "warnings": list(mapped.warnings),
            "login_from": _login_from(mapped, services.config.portal.login.value),
        }
    binding = store.binding(key)
    document["binding"] = (
        {
            "account_id": binding.account_id,
            "login": binding.login,
            "status": binding.status,
            "erp_blocked": binding.erp_blocked,
            "support_block_reason": binding.support_block_reason,
            "since": binding.created_at.isoformat() if binding.created_at else None,
        }
        if binding
        else None
    )
    failure = store.record_failures([key]).get(key)
    document["failing"] = failure.as_json() if failure else None
    document["next_cycle"] = _planned(services, key, mapped, failure)
    stored = store.conflict(key)
    document["last_cycle_conflict"] = stored.reason if stored else None
    document["warnings"] = warnings_for(last_stored(store.last_runs(10)), key)
    document["history"] = [
        {
            "at": row.at.isoformat(),
            "action": row.action,
            "result": row.result,
            "actor": row.actor,
            "detail": row.detail,
        }
        for row in store.audit_for(key, limit=50)
    ]
    document["mail"] = [
        {
            "template": m.template,
            "to": m.recipient,
            "status": m.status,
            "not_before": m.not_before.isoformat(),
            "sent_at": m.sent_at.isoformat() if m.sent_at else None,
            "attempts": m.attempts,
            "last_error": m.last_error,
        }
        for m in store.mails(key=key)
    ]
    chain = services.config.mail.recipient
    document["recipient"] = _recipient(chain, mapped, binding)
    document["undeliverable"] = undeliverable(store, [key], chain=chain).get(key)
    return document


def _login_from(mapped: DesiredAccount, login_by: str) -> str:
    """Where the login comes from and where mail goes, in one sentence."""
    if login_by == "symbol":
        return (
            f"the symbol {mapped.symbol!r} is the login (portal.login: symbol); mail goes to "
            f"{mapped.email}, which other contractors may share"
        )
    return f"the e-mail {mapped.email} is the login and where mail goes (portal.login: email)"


def _recipient(chain: Any, mapped: Any, binding: Binding | None) -> dict[str, Any] | None:
    """Where mail goes and why: from the ERP row as it is now, else from the binding."""
    if isinstance(mapped, DesiredAccount):
        fields = {**mapped.fields(), **mapped.mail_fields()}
        chosen = choose_recipient(chain, fields, login=mapped.login)
    elif binding is not None:
        chosen = choose_recipient(chain, binding.fields, login=binding.login)
    else:
        return None
    return {"address": chosen.address, "source": chosen.source.value, "reason": chosen.reason}


def _planned(
    services: Services, key: str, mapped: Any, failure: RecordFailure | None
) -> dict[str, Any]:
    """What the next cycle would do for this one contractor (a light one, not asked for by
    key: a record in backoff or quarantine shows as deferred)."""
    config = services.config
    failing = {key: failure} if failure else {}
    bindings = services.store.load_bindings()
    options = PlanOptions(
        on_removed=config.portal.on_removed.value,
        erp_block_reason=config.source.erp_block_reason,
        only_keys=frozenset({key}),
        portal_fields=services.portal.stored_fields,
        deferred=backoff.not_due(failing, services.clock()),
    )
    plan = make_plan([mapped] if mapped is not None else [], bindings, options)
    if plan.create:
        existing = services.portal.find_by_logins([c.desired.login for c in plan.create])
        plan = resolve_creates(
            plan,
            existing,
            adopt_existing=config.portal.adopt_existing,
            portal_fields=services.portal.stored_fields,
        )
    document = plan.as_json()
    actions = {k: v for k, v in document.items() if isinstance(v, list) and v}
    return actions or {"nothing": "the account already matches the ERP"}


def explain(config: Config, ident: str, *, as_json: bool, out: TextIO) -> int:
    with open_services(config) as services:
        try:
            document = collect(services, ident)
        except UnknownContractor as error:
            if as_json:
                dump_json({"error": str(error)}, out)
            else:
                out.write(f"{error}\n")
            return int(error.exit_code)
    if as_json:
        dump_json(document, out)
    else:
        _print(document, out)
    return int(ExitCode.OK)


def _print(doc: dict[str, Any], out: TextIO) -> None:
    erp = doc["erp"]
    if erp is None:
        out.write(f"contractor {doc['key']}\n  ERP: no such contractor\n")
    else:
        out.write(f"contractor {doc['key']} {erp['symbol']} {erp['name'] or ''}\n")
        out.write(f"  ERP: e-mail {erp['email']!r}, blocked {erp['erp_blocked']}\n")
        for label, value in erp["details"].items():
            out.write(f"      {label}: {value}\n")
    out.write(f"  scope: {doc['scope']}\n")
    mapping = doc.get("mapping")
    if mapping and "conflict" in mapping:
        out.write(f"  mapping: CONFLICT: {mapping['conflict']['reason']}\n")
    elif mapping:
        out.write(f"  mapping: login {mapping['fields']['login']}: {mapping['login_from']}\n")
        for name, value in mapping["fields"].items():
            out.write(f"      {name}: {value!r}\n")
        for warning in mapping["warnings"]:
            out.write(f"      warning: {warning}\n")
    binding = doc["binding"]
    if binding:
        out.write(
            f"  account: id {binding['account_id']}, login {binding['login']}, "
            f"status {binding['status']}\n"
        )
        if binding["support_block_reason"]:
            out.write(f"      blocked by support: {binding['support_block_reason']}\n")
    else:
        out.write("  account: none\n")
    out.write("  next cycle:\n")
    for kind, items in doc["next_cycle"].items():
        if isinstance(items, list):
            for item in items:
                detail = item.get("reason") or item.get("changes") or ""
                out.write(f"      {kind}: {detail}\n")
        else:
            out.write(f"      {items}\n")
    failing = doc["failing"]
    if failing:
        state = "QUARANTINED" if failing["quarantined"] else f"next try {failing['retry_after']}"
        out.write(
            f"  portal refused it {failing['failures']} time(s) ({state}): {failing['error']}\n"
        )
        if failing["quarantined"]:
            out.write(
                "      not sent again until its ERP row changes; "
                f"`syncd sync --contractor {doc['key']}` retries it now\n"
            )
    for warning in doc["warnings"]:
        out.write(f"  warning: {warning}\n")
    if doc["last_cycle_conflict"]:
        out.write(f"  conflict at the last cycle: {doc['last_cycle_conflict']}\n")
    out.write(f"  history ({len(doc['history'])}):\n")
    for row in doc["history"]:
        out.write(f"      {row['at']}  {row['action']:<10} {row['result']:<5} {row['actor']}\n")
    out.write(f"  mail ({len(doc['mail'])}):\n")
    for mail in doc["mail"]:
        when = mail["sent_at"] or mail["not_before"]
        out.write(f"      {mail['template']:<14} to {mail['to']}  {mail['status']} {when}\n")
        if mail["last_error"]:
            out.write(f"          {mail['last_error']}\n")
    if doc["recipient"]:
        out.write(f"  {doc['recipient']['reason']}\n")
    if doc["undeliverable"]:
        out.write(f"  UNDELIVERABLE: {doc['undeliverable']['hint']}\n")


__all__ = ["collect", "explain"]
