"""Where each synced field sits in a SCIM User, and the extension schema a server must load.

The core User attributes (RFC 7643 section 4.1) carry what any SCIM server stores: the
login (``userName``), the name (``displayName`` and ``name.formatted``), the e-mail, the
phone, the address (``addresses[].formatted``), the contractor key (``externalId``, the
provisioning client's own identifier) and ``active``. The rest lives in syncd's extension
schema; ``extension_schema`` builds the document an administrator loads on the server.
"""

from __future__ import annotations

from typing import Any

from syncd.model import SYNCED_FIELDS

CORE_USER = "urn:ietf:params:scim:schemas:core:2.0:User"
PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
LIST_RESPONSE = "urn:ietf:params:scim:api:messages:2.0:ListResponse"

# Synced fields any SCIM server keeps in the core User attributes.
CORE_FIELDS: frozenset[str] = frozenset({"login", "name", "email", "phone", "address"})

# Synced fields kept in the extension, by the extension attribute that holds each.
EXTENSION_ATTRIBUTES: dict[str, str] = {
    "symbol": "symbol",
    "tax_id": "taxId",
    "price_level": "priceLevel",
    "discount": "discount",
    "owner_name": "ownerName",
    "owner_email": "ownerEmail",
    "contacts": "contacts",
    "customer_group": "customerGroup",
}
STATUS_ATTRIBUTE = "status"  # syncd's status: SCIM's active alone cannot tell pending apart

# A contact person's keys (``Contact.as_dict()``) by their sub-attribute names.
CONTACT_ATTRIBUTES: dict[str, str] = {
    "name": "name",
    "email": "email",
    "phone": "phone",
    "position": "position",
    "is_primary": "isPrimary",
    "receives_mail": "receivesMail",  # authorised to receive the company's mail
    "represents": "represents",  # authorised to represent the company
}
# The contact's roles: booleans, false when the server leaves them out.
CONTACT_FLAGS: tuple[str, ...] = ("is_primary", "receives_mail", "represents")

assert CORE_FIELDS | set(EXTENSION_ATTRIBUTES) == set(SYNCED_FIELDS), "a synced field has no home"

# What the extension's fields mean, for doctor's note when the server lacks the schema.
EXTENSION_MEANING = (
    "symbol, NIP, price level, discount, salesperson, contact persons and customer group"
)

_DESCRIPTIONS = {
    "symbol": "The contractor's symbol in the ERP.",
    "taxId": "The contractor's tax id (NIP).",
    "priceLevel": "The name of the contractor's price level, e.g. Hurtowa.",
    # A string, as syncd carries it everywhere: a JSON number may be rounded on the way.
    "discount": "The contractor's discount in percent with two decimals, e.g. 12.50.",
    "ownerName": "The salesperson looking after the contractor.",
    "ownerEmail": "The salesperson's e-mail address.",
    "customerGroup": "The name of the contractor's group in the ERP, e.g. Hurtownie.",
    STATUS_ATTRIBUTE: "syncd's account status: pending, active, blocked or inactive.",
}


def extension_schema(urn: str, *, block_reason_attribute: str = "blockReason") -> dict[str, Any]:
    """The RFC 7643 schema resource of syncd's extension, to load on the SCIM server."""
    attributes = [
        _attribute(name, "string", _DESCRIPTIONS[name])
        for name in EXTENSION_ATTRIBUTES.values()
        if name != "contacts"
    ]
    attributes.append(_attribute(STATUS_ATTRIBUTE, "string", _DESCRIPTIONS[STATUS_ATTRIBUTE]))
    attributes.append(
        _attribute(block_reason_attribute, "string", "Why the account is blocked (shown at login).")
    )
    contact_parts = [
        _attribute(
            sub,
            "boolean" if key in CONTACT_FLAGS else "string",
            f"The contact's {sub}.",
        )
        for key, sub in CONTACT_ATTRIBUTES.items()
    ]
    contacts = _attribute("contacts", "complex", "The contractor's contact persons, in order.")
    contacts.update(multiValued=True, subAttributes=contact_parts)
    attributes.append(contacts)
    return {
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Schema"],
        "id": urn,
        "name": "B2BAccount",
        "description": "A B2B portal account provisioned by syncd from the ERP.",
        "attributes": attributes,
    }


def _attribute(name: str, kind: str, description: str) -> dict[str, Any]:
    return {
        "name": name,
        "type": kind,
        "multiValued": False,
        "description": description,
        "required": False,
        "caseExact": False,
        "mutability": "readWrite",
        "returned": "default",
        "uniqueness": "none",
    }
