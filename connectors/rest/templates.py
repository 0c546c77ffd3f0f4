"""The REST portal's Jinja2 templates: compiled once, rendered per operation, checked early.

Paths and ``params`` render as text with every value URL-encoded (paths) or as given
(``params``, which ``requests`` encodes). Bodies render as JSON: every ``{{ value }}`` is
JSON-encoded, and ``{{ value | tojson }}`` says the same explicitly. Variables are strict:
an unknown name is an error, found by ``check_operations`` with a sample account when the
configuration is read, so a typo fails ``check-config``, not the first sync.

An update carries only the fields that changed; the others render as a marker that is
pruned from the JSON document, so one update template serves every partial update.
"""

from __future__ import annotations

import json
import secrets
import traceback
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import jinja2
from jinja2 import meta

from connectors.rest.config import SYNCED, Operation
from syncd.config.base import NO_VALUE

if TYPE_CHECKING:
    from connectors.rest.config import RestPortalConfig

UNCHANGED = "\x00syncd:unchanged\x00"  # stands for a field an update leaves alone
SAMPLE_PASSWORD = "Sample-Password-1"  # noqa: S105 - used only to check the templates
SAMPLE_FIELDS: dict[str, Any] = {
    "login": "biuro@example.com",
    "symbol": "K001",
    "name": "Przedsiębiorstwo „Żuraw” Sp. z o.o.",
    "tax_id": "5213017228",
    "email": "biuro@example.com",
    "phone": "+48 22 123 45 67",
    "address": "ul. Świętokrzyska 12, 00-916 Warszawa",
    "price_level": "Hurtowa",
    "discount": "12.50",
    "owner_name": "Anna Nowak",
    "owner_email": "anna.nowak@example.com",
    "contacts": [
        {"name": "Zofia Łęcka", "email": "z@example.com", "phone": None, "position": None,
         "is_primary": True, "receives_mail": True, "represents": False},
    ],
    "customer_group": "Hurtownie",
}  # fmt: skip


class TemplateProblem(ValueError):
    """A template that cannot be compiled or rendered, or whose body is not JSON."""


class _Json(str):
    """Text that is already JSON (the output of ``tojson``): not encoded a second time."""

    __slots__ = ()


def _to_json(value: Any) -> _Json:
    if isinstance(value, jinja2.Undefined):
        str(value)  # StrictUndefined: raises UndefinedError naming the variable
    return _Json(json.dumps(value, ensure_ascii=False, default=_json_default))


def _json_default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    message = f"cannot put a {type(value).__name__} into JSON"
    raise TypeError(message)


def _body_value(value: Any) -> str:
    return value if isinstance(value, _Json) else _to_json(value)


def _path_value(value: Any) -> str:
    return "" if value is None else quote(str(value), safe="")


def _param_value(value: Any) -> str:
    return "" if value is None else str(value)


def _environment(finalize: Any) -> jinja2.Environment:
    env = jinja2.Environment(
        undefined=jinja2.StrictUndefined,
        autoescape=False,  # noqa: S701 - JSON and URLs, not HTML: finalize encodes values
        finalize=finalize,
    )
    env.filters["tojson"] = _to_json
    return env


_BODY = _environment(_body_value)
_PATH = _environment(_path_value)
_PARAM = _environment(_param_value)


@dataclass(frozen=True, slots=True)
class Request:
    """One rendered call: what ``HttpClient.request`` is given."""

    method: str
    path: str
    params: dict[str, str]
    body: Any  # the JSON document, or None for no body


class Compiled:
    """One operation's templates, compiled, and the variables they use."""

    def __init__(self, operation: Operation) -> None:
        self.operation = operation
        self._path = _compile(_PATH, operation.path, "path")
        self._params = {
            name: _compile(_PARAM, text, f"params.{name}")
            for name, text in operation.params.items()
        }
        self._body = None if operation.body is None else _compile(_BODY, operation.body, "body")
        sources = [operation.path, *operation.params.values(), operation.body or ""]
        self.uses = frozenset().union(
            *(meta.find_undeclared_variables(_BODY.parse(text)) for text in sources)
        )

    def render(self, context: Mapping[str, Any]) -> Request:
        """The call for ``context``. Raises ``TemplateProblem`` saying where and what."""
        path = _render(self._path, context, "path")
        params = {name: _render(t, context, f"params.{name}") for name, t in self._params.items()}
        body = None
        if self._body is not None:
            text = _render(self._body, context, "body")
            try:
                body = _prune(json.loads(text))
            except json.JSONDecodeError as error:
                message = (
                    f"body: does not render to JSON (line {error.lineno}, column "
                    f"{error.colno}: {error.msg}); write values bare, as in "
                    '"name": {{ name }}, without quotes around them'
                )
                raise TemplateProblem(message) from None
        return Request(self.operation.method, path, params, body)


