"""The REST portal's contract factories: the test server (``tests.rest_server``) and
WordPress (``tests.wordpress.site``), each with the YAML ``portal`` section that reaches it.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from connectors.base import Portal
from connectors.rest.config import RestPortalConfig
from connectors.rest.portal import RestPortal
from tests.rest_server import TOKEN, Server, running
from tests.wordpress.site import shared_site

# The test server's portal section, but for url: users nested with a dotted B2B part,
# cursor paging, find by ?login=, passwords through their own call.
CREATE_BODY = """{
  "username": {{ login }},
  "email": {{ email }},
  "name": {{ name }},
  "status": {{ status }},
  "block_reason": {{ block_reason }},
  "b2b": {
    "contractor_key": {{ contractor_key }},
    "symbol": {{ symbol }},
    "tax_id": {{ tax_id }},
    "phone": {{ phone }},
    "address": {{ address }},
    "price_level": {{ price_level }},
    "discount": {{ discount }},
    "owner": {"name": {{ owner_name }}, "email": {{ owner_email }}},
    "contacts": {{ contacts | tojson }},
    "customer_group": {{ customer_group }}
  }
}"""
# A PATCH merges objects deeply, so an update sends only what changed, nested or not.
UPDATE_BODY = CREATE_BODY


def section(url: str, **changes: Any) -> dict[str, Any]:
    """The ``portal`` section for a test server at ``url``."""
    values: dict[str, Any] = {
        "kind": "rest",
        "url": url,
        "token": TOKEN,
        "retry_budget": "20s",
        "items_path": "data",
        "pagination": {"style": "cursor", "cursor_path": "next_cursor", "per_page": 50},
        "operations": {
            "list": {"path": "/users"},
            "find": {"path": "/users", "params": {"login": "{{ login }}"}},
            "create": {"method": "POST", "path": "/users", "body": CREATE_BODY},
            "update": {"method": "PATCH", "path": "/users/{{ id }}", "body": UPDATE_BODY},
            "delete": {"method": "DELETE", "path": "/users/{{ id }}"},
            "set_password": {
                "method": "POST",
                "path": "/users/{{ id }}/password",
                "body": '{"password": {{ password }}}',
            },
        },
        "fields": {
            "id": "id",
            "login": "username",
            "email": "email",
            "name": "name",
            "status": "status",
            "block_reason": "block_reason",
            "contractor_key": "b2b.contractor_key",
            "symbol": "b2b.symbol",
            "tax_id": "b2b.tax_id",
            "phone": "b2b.phone",
            "address": "b2b.address",
            "price_level": "b2b.price_level",
            "discount": "b2b.discount",
            "owner_name": "b2b.owner.name",
            "owner_email": "b2b.owner.email",
            "contacts": "b2b.contacts",
            "customer_group": "b2b.customer_group",
        },
    }
    values.update(changes)
    return values


def portal_for(values: dict[str, Any]) -> RestPortal:
    """A ``RestPortal`` built from a ``portal`` section, as the registry builds it."""
    return RestPortal.from_config(RestPortalConfig.model_validate(values))


def start_server(request: pytest.FixtureRequest) -> Server:
    """A test server that lives until the test ends."""
    context = running()
    server = context.__enter__()
    request.addfinalizer(lambda: context.__exit__(None, None, None))
    return server


def make_rest_portal(
    request: pytest.FixtureRequest, tmp_path: Path
) -> tuple[Portal, dict[str, Any], Callable[[str, str], bool]]:
    """A ready portal on a fresh test server, its section, and the server's password check."""
    server = start_server(request)
    values = section(server.url)
    portal = portal_for(values)
    request.addfinalizer(portal.close)
    portal.ensure_ready()
    return portal, values, server.store.verify


def make_wordpress_portal(
    request: pytest.FixtureRequest, tmp_path: Path
) -> tuple[Portal, dict[str, Any], Callable[[str, str], bool]]:
    """A ready portal on the session's WordPress site (installed once per test run),
    emptied of every user but its administrator."""
    site = shared_site(request)
    site.empty()
    values = site.section()
    portal = portal_for(values)
    request.addfinalizer(portal.close)
    portal.ensure_ready()
    return portal, values, site.logs_in
