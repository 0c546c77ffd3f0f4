"""Turns what can go wrong while reading the configuration into one line per problem.

Every line starts with the YAML path (``portal.on_removed: must be one of delete,
deactivate (got 'remove')``) or, for a file that cannot be parsed, ``file:line:column``.
A secret's value is never shown (``(got <secret>)``), and as a last line of defence every
secret value seen while reading is scrubbed from every line.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from syncd.config._values import hide_url_secrets
from syncd.errors import ConfigError

KeyPath = tuple[str, ...]


class _Omitted:
    """Stands for "no offending value to show" in a ``FieldProblems`` item."""


NO_VALUE: Any = _Omitted()


class FieldProblems(ValueError):
    """Raised by a model validator with cross-field problems, each at its own sub-path.

    pydantic would report a plain ``ValueError`` at the section's path; this carries the
    exact key (``mail.smtp.host``) and the offending value of each problem instead.
    """

    def __init__(self, items: Sequence[tuple[KeyPath, str, Any]]) -> None:
        self.items = list(items)
        super().__init__("; ".join(".".join(path) + ": " + text for path, text, _ in items))


# What each pydantic error type means, said the way an admin editing YAML thinks of it.
_TYPE_MESSAGES = {
    "string_type": "must be text (put it in quotes)",
    "int_type": "must be a whole number",
    "int_parsing": "must be a whole number",
    "int_from_float": "must be a whole number",
    "bool_type": "must be true or false",
    "bool_parsing": "must be true or false",
    "model_type": "must be a section (indented key: value lines)",
    "model_attributes_type": "must be a section (indented key: value lines)",
    "dict_type": "must be a section (indented key: value lines)",
    "path_type": "must be a file system path",
    "string_too_short": "must not be empty",
}


class _Loader(yaml.SafeLoader):
    """PyYAML's safe loader, but a key given twice in one mapping is an error, not a shadow."""


def _mapping_without_duplicates(loader: _Loader, node: yaml.MappingNode) -> dict[Any, Any]:
    loader.flatten_mapping(node)
    seen: dict[Any, int] = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=True)
        if isinstance(key, str | int | float | bool) and key in seen:
            problem = f"key {key!r} is given twice (first on line {seen[key] + 1})"
            raise yaml.constructor.ConstructorError(None, None, problem, key_node.start_mark)
        if isinstance(key, str | int | float | bool):
            seen[key] = key_node.start_mark.line
    return loader.construct_mapping(node, deep=True)


_Loader.add_constructor(
    yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG,
    _mapping_without_duplicates,
)


def parse_yaml(text: str, name: str) -> Any:
    """The document in ``text``; a syntax error names ``name:line:column`` and what to do."""
    try:
        return yaml.load(text, Loader=_Loader)  # noqa: S506 - _Loader is a SafeLoader
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        where = f"{name}:{mark.line + 1}:{mark.column + 1}" if mark else name
        # Only the parser's words, never its snippet of the line: it may hold a password.
        what = " ".join(part for part in (error.context, error.problem) if part)
        message = (
            f"{where}: invalid YAML: {what or 'cannot parse'}; fix the file there (check the "
            "indentation, and quote values that contain ': ' or ' #' or start with "
            "{ [ * & ! % @ or `)"
        )
    except yaml.YAMLError as error:
        message = f"{name}: invalid YAML: {type(error).__name__}; fix the file"
    raise ConfigError([message])


# The sections whose model depends on their ``kind`` (``source``, ``portal``): for each, the
# model of every kind. pydantic puts the kind into an error's location
# (``source.subiekt_gt.feature``); the admin's YAML has no such level, so it is taken out.
Variants = Mapping[str, Mapping[str, type[BaseModel]]]


def from_validation(
    error: ValidationError,
    *,
    model: type[BaseModel],
    secret_paths: frozenset[KeyPath],
    variants: Variants | None = None,
) -> list[tuple[KeyPath, str]]:
    """One ``(path, message)`` per pydantic error, with cross-field problems expanded."""
    problems: list[tuple[KeyPath, str]] = []
    for details in error.errors():
        path, chosen = _untagged(tuple(str(part) for part in details["loc"]), variants or {})
        cause = (details.get("ctx") or {}).get("error")
        if isinstance(cause, FieldProblems):
            for subpath, text, value in cause.items:
                where = path + subpath
                problems.append((where, text + _got(where, value, secret_paths)))
            continue
        if details["type"] == "union_tag_invalid":
            kinds = ", ".join(variants[path[0]]) if variants and path[0] in variants else ""
            where = (*path, "kind")
            got = _got(where, (details.get("ctx") or {}).get("tag"), secret_paths)
            problems.append((where, f"must be one of {kinds}{got}"))
            continue
        problems.append((path, _message(details, path, model, secret_paths, chosen)))
    return problems


