"""``portal.kind: rest``: a JSON REST portal described in YAML (operations, paging, fields).

Import-cheap like every config module: the Jinja2 templates are checked by
``connectors.rest.templates``, imported only when a ``rest`` section is validated, so a typo
in a body or path fails ``check-config`` at its own key before any request is made.
"""

from __future__ import annotations

import difflib
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, Field, model_validator

from connectors._http_config import HttpPortalSection
from syncd.config.base import NO_VALUE, FieldProblems, LoginBy, Section, Text

STATUSES = ("pending", "active", "blocked", "inactive")
# What a listed item can be mapped back to: the synced fields plus the account's own keys.
SYNCED = (
    "login", "symbol", "name", "tax_id", "email", "phone", "address", "price_level",
    "discount", "owner_name", "owner_email", "contacts", "customer_group",
)  # fmt: skip  # syncd.model.SYNCED_FIELDS, repeated to keep this module import-cheap
ACCOUNT_KEYS = ("id", "contractor_key", "status", "block_reason")


def _method(value: str) -> str:
    method = value.strip().upper()
    if method not in {"GET", "POST", "PUT", "PATCH", "DELETE"}:
        raise ValueError("must be one of GET, POST, PUT, PATCH, DELETE")
    return method


def _per_page(value: int) -> int:
    if not 1 <= value <= 10_000:
        raise ValueError("must be a whole number from 1 to 10000")
    return value


class Operation(Section):
    """One HTTP call: ``path`` and the ``params`` values are Jinja2 templates whose values
    are URL-encoded; ``body`` is a Jinja2 template of a JSON document whose values are
    JSON-encoded (``{{ name }}`` and ``{{ name | tojson }}`` both give a JSON value)."""

    method: Annotated[str, AfterValidator(_method)] = "GET"
    path: Text
    params: dict[str, str] = Field(default_factory=dict)
    body: str | None = None
    id_path: Text = "id"  # create: where the new account's id is in the answer
    items_path: str | None = None  # find: where the found items are (default: items_path)


class Operations(Section):
    """The portal's calls; ``deactivate`` and ``set_password`` fall back to ``update``."""

    list: Operation
    find: Operation | None = None  # by login; without it the listing is searched
    create: Operation
    update: Operation
    delete: Operation
    deactivate: Operation | None = None
    set_password: Operation | None = None


class Pagination(Section):
    """How the listing is paged: ``page`` numbers, an ``offset``, a ``cursor`` found in each
    answer, the ``link`` header's rel="next", or ``none``."""

    style: Literal["none", "page", "offset", "cursor", "link"] = "none"
    page_param: Text = "page"
    per_page_param: Text | None = "per_page"
    per_page: Annotated[int, AfterValidator(_per_page)] = 100
    offset_param: Text = "offset"
    first_page: int = 1
    total_pages_header: Text | None = None  # e.g. X-WP-TotalPages
    cursor_path: Text | None = None
    cursor_param: Text = "cursor"


def _default_status_values() -> dict[str, str]:
    return {status: status for status in STATUSES}


class RestPortalConfig(HttpPortalSection):
    """A JSON REST API: one ``Operation`` per account action, and how a listed item maps
    back onto syncd's fields (``fields``; what it maps is what the portal stores)."""

    kind: Literal["rest"] = "rest"
    api_key_header: Text | None = None  # send token in this header instead of as a bearer
    operations: Operations
    pagination: Pagination = Field(default_factory=Pagination)
    items_path: str = ""  # where the list of accounts is in a listing answer ("" = the answer)
    fields: dict[str, Text]
    status_values: dict[str, Text] = Field(default_factory=_default_status_values)

    @model_validator(mode="after")
    def _consistent(self) -> Any:
        problems = [*self._field_problems(), *self._status_problems(), *self._paging_problems()]
        if not problems:
            from connectors.rest.templates import check_operations

            problems = check_operations(self)
        if problems:
            raise FieldProblems(problems)
        return self

    def _field_problems(self) -> list[tuple[tuple[str, ...], str, Any]]:
        problems: list[tuple[tuple[str, ...], str, Any]] = []
        known = (*SYNCED, *ACCOUNT_KEYS)
        for name in self.fields:
            if name not in known:
                close = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
                hint = f"did you mean {close[0]!r}?" if close else f"one of {', '.join(known)}"
                problems.append((("fields", name), f"not a syncd field ({hint})", NO_VALUE))
        if "login" not in self.fields:
            message = "required: where a listed account's login is, e.g. login: username"
            problems.append((("fields", "login"), message, NO_VALUE))
        elif self.login is LoginBy.SYMBOL and self.fields["login"] == self.fields.get("email"):
            # The symbol would overwrite the e-mail (or the e-mail the login): one portal
            # field cannot hold both, so say so before any account is written.
            message = (
                f"symbol needs a login apart from the e-mail, but fields.login and fields.email "
                f"both read {self.fields['login']!r}: map login to the portal's user name, or "
                "keep portal.login: email"
            )
            problems.append((("login",), message, NO_VALUE))
        return problems

    def _status_problems(self) -> list[tuple[tuple[str, ...], str, Any]]:
        problems: list[tuple[tuple[str, ...], str, Any]] = []
        for status in self.status_values:
            if status not in STATUSES:
                message = f"not a syncd status (one of {', '.join(STATUSES)})"
                problems.append((("status_values", status), message, NO_VALUE))
        values = [self.status_values.get(s, s) for s in STATUSES]
        if len(set(values)) != len(values):
            message = "two syncd statuses map to one portal value: give each its own"
            problems.append((("status_values",), message, NO_VALUE))
        return problems

    def _paging_problems(self) -> list[tuple[tuple[str, ...], str, Any]]:
        if self.pagination.style == "cursor" and self.pagination.cursor_path is None:
            message = "required with style: cursor (where the next cursor is in an answer)"
            return [(("pagination", "cursor_path"), message, NO_VALUE)]
        if self.pagination.style == "offset" and self.pagination.per_page_param is None:
            message = "required with style: offset (the page size parameter, e.g. limit)"
            return [(("pagination", "per_page_param"), message, NO_VALUE)]
        return []

    def portal_status(self, status: str) -> str:
        """The portal's value for a syncd status."""
        return self.status_values.get(status, status)
