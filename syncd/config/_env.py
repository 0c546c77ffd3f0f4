"""Resolves ``${ENV_NAME}`` references and ``<secret>_file`` keys before validation.

Runs on the raw YAML mapping so that validation sees final values. Every problem is
collected (never raised on the first one) and carries the YAML path it belongs to. Secret
values read here are remembered so that no problem message can ever echo them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from syncd.config._values import url_secrets

KeyPath = tuple[str, ...]

# ${NAME} is replaced; $${NAME} is a literal ${NAME}.
_REFERENCE = re.compile(r"\$(\$?)\{([^{}]*)\}")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_FILE_SUFFIX = "_file"


@dataclass
class Resolved:
    """The mapping with references resolved, and what went wrong on the way."""

    data: dict[str, Any]
    problems: list[tuple[KeyPath, str]] = field(default_factory=list)
    # Keys whose value could not be resolved: validation errors there would only repeat it.
    unresolved: set[KeyPath] = field(default_factory=set)
    # Every secret value seen, to be scrubbed from any message.
    secrets: set[str] = field(default_factory=set)


def resolve(
    data: Mapping[Any, Any],
    *,
    environ: Mapping[str, str],
    base_dir: Path | None,
    secret_paths: frozenset[KeyPath],
) -> Resolved:
    """Substitute environment variables everywhere and read every ``<secret>_file``."""
    resolver = _Resolver(environ, base_dir, secret_paths)
    resolver.result.data = resolver.mapping(data, ())
    return resolver.result


class _Resolver:
    def __init__(
        self, environ: Mapping[str, str], base_dir: Path | None, secret_paths: frozenset[KeyPath]
    ) -> None:
        self.environ = environ
        self.base_dir = base_dir
        self.secret_paths = secret_paths
        self.result = Resolved(data={})

    def mapping(self, raw: Mapping[Any, Any], path: KeyPath) -> dict[str, Any]:
        out: dict[str, Any] = {}
        keys = {_key_name(key) for key in raw}
        for raw_key, value in raw.items():
            key = _key_name(raw_key)
            target = key.removesuffix(_FILE_SUFFIX)
            if key.endswith(_FILE_SUFFIX) and (*path, target) in self.secret_paths:
                if target in keys:
                    self.problem(
                        (*path, key), f"give either {target} or {key}, not both", unresolved=False
                    )
                    continue
                secret = self.read_file(value, (*path, key))
                if secret is None:
                    self.result.unresolved.add((*path, target))
                else:
                    out[target] = secret
                    self.remember((*path, target), secret)
            else:
                out[key] = self.value(value, (*path, key))
                self.remember((*path, key), out[key])
        return out

    def value(self, value: Any, path: KeyPath) -> Any:
        if isinstance(value, Mapping):
            return self.mapping(value, path)
        if isinstance(value, list):
            return [self.value(item, (*path, str(index))) for index, item in enumerate(value)]
        if isinstance(value, str):
            return self.expand(value, path)
        return value

    def expand(self, text: str, path: KeyPath) -> str:
        """Replace each ``${NAME}``; an unset or malformed one is a problem at ``path``."""
        missing: list[str] = []
        malformed: list[str] = []

        def substitute(match: re.Match[str]) -> str:
            escaped, name = match.group(1), match.group(2)
            if escaped:
                return "${" + name + "}"
            if not _NAME.fullmatch(name):
                malformed.append(match.group(0))
            elif name not in self.environ:
                missing.append(name)
            else:
                return self.environ[name]
            return match.group(0)

        expanded = _REFERENCE.sub(substitute, text)
        if malformed:
            self.problem(
                path,
                f"{', '.join(malformed)} is not a valid reference: write ${{NAME}} with a "
                "letter or _ first (or $${ for a literal ${)",
            )
        if missing:
            self.problem(path, _unset_message(missing))
        return expanded

    def read_file(self, value: Any, path: KeyPath) -> str | None:
        """The file's text without one trailing newline, or None after noting a problem."""
        if not isinstance(value, str) or not value.strip():
            self.problem(path, "must be the path of a file that holds the secret")
            return None
        before = len(self.result.problems)
        expanded = self.expand(value, path)
        if len(self.result.problems) > before:
            return None
        file = Path(expanded).expanduser()
        if not file.is_absolute() and self.base_dir is not None:
            file = self.base_dir / file
        try:
            text = file.read_bytes().decode("utf-8")
        except OSError as error:
            self.problem(path, f"cannot read {file}: {error.strerror or error}")
            return None
        except UnicodeDecodeError:
            self.problem(path, f"{file} is not UTF-8 text")
            return None
        text = text.removesuffix("\n").removesuffix("\r")
        if not text:
            self.problem(path, f"{file} is empty")
            return None
        return text

    def remember(self, path: KeyPath, value: Any) -> None:
        if path in self.secret_paths and isinstance(value, str):
            # A URL is shown with its password hidden, so only the password is scrubbed.
            self.result.secrets.update(url_secrets(value) if path[-1] == "url" else [value])

    def problem(self, path: KeyPath, message: str, *, unresolved: bool = True) -> None:
        self.result.problems.append((path, message))
        if unresolved:
            self.result.unresolved.add(path)


def _unset_message(names: list[str]) -> str:
    listed = ", ".join(names)
    if len(names) == 1:
        message = f"environment variable {listed} is not set"
    else:
        message = f"environment variables {listed} are not set"
    if "CREDENTIALS_DIRECTORY" in names:
        return (
            message + ": systemd sets it only for a service with LoadCredential=; when running "
            "by hand, give the credential file's full path instead"
        )
    return message + ": set it (under systemd: Environment= or EnvironmentFile= in a drop-in)"


def _key_name(key: Any) -> str:
    """A key as the admin wrote it, as far as YAML lets us know (``on:`` arrives as True)."""
    if isinstance(key, bool):
        return "true" if key else "false"
    return "null" if key is None else str(key)
