"""``portal.kind: rest`` configuration: every template is checked before any request."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from connectors.rest.config import RestPortalConfig
from connectors.rest.templates import UNCHANGED, Compiled, update_context
from syncd.config.base import FieldProblems

EXAMPLE = Path(__file__).parents[2] / "examples" / "portal-wordpress.yaml"


def _example() -> dict[str, Any]:
    values: dict[str, Any] = yaml.safe_load(EXAMPLE.read_text(encoding="utf-8"))["portal"]
    values.pop("password_file")
    values["password"] = "app password"  # noqa: S105 - a test value
    return values


def _problems(values: dict[str, Any]) -> list[str]:
    with pytest.raises(ValidationError) as caught:
        RestPortalConfig.model_validate(values)
    problems = []
    for error in caught.value.errors():
        cause = (error.get("ctx") or {}).get("error")
        assert isinstance(cause, FieldProblems), error
        problems += [".".join(path) + ": " + text for path, text, _ in cause.items]
    return problems


def _with(path: tuple[str, ...], value: Any) -> dict[str, Any]:
    values = copy.deepcopy(_example())
    target = values
    for part in path[:-1]:
        target = target[part]
    target[path[-1]] = value
    return values


def test_the_wordpress_example_is_valid() -> None:
    """examples/portal-wordpress.yaml passes the same checks check-config runs."""
    config = RestPortalConfig.model_validate(_example())
    assert config.operations.delete.params == {"force": "true", "reassign": "1"}


def test_a_syntax_error_names_the_key_and_the_line() -> None:
    """A body with a broken tag is reported at its key, with the template's line."""
    body = '{\n  "email": {{ email }},\n  "name": {{ name }\n}'
    assert _problems(_with(("operations", "create", "body"), body)) == [
        "operations.create.body: template error on line 3: unexpected '}'"
    ]


def test_an_unknown_variable_is_an_error_with_its_line() -> None:
    """A misspelt field fails with its name and line, not at the first sync."""
    body = '{\n  "email": {{ emial }}\n}'
    assert _problems(_with(("operations", "create", "body"), body)) == [
        "operations.create.body: template error on line 2: 'emial' is undefined"
    ]
    assert _problems(_with(("operations", "update", "path"), "/users/{{ idd }}")) == [
        "operations.update.path: template error on line 1: 'idd' is undefined"
    ]


def test_a_body_that_is_not_json_is_an_error() -> None:
    """Quotes around a value (which is JSON-encoded already) are caught."""
    body = '{"name": "{{ name }}"}'
    (problem,) = _problems(_with(("operations", "create", "body"), body))
    assert problem.startswith("operations.create.body: does not render to JSON")


def test_no_way_to_set_a_password_is_an_error() -> None:
    """Without set_password, the update body must take the password."""
    body = '{"name": {{ name }}}'
    (problem,) = _problems(_with(("operations", "update", "body"), body))
    assert problem.startswith('operations.update.body: has no "password"')


def test_unknown_fields_and_statuses_are_named() -> None:
    """A mapping of a field syncd does not have suggests the closest one."""
    values = _with(("fields", "prce_level"), "meta.x")
    values["status_values"] = {"blokced": "x"}
    problems = _problems(values)
    assert "fields.prce_level: not a syncd field (did you mean 'price_level'?)" in problems
    assert any(p.startswith("status_values.blokced: not a syncd status") for p in problems)


def test_an_update_sends_only_what_changed() -> None:
    """Unchanged fields, nested or not, are left out of an update's body."""
    config = RestPortalConfig.model_validate(_example())
    compiled = Compiled(config.operations.update)
    request = compiled.render(update_context("7", "K1", {"price_level": "Hurtowa"}))
    assert request.path == "/users/7"
    assert request.body == {"meta": {"b2b_price_level": "Hurtowa"}}
    assert UNCHANGED not in repr(compiled.render(update_context("7", "K1", {})).body)


def test_path_values_are_url_encoded() -> None:
    """A value in a path cannot add segments or a query."""
    config = RestPortalConfig.model_validate(
        _with(("operations", "delete", "path"), "/users/{{ id }}")
    )
    request = Compiled(config.operations.delete).render({"id": "7/../8?x=1"})
    assert request.path == "/users/7%2F..%2F8%3Fx%3D1"
