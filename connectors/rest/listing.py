"""Reading a REST portal's accounts: the pages of a listing, and a listed item as an account.

Paging follows ``portal.pagination``: page numbers, an offset, a cursor found in each
answer, or the ``Link`` header's rel="next". Every style stops on an empty or short page
and refuses to loop: a page that repeats the previous one stops the listing with the
portal unavailable, rather than reading forever.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import urljoin

import requests

from connectors._http import HttpClient
from connectors.base import PortalAccount
from connectors.rest.config import Pagination, RestPortalConfig
from connectors.rest.templates import Request
from syncd.errors import PortalUnavailable
from syncd.model import SYNCED_FIELDS, format_discount

MAX_PAGES = 1_000_000  # a bound on any listing: 100 million accounts at 100 a page
CONTACT_KEYS = ("name", "email", "phone", "position", "is_primary", "receives_mail", "represents")
CONTACT_FLAGS = frozenset({"is_primary", "receives_mail", "represents"})  # read as booleans


def dig(document: Any, path: str) -> Any:
    """The value at a dotted ``path`` ("data.user.id", "items.0.id"); None when absent.
    An empty path is the document itself."""
    value = document
    for part in path.split(".") if path else ():
        if isinstance(value, Mapping):
            value = value.get(part)
        elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        else:
            return None
    return value


def items_in(document: Any, path: str, *, what: str) -> list[Any]:
    """The list of items at ``path`` of an answer (a lone object counts as one item)."""
    found = dig(document, path)
    if found is None:
        return []
    if isinstance(found, Mapping):
        return [found]
    if not isinstance(found, list):
        at = f"at {path!r}" if path else "as the whole answer"
        message = f"{what} has no list of accounts {at}: check portal.items_path"
        raise PortalUnavailable(message)
    return found


def json_of(response: requests.Response, *, what: str) -> Any:
    """The JSON document of an answer; a page that is not JSON stops the listing."""
    try:
        return response.json()
    except ValueError:
        where = f"{response.request.method} {response.request.path_url.split('?')[0]}"
        message = f"{what} answered {where} with something that is not JSON: check portal.url"
        raise PortalUnavailable(message) from None


def pages(client: HttpClient, first: Request, config: RestPortalConfig) -> Iterator[list[Any]]:
    """The listing's items, a page at a time. Raises ``PortalUnavailable``."""
    paging = config.pagination
    path, params = first.path, dict(first.params)
    if paging.style != "none" and paging.per_page_param:
        params[paging.per_page_param] = str(paging.per_page)
    number, offset, previous = paging.first_page, 0, None
    for _ in range(MAX_PAGES):
        if paging.style == "page":
            params[paging.page_param] = str(number)
        elif paging.style == "offset":
            params[paging.offset_param] = str(offset)
        response = client.request(first.method, path, params=params)
        document = json_of(response, what=client.what)
        items = items_in(document, config.items_path, what=client.what)
        if items and items == previous:
            message = f"{client.what} answers the same page again: check portal.pagination"
            raise PortalUnavailable(message)
        yield items
        if paging.style == "none" or not items:
            return
        previous = items
        if paging.style in ("page", "offset"):
            if len(items) < paging.per_page or _last_page(response, paging, number):
                return
            number, offset = number + 1, offset + len(items)
        elif paging.style == "cursor":
            cursor = dig(document, paging.cursor_path or "")
            if cursor in (None, ""):
                return
            params[paging.cursor_param] = str(cursor)
        else:
            following = response.links.get("next", {}).get("url")
            if not following:
                return
            path, params = urljoin(response.url, following), {}
    message = f"{client.what} has more than {MAX_PAGES} pages: check portal.pagination"
    raise PortalUnavailable(message)


def _last_page(response: requests.Response, paging: Pagination, number: int) -> bool:
    if paging.style != "page" or paging.total_pages_header is None:
        return False
    total = response.headers.get(paging.total_pages_header, "")
    return total.isdigit() and number >= int(total)


class Mapper:
    """A listed item as a ``PortalAccount``, through ``portal.fields`` and ``status_values``."""

    def __init__(self, config: RestPortalConfig) -> None:
        self._paths = dict(config.fields)
        self._id_path = self._paths.pop("id", "id")
        self.stored = frozenset(name for name in self._paths if name in SYNCED_FIELDS)
        self._statuses = {config.portal_status(s): s for s in config.status_values} | {
            config.portal_status(s): s for s in ("pending", "active", "blocked", "inactive")
        }

    def account(self, item: Any) -> PortalAccount | None:
        """The account in ``item``; None for an item without a login or an id."""
        login, account_id = dig(item, self._paths["login"]), dig(item, self._id_path)
        if login in (None, "") or account_id in (None, ""):
            return None
        status = _text(dig(item, self._paths["status"])) if "status" in self._paths else None
        return PortalAccount(
            id=str(account_id),
            login=str(login),
            contractor_key=self._text("contractor_key", item),
            # An account that carries no status of syncd's is an ordinary, usable one.
            status=self._statuses.get(status, status) if status else "active",
            block_reason=self._text("block_reason", item),
            fields={name: _field(name, dig(item, self._paths[name])) for name in self.stored},
        )

    def _text(self, name: str, item: Any) -> str | None:
        return _text(dig(item, self._paths[name])) if name in self._paths else None


def _text(value: Any) -> str | None:
    """Portals write "no value" as null or as "": both read as None."""
    return None if value in (None, "") else str(value)


def _field(name: str, value: Any) -> Any:
    if name == "contacts":
        items = value if isinstance(value, list) else []
        return [
            {
                key: bool(c.get(key)) if key in CONTACT_FLAGS else _text(c.get(key))
                for key in CONTACT_KEYS
            }
            for c in items
            if isinstance(c, Mapping)
        ]
    if name == "discount":
        try:
            return format_discount(Decimal(str(value)) if value not in (None, "") else Decimal(0))
        except InvalidOperation:
            return str(value)
    return _text(value)