def _compile(env: jinja2.Environment, source: str, where: str) -> jinja2.Template:
    try:
        return env.from_string(source)
    except jinja2.TemplateSyntaxError as error:
        message = f"{where}: template error on line {error.lineno}: {error.message}"
        raise TemplateProblem(message) from None


def _render(template: jinja2.Template, context: Mapping[str, Any], where: str) -> str:
    try:
        return template.render(context)
    except jinja2.TemplateError as error:
        line = _template_line(error)
        at = f" on line {line}" if line else ""
        message = f"{where}: template error{at}: {error.message or type(error).__name__}"
        raise TemplateProblem(message) from None
    except (TypeError, ValueError) as error:
        message = f"{where}: template error: {error}"
        raise TemplateProblem(message) from None


def _template_line(error: BaseException) -> int | None:
    frames = [f for f in traceback.extract_tb(error.__traceback__) if f.filename == "<template>"]
    return frames[-1].lineno if frames else None


def _prune(value: Any) -> Any:
    """``value`` without the unchanged markers; an object or list they emptied goes too."""
    pruned = _pruned(value)
    return type(value)() if pruned is _EMPTIED else pruned


def _pruned(value: Any) -> Any:
    if isinstance(value, dict):
        kept = {k: _pruned(v) for k, v in value.items() if v != UNCHANGED}
        kept = {k: v for k, v in kept.items() if v is not _EMPTIED}
        return _EMPTIED if value and not kept else kept
    if isinstance(value, list):
        items = [_pruned(v) for v in value if v != UNCHANGED]
        items = [v for v in items if v is not _EMPTIED]
        return _EMPTIED if value and not items else items
    if isinstance(value, str) and UNCHANGED in value:
        message = (
            "body: an update puts a value inside a longer text; give each field its own "
            'JSON value ("name": {{ name }}) so syncd can leave out the unchanged ones'
        )
        raise TemplateProblem(message)
    return value


_EMPTIED: Any = object()


def create_context(
    key: str, fields: Mapping[str, Any], status: str, block_reason: str | None
) -> dict[str, Any]:
    """Variables of a create: every synced field, ``contractor_key``, ``status`` (the
    portal's value), ``block_reason``, and ``password``: a random one nobody knows, for
    portals that insist on one (the account stays unusable until ``SetPassword``)."""
    context: dict[str, Any] = dict.fromkeys(SYNCED)
    context.update({name: value for name, value in fields.items() if name in SYNCED})
    context.update(
        contractor_key=key,
        status=status,
        block_reason=block_reason,
        password=secrets.token_urlsafe(24),
    )
    return context


def update_context(account_id: str, key: str, changes: Mapping[str, Any]) -> dict[str, Any]:
    """Variables of an update: ``id``, ``contractor_key``, and every field, ``status``,
    ``block_reason`` and ``password``, the ones not in ``changes`` marked unchanged."""
    names = (*SYNCED, "status", "block_reason", "password")
    context: dict[str, Any] = dict.fromkeys(names, UNCHANGED)
    context.update({name: value for name, value in changes.items() if name in names})
    context.update(id=account_id, contractor_key=key)
    return context


def check_operations(config: RestPortalConfig) -> list[tuple[tuple[str, ...], str, Any]]:
    """Compile and render every operation against a sample account; one problem per key."""
    status = config.portal_status("active")
    create = create_context("1001", SAMPLE_FIELDS, status, None)
    changed = {**SAMPLE_FIELDS, "status": status, "block_reason": "Zaległe płatności"}
    contexts: dict[str, list[dict[str, Any]]] = {
        "list": [{}],
        "find": [{"login": SAMPLE_FIELDS["login"]}],
        "create": [create],
        "update": [update_context("17", "1001", changed), update_context("17", "1001", {})],
        "deactivate": [update_context("17", "1001", {"status": config.portal_status("inactive")})],
        "delete": [{"id": "17", "contractor_key": "1001"}],
        "set_password": [{"id": "17", "contractor_key": "1001", "password": SAMPLE_PASSWORD}],
    }
    problems: list[tuple[tuple[str, ...], str, Any]] = []
    for name, samples in contexts.items():
        operation = getattr(config.operations, name)
        if operation is None:
            continue
        try:
            compiled = Compiled(operation)
            for context in samples:
                compiled.render(context)
        except TemplateProblem as problem:
            where, _, text = str(problem).partition(": ")
            problems.append((("operations", name, *where.split(".", 1)), text, NO_VALUE))
            continue
        if name == "update" and not _gives_passwords(config, compiled):
            message = (
                'has no "password": {{ password }} and there is no operations.set_password: '
                "add one of them, so syncd can give each account its password"
            )
            problems.append((("operations", "update", "body"), message, NO_VALUE))
    return problems


def _gives_passwords(config: RestPortalConfig, update: Compiled) -> bool:
    wants = str(getattr(config, "passwords", "set")) != "none"
    return not wants or config.operations.set_password is not None or "password" in update.uses
