"""Synced fields to SCIM Users and back: the body of a create, the PatchOp of an update, and
the ``PortalAccount`` a listed User stands for.

Status: SCIM's ``active`` is true only for an ``active`` account (a pending one has no
usable password yet, a blocked or inactive one must not log in). syncd's own status sits
in the extension's ``status`` attribute, because ``active`` alone cannot tell pending from
active or blocked from inactive; when someone flips ``active`` by hand in the portal, the
account reads as what ``active`` says, so the full reconcile puts it back.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

from connectors.base import CreateAccount, PortalAccount
from connectors.scim._discovery import Layout
from connectors.scim.schema import (
    CONTACT_ATTRIBUTES,
    CONTACT_FLAGS,
    CORE_FIELDS,
    CORE_USER,
    EXTENSION_ATTRIBUTES,
    STATUS_ATTRIBUTE,
)
from syncd.model import format_discount

STATUSES = frozenset({"pending", "active", "blocked", "inactive"})
# Multi-valued core attributes holding one synced value each, with the sub-attribute used.
_MULTI = {"email": ("emails", "value"), "phone": ("phoneNumbers", "value")}


def stored_fields(layout: Layout) -> frozenset[str]:
    """The synced fields a server with this layout keeps."""
    extension = {f for f, attribute in EXTENSION_ATTRIBUTES.items() if layout.has(attribute)}
    return CORE_FIELDS | extension


def new_user(op: CreateAccount, layout: Layout) -> dict[str, Any]:
    """The body of ``POST /Users`` for ``op``: core attributes and the extension's."""
    user: dict[str, Any] = {"schemas": [CORE_USER], "externalId": op.key}
    extension: dict[str, Any] = {}
    values = {**op.fields, "status": op.status, "block_reason": op.block_reason}
    for operation in patch_operations(values, layout):
        if operation["op"] != "replace":
            continue  # nothing to remove from a user that does not exist yet
        path, value = operation["path"], operation["value"]
        if path.startswith(layout.urn + ":"):
            extension[path.removeprefix(layout.urn + ":")] = value
        elif path == "name.formatted":
            user["name"] = {"formatted": value}
        else:
            user[path] = value
    if extension:
        user["schemas"].append(layout.urn)
        user[layout.urn] = extension
    return user


def patch_operations(fields: Mapping[str, Any], layout: Layout) -> list[dict[str, Any]]:
    """RFC 7644 PatchOp operations setting ``fields`` (synced fields, ``status``,
    ``block_reason``); what the server cannot store is left out, ``None`` removes."""
    operations: list[dict[str, Any]] = []

    def put(path: str, value: Any) -> None:
        empty = value is None or value == []
        operations.append({"op": "remove", "path": path} if empty else _replace(path, value))

    def put_extension(attribute: str, value: Any) -> None:
        if layout.has(attribute):
            put(f"{layout.urn}:{attribute}", value)

    for name, value in fields.items():
        if name == "login":
            put("userName", value)
        elif name == "name":
            put("displayName", value)
            put("name.formatted", value)
        elif name in _MULTI:
            attribute, _ = _MULTI[name]
            put(attribute, None if value is None else [_primary(value)])
        elif name == "address":
            put("addresses", None if value is None else [{"formatted": value, "type": "work"}])
        elif name == "status":
            operations.append(_replace("active", str(value) == "active"))
            put_extension(STATUS_ATTRIBUTE, str(value))
        elif name == "block_reason":
            put_extension(layout.block_reason_attribute, value)
        elif name == "discount":
            put_extension("discount", _discount_value(value, layout))
        elif name == "contacts":
            put_extension("contacts", [_contact_out(c) for c in value or []])
        elif name in EXTENSION_ATTRIBUTES:
            put_extension(EXTENSION_ATTRIBUTES[name], value)
        # anything else (a password hash) is nothing a SCIM server can take
    return operations


