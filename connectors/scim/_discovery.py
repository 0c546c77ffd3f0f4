"""What a SCIM server says about itself: ``/ServiceProviderConfig``, ``/ResourceTypes``,
``/Schemas`` (RFC 7644 section 4), boiled down to what the connector needs to know.

A server that does not publish a discovery endpoint is taken at its word elsewhere: the
Users endpoint is ``/Users``, PATCH works, there are no ETags, and an extension it does not
list is an extension it does not know.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import requests

from connectors._http import HttpClient
from connectors.scim.schema import (
    CORE_USER,
    EXTENSION_ATTRIBUTES,
    EXTENSION_MEANING,
    STATUS_ATTRIBUTE,
)

NOT_PUBLISHED = (404, 405, 501)  # answers of a server without that discovery endpoint


@dataclass(frozen=True, slots=True)
class Layout:
    """Where a User's synced fields go on this server.

    ``attributes`` are the extension's attribute names the server knows (lower-case, as
    SCIM attribute names are case-insensitive); empty when it does not know the extension.
    """

    urn: str
    block_reason_attribute: str
    attributes: frozenset[str] = frozenset()
    discount_is_number: bool = False  # a schema of the admin's own may make it ``decimal``

    def has(self, attribute: str) -> bool:
        """Whether the server stores this extension attribute."""
        return attribute.lower() in self.attributes


@dataclass(frozen=True, slots=True)
class ServerFacts:
    """The server's capabilities, and the notes ``doctor`` prints about them."""

    endpoint: str  # the Users endpoint, relative to the base URL
    etags: bool
    layout: Layout
    notes: tuple[str, ...] = ()


def discover(client: HttpClient, urn: str, block_reason_attribute: str) -> ServerFacts:
    """Read the three discovery endpoints. Raises ``PortalUnavailable``; an endpoint the
    server does not publish is a note, not an error."""
    notes: list[str] = []
    config = _read(client, "ServiceProviderConfig", notes)
    types = resources(_read(client, "ResourceTypes", notes))
    schemas = resources(_read(client, "Schemas", notes))
    etags = bool(_supported(config, "etag"))
    if config is not None and _supported(config, "patch") is False:
        notes.append(
            "portal.url: the SCIM server says it does not support PATCH; syncd updates users "
            "with PATCH only, so updates will fail: enable PATCH on the server"
        )
    user_type = next((t for t in types if t.get("schema") == CORE_USER), None)
    endpoint = str(user_type.get("endpoint") or "/Users") if user_type else "/Users"
    listed = {
        str(e.get("schema", "")).lower()
        for e in (user_type or {}).get("schemaExtensions") or []
        if isinstance(e, Mapping)
    }
    schema = next((s for s in schemas if str(s.get("id", "")).lower() == urn.lower()), None)
    # Listed for Users when the server publishes resource types, else at least published.
    known = urn.lower() in listed if types else schema is not None
    layout = Layout(urn, block_reason_attribute)
    if not known:
        notes.append(
            f"portal.extension: the SCIM server does not know schema {urn}; "
            f"{EXTENSION_MEANING} are not synced, and blocked accounts look inactive there: "
            f"load the schema on the server (or set portal.extension to the one it has)"
        )
    else:
        attributes = _attributes(schema) if schema else _all_attributes(block_reason_attribute)
        layout = Layout(
            urn,
            block_reason_attribute,
            attributes,
            discount_is_number=_type_of(schema, "discount") in ("decimal", "integer"),
        )
        missing = [
            name
            for name in (*EXTENSION_ATTRIBUTES.values(), STATUS_ATTRIBUTE, block_reason_attribute)
            if not layout.has(name)
        ]
        if missing:
            notes.append(
                f"portal.extension: schema {urn} on the SCIM server lacks the attribute(s) "
                f"{', '.join(missing)}; those are not synced: add them to the schema there"
            )
    return ServerFacts(endpoint, etags, layout, tuple(notes))


def _read(client: HttpClient, name: str, notes: list[str]) -> Mapping[str, Any] | None:
    response = client.request("GET", name, allow=NOT_PUBLISHED)
    if response.status_code in NOT_PUBLISHED:
        notes.append(
            f"portal.url: the SCIM server does not publish /{name} (HTTP "
            f"{response.status_code}); syncd assumes the RFC 7644 defaults"
        )
        return None
    body = json_body(response)
    return body if isinstance(body, Mapping) else None


def json_body(response: requests.Response) -> Any:
    """The response's JSON, or None when it has none (a 204, or not JSON at all)."""
    try:
        return response.json()
    except ValueError:
        return None


def resources(body: Any) -> list[dict[str, Any]]:
    """The resources of a SCIM ListResponse (none when ``body`` is not one)."""
    items = body.get("Resources") if isinstance(body, Mapping) else None
    return [item for item in items if isinstance(item, dict)] if isinstance(items, list) else []


def _supported(config: Mapping[str, Any] | None, feature: str) -> bool | None:
    part = (config or {}).get(feature)
    if not isinstance(part, Mapping):
        return None
    return bool(part.get("supported"))


def _attributes(schema: Mapping[str, Any]) -> frozenset[str]:
    found = schema.get("attributes") or []
    return frozenset(
        str(a.get("name", "")).lower() for a in found if isinstance(a, Mapping) and a.get("name")
    )


def _all_attributes(block_reason_attribute: str) -> frozenset[str]:
    names = (*EXTENSION_ATTRIBUTES.values(), STATUS_ATTRIBUTE, block_reason_attribute)
    return frozenset(name.lower() for name in names)


def _type_of(schema: Mapping[str, Any] | None, name: str) -> str | None:
    for attribute in (schema or {}).get("attributes") or []:
        if isinstance(attribute, Mapping) and str(attribute.get("name", "")).lower() == name:
            return str(attribute.get("type", "")).lower() or None
    return None
