"""One portal operation as SCIM requests: create (after a look-up, so a re-run never
duplicates), PATCH (with ``If-Match`` when the server versions its users), DELETE, and the
``password`` attribute.

Each function returns the account id or raises: ``RecordError`` (``LoginTaken``) for this
record, ``PortalUnavailable`` when the portal failed. ``waves`` orders a batch so that
requests in flight together never touch the same account.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any
from urllib.parse import quote

from connectors._http import HttpClient, HttpConflict
from connectors.base import (
    CreateAccount,
    DeleteAccount,
    PortalAccount,
    PortalOp,
    SetPassword,
    UpdateAccount,
)
from connectors.scim._discovery import ServerFacts, json_body, resources
from connectors.scim._users import new_user, patch_operations, stored_fields, to_account
from connectors.scim.schema import PATCH_OP
from syncd.errors import AccountGone, LoginTaken, RecordError

PRECONDITION_TRIES = 3  # PATCHes refused with 412 (changed meanwhile) before giving up


def find(
    client: HttpClient, facts: ServerFacts, login: str, *, key: str | None = None
) -> PortalAccount | None:
    """The user whose ``userName`` is ``login`` (compared case-insensitively), or None."""
    return find_many(client, facts, [login], key=key).get(login)


def find_many(
    client: HttpClient, facts: ServerFacts, logins: Sequence[str], *, key: str | None = None
) -> dict[str, PortalAccount]:
    """The users whose ``userName`` is one of ``logins`` (case-insensitively), by the login
    as asked for, in one filtered request (``userName eq "a" or userName eq "b"``).

    Raises ``RecordError`` when the server refuses the filter, ``PortalUnavailable``.
    """
    # A SCIM filter's string is a JSON string: quotes and backslashes escaped.
    terms = [f"userName eq {json.dumps(login, ensure_ascii=False)}" for login in logins]
    # count: room for every match even if the server holds two spellings of one login.
    params = {"filter": " or ".join(terms), "count": 2 * len(logins)}
    body = json_body(client.request("GET", facts.endpoint, key=key, params=params))
    asked = {login.lower(): login for login in logins}
    found: dict[str, PortalAccount] = {}
    for user in resources(body):
        login = asked.get(str(user.get("userName", "")).lower())
        if login is not None:
            found[login] = to_account(user, facts.layout, stored_fields(facts.layout))
    return found


def write(client: HttpClient, facts: ServerFacts, op: PortalOp) -> str:
    """Apply one operation; the account id. Raises ``RecordError``/``PortalUnavailable``."""
    if isinstance(op, CreateAccount):
        return _create(client, facts, op)
    path = f"{facts.endpoint.rstrip('/')}/{quote(op.account_id, safe='')}"
    if isinstance(op, DeleteAccount):
        client.request("DELETE", path, key=op.key, allow=(404,))  # 404: gone already
        return op.account_id
    if isinstance(op, SetPassword):
        return _set_password(client, path, op)
    return _update(client, facts, path, op)


def waves(ops: Sequence[PortalOp]) -> list[list[int]]:
    """Indexes of ``ops`` in the order to send them: deletes, then updates and passwords,
    then creates (so a login freed by a delete or a rename can be taken by a create); a
    new wave starts wherever an account (or a created login) would be touched twice."""
    phases: tuple[tuple[type, ...], ...] = (
        (DeleteAccount,),
        (UpdateAccount, SetPassword),
        (CreateAccount,),
    )
    found: list[list[int]] = []
    for phase in phases:
        wave: list[int] = []
        seen: set[str] = set()
        for index, op in enumerate(ops):
            if not isinstance(op, phase):
                continue
            target = (
                str(op.fields.get("login") or "").lower()
                if isinstance(op, CreateAccount)
                else op.account_id
            )
            if target in seen:
                found.append(wave)
                wave, seen = [], set()
            wave.append(index)
            seen.add(target)
        if wave:
            found.append(wave)
    return found


def _create(client: HttpClient, facts: ServerFacts, op: CreateAccount) -> str:
    login = str(op.fields.get("login") or "")
    if not login:
        message = f"contractor {op.key} has no login (e-mail): add an e-mail address in the ERP"
        raise RecordError(op.key, message)
    existing = find(client, facts, login, key=op.key)
    if existing is not None:
        if existing.contractor_key == op.key:
            return existing.id  # made by an earlier run that did not live to record it
        raise LoginTaken(op.key, login, existing.contractor_key)
    try:
        response = client.request(
            "POST", facts.endpoint, key=op.key, json=new_user(op, facts.layout)
        )
    except HttpConflict:
        raise LoginTaken(op.key, login, None) from None
    body = json_body(response)
    created = body.get("id") if isinstance(body, dict) else None
    if created:
        return str(created)
    location = response.headers.get("Location", "").rstrip("/")
    if location:
        return location.rsplit("/", 1)[-1]
    again = find(client, facts, login, key=op.key)
    if again is None:
        message = f"the portal accepted the account of contractor {op.key} but does not list it"
        raise RecordError(op.key, message + "; it is tried again on the next cycle")
    return again.id


def _update(client: HttpClient, facts: ServerFacts, path: str, op: UpdateAccount) -> str:
    operations = patch_operations(op.fields, facts.layout)
    if not operations:
        return op.account_id  # nothing this server stores has changed
    body = {"schemas": [PATCH_OP], "Operations": operations}
    for _ in range(PRECONDITION_TRIES):
        headers: dict[str, str] = {}
        if facts.etags:
            current = client.request("GET", path, key=op.key, allow=(404,))
            if current.status_code == 404:
                raise _gone(op)
            version = _version(current)
            if version:
                headers["If-Match"] = version
        response = client.request(
            "PATCH", path, key=op.key, json=body, headers=headers, allow=(404, 412)
        )
        if response.status_code == 404:
            raise _gone(op)
        if response.status_code != 412:
            return op.account_id
    message = (
        f"account {op.account_id} of contractor {op.key} kept changing in the portal while "
        "syncd updated it (HTTP 412); it is tried again on the next cycle"
    )
    raise RecordError(op.key, message)


def _set_password(client: HttpClient, path: str, op: SetPassword) -> str:
    operation = {"op": "replace", "path": "password", "value": op.password}
    body = {"schemas": [PATCH_OP], "Operations": [operation]}
    try:
        response = client.request("PATCH", path, key=op.key, json=body, allow=(404,))
    except RecordError as error:  # the portal's own words could quote the password
        message = f"{str(error).replace(op.password, '***')}: choose a password it accepts"
        raise RecordError(op.key, message) from None
    if response.status_code == 404:
        raise _gone(op)
    return op.account_id


def _gone(op: UpdateAccount | SetPassword) -> AccountGone:
    message = (
        f"account {op.account_id} of contractor {op.key} is gone from the portal; the "
        "cycle that updates it, or a full reconcile (`syncd sync --full`), creates it again"
    )
    return AccountGone(op.key, message)


def _version(response: Any) -> str | None:
    body = json_body(response)
    meta = body.get("meta") if isinstance(body, dict) else None
    version = meta.get("version") if isinstance(meta, dict) else None
    return str(version) if version else response.headers.get("ETag")