def to_account(user: Mapping[str, Any], layout: Layout, stored: frozenset[str]) -> PortalAccount:
    """The account a SCIM User stands for; ``fields`` holds the ``stored`` fields only."""
    extension = _lower_keys(_get(user, layout.urn) if layout.attributes else None)
    active = user.get("active")
    status = extension.get(STATUS_ATTRIBUTE.lower())
    if status not in STATUSES or (active is not None and bool(active) != (status == "active")):
        status = "active" if active is not False else "inactive"
    values: dict[str, Any] = {
        "login": user.get("userName"),
        "name": user.get("displayName") or _lower_keys(user.get("name")).get("formatted"),
        "email": _first(user.get("emails"), "value"),
        "phone": _first(user.get("phoneNumbers"), "value"),
        "address": _first(user.get("addresses"), "formatted"),
        "discount": _discount_read(extension.get("discount")),
        "contacts": [_contact_in(c) for c in extension.get("contacts") or [] if _is_map(c)],
    }
    for name, attribute in EXTENSION_ATTRIBUTES.items():
        values.setdefault(name, extension.get(attribute.lower()))
    reason = extension.get(layout.block_reason_attribute.lower())
    return PortalAccount(
        id=str(user.get("id")),
        login=str(user.get("userName") or ""),
        contractor_key=_text(user.get("externalId")),
        status=str(status),
        block_reason=_text(reason) if status == "blocked" else None,
        fields={name: value for name, value in values.items() if name in stored},
    )


def _replace(path: str, value: Any) -> dict[str, Any]:
    return {"op": "replace", "path": path, "value": value}


def _primary(value: Any) -> dict[str, Any]:
    return {"value": value, "type": "work", "primary": True}


def _discount_value(value: Any, layout: Layout) -> Any:
    if value is None:
        return None
    try:
        amount = Decimal(str(value))
    except InvalidOperation:
        return str(value)  # the server's own validation says what is wrong with it
    # A JSON number only where the server's schema wants one (two decimals survive a float).
    return float(amount) if layout.discount_is_number else format_discount(amount)


def _discount_read(value: Any) -> str:
    try:
        return format_discount(Decimal(str(value if value is not None else 0)))
    except InvalidOperation:
        return str(value)


def _contact_out(contact: Mapping[str, Any]) -> dict[str, Any]:
    out = {attribute: contact.get(key) for key, attribute in CONTACT_ATTRIBUTES.items()}
    for key in CONTACT_FLAGS:
        out[CONTACT_ATTRIBUTES[key]] = bool(out[CONTACT_ATTRIBUTES[key]])
    return {attribute: value for attribute, value in out.items() if value is not None}


def _contact_in(item: Mapping[str, Any]) -> dict[str, Any]:
    values = _lower_keys(item)
    contact = {key: values.get(attribute.lower()) for key, attribute in CONTACT_ATTRIBUTES.items()}
    for key in CONTACT_FLAGS:
        contact[key] = bool(contact[key])
    return contact


def _first(values: Any, sub: str) -> Any:
    """The sub-attribute of the primary value of a multi-valued attribute (else the first)."""
    items = [item for item in values or [] if _is_map(item)] if isinstance(values, list) else []
    chosen = next((item for item in items if item.get("primary")), items[0] if items else None)
    return None if chosen is None else chosen.get(sub)


def _get(mapping: Mapping[str, Any], name: str) -> Any:
    """A top-level attribute by name; SCIM attribute names and URNs are case-insensitive."""
    if name in mapping:
        return mapping[name]
    lowered = name.lower()
    return next((value for key, value in mapping.items() if key.lower() == lowered), None)


def _lower_keys(value: Any) -> dict[str, Any]:
    return {str(k).lower(): v for k, v in value.items()} if _is_map(value) else {}


def _is_map(value: Any) -> bool:
    return isinstance(value, Mapping)


def _text(value: Any) -> str | None:
    return None if value is None or value == "" else str(value)