def _untagged(path: KeyPath, variants: Variants) -> tuple[KeyPath, dict[str, type[BaseModel]]]:
    """``path`` without the kind pydantic inserted, and the model chosen for the section."""
    if len(path) >= 2 and path[0] in variants and path[1] in variants[path[0]]:
        return (path[0], *path[2:]), {path[0]: variants[path[0]][path[1]]}
    if len(path) == 1 and path[0] in variants:  # the whole section is missing: the default
        return path, {path[0]: next(iter(variants[path[0]].values()))}  # kind comes first
    return path, {}


def _message(
    details: ErrorDetails,
    path: KeyPath,
    model: type[BaseModel],
    secret_paths: frozenset[KeyPath],
    chosen: Mapping[str, type[BaseModel]],
) -> str:
    kind = details["type"]
    parent = _model_at(model, path[:-1], chosen)
    if kind == "extra_forbidden":
        return _unknown_key(path[-1], parent, secret_paths, path[:-1])
    if kind == "missing":
        section = _model_at(model, path, chosen)
        if section is not None:
            needed = [name for name, info in section.model_fields.items() if info.is_required()]
            return f"required section is missing (it needs {', '.join(needed)})"
        return "required key is missing"
    cause = (details.get("ctx") or {}).get("error")
    if kind == "value_error" and cause is not None:
        text = str(cause)
    else:
        text = _TYPE_MESSAGES.get(kind) or details["msg"][:1].lower() + details["msg"][1:]
    return text + _got(path, details["input"], secret_paths)


def _unknown_key(
    key: str, parent: type[BaseModel] | None, secret_paths: frozenset[KeyPath], where: KeyPath
) -> str:
    if key in {"true", "false"}:
        return "unknown key (YAML reads an unquoted on, off, yes or no as true or false)"
    if parent is None:
        return "unknown key"
    fields = [info.alias or name for name, info in parent.model_fields.items()]
    allowed = fields + [f"{name}_file" for name in fields if (*where, name) in secret_paths]
    if key.endswith("_file") and key.removesuffix("_file") in fields:
        secrets = ", ".join(name for name in allowed if name.endswith("_file")) or "none here"
        return f"unknown key: only secrets can be read from a file ({secrets})"
    close = difflib.get_close_matches(key, allowed, n=1, cutoff=0.6)
    if close:
        return f"unknown key (did you mean {close[0]!r}?)"
    return f"unknown key (expected one of {', '.join(allowed)})"


def _model_at(
    model: type[BaseModel], path: KeyPath, chosen: Mapping[str, type[BaseModel]]
) -> type[BaseModel] | None:
    """The section model found by following ``path`` from ``model``, if there is one."""
    current: type[BaseModel] | None = model
    for depth, part in enumerate(path):
        if depth == 0 and part in chosen:
            current = chosen[part]
            continue
        info = _field(current, part) if current is not None else None
        annotation = info.annotation if info is not None else None
        is_model = isinstance(annotation, type) and issubclass(annotation, BaseModel)
        current = annotation if is_model else None
        if current is None:
            return None
    return current


def _field(model: type[BaseModel], key: str) -> Any:
    """The field behind a YAML key, which is the field's alias when it has one."""
    for name, info in model.model_fields.items():
        if (info.alias or name) == key:
            return info
    return None


def _got(path: KeyPath, value: Any, secret_paths: frozenset[KeyPath]) -> str:
    if value is NO_VALUE:
        return ""
    if path in secret_paths:
        shown = hide_url_secrets(value) if path[-1] == "url" and isinstance(value, str) else None
        return f" (got {shown!r})" if shown is not None else " (got <secret>)"
    if value is None:
        return " (got null)"
    if isinstance(value, bool):
        return f" (got {str(value).lower()})"
    if isinstance(value, dict):
        return " (got a section)"
    if isinstance(value, list | tuple):
        return " (got a list)"
    text = value if isinstance(value, str | int | float) else str(value)
    shown = repr(text) if len(repr(text)) <= 80 else repr(text)[:76] + "...'"
    return f" (got {shown})"


def without_repeats(
    problems: Iterable[tuple[KeyPath, str]], unresolved: set[KeyPath]
) -> list[tuple[KeyPath, str]]:
    """Drop validation problems at keys whose value could not even be resolved."""
    return [
        (path, text)
        for path, text in problems
        if not any(path[: len(done)] == done for done in unresolved)
    ]


def render(
    problems: Iterable[tuple[KeyPath, str]], *, order: Sequence[str], secrets: Iterable[str]
) -> list[str]:
    """``path: message`` lines, sections in ``order``, with every secret value scrubbed."""
    rank = {name: index for index, name in enumerate(order)}
    ranked = sorted(problems, key=lambda item: rank.get(item[0][0], len(rank)) if item[0] else -1)
    scrub = sorted((s for s in set(secrets) if len(s) >= 4), key=len, reverse=True)
    lines = []
    for path, text in ranked:
        line = f"{'.'.join(path) or '(top level)'}: {text}"
        for secret in scrub:
            line = line.replace(secret, "<secret>")
        lines.append(line)
    return lines
