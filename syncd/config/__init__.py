"""The configuration (spec section 3): the YAML file parsed once into frozen, typed sections.

    load_config(path) -> Config        read the file (path > $SYNCD_CONFIG > default path)
    parse_config(mapping) -> Config    the same checks for a mapping built in code (the demo)
    describe(config) -> dict           the effective configuration, secrets hidden (--json)

Every problem is collected and raised at once as ``ConfigError``, one line per problem,
path first. Values are converted at this boundary: ``"5m"`` is a ``timedelta``,
``"delete"`` an ``OnRemoved``.

Secrets are ``SecretStr``; call ``.get_secret_value()`` only where a connection is made.
The ``url`` of ``state``, ``source`` and ``portal`` is a plain ``str`` because connectors
need it as such, but it may hold a password: pass it to a connector, and print or log
only ``section.safe_url`` or ``describe(config)``. A separately given ``password`` is
merged into the URL by the SQL connectors (``connectors._sql.make_engine(url, password=)``).
"""

from __future__ import annotations

import functools
import os
from collections.abc import Mapping
from datetime import timedelta
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Union

from pydantic import BaseModel, Field, PrivateAttr, ValidationError, model_validator

from connectors import PORTALS, SOURCES
from syncd.config._env import resolve
from syncd.config._problems import from_validation, parse_yaml, render, without_repeats
from syncd.config._values import (
    SECRET,
    ListenAddress,
    RemovalLimit,
    format_duration,
    hide_url_secrets,
)
from syncd.config.base import OnRemoved, PortalSection, Section, SourceSection
from syncd.config.sections import (
    DEFAULT_STATE_URL,
    Language,
    MailConfig,
    MailRecipient,
    MailTransport,
    ObservabilityConfig,
    RetentionConfig,
    SafetyConfig,
    ScheduleConfig,
    SmtpConfig,
    SmtpSecurity,
    StateConfig,
    WebConfig,
)
from syncd.errors import ConfigError

__all__ = [
    "DEFAULT_PATH",
    "DEFAULT_STATE_URL",
    "Config",
    "ConfigError",
    "Language",
    "ListenAddress",
    "MailConfig",
    "MailRecipient",
    "MailTransport",
    "ObservabilityConfig",
    "OnRemoved",
    "PortalSection",
    "RemovalLimit",
    "RetentionConfig",
    "SafetyConfig",
    "ScheduleConfig",
    "SmtpConfig",
    "SmtpSecurity",
    "SourceSection",
    "StateConfig",
    "WebConfig",
    "describe",
    "load_config",
    "parse_config",
]

DEFAULT_PATH = Path("/etc/syncd/config.yaml")
DEFAULT_KINDS = {"source": "subiekt_gt", "portal": "sql"}

if TYPE_CHECKING:
    AnySource = SourceSection
    AnyPortal = PortalSection


class Config(Section):
    """The whole configuration. ``path`` is the file it was read from (None if built in code)."""

    state: StateConfig = Field(default_factory=StateConfig)
    source: AnySource
    portal: AnyPortal
    mail: MailConfig
    schedule: ScheduleConfig = Field(default_factory=ScheduleConfig)
    safety: SafetyConfig = Field(default_factory=SafetyConfig)
    observability: ObservabilityConfig = Field(default_factory=ObservabilityConfig)
    retention: RetentionConfig = Field(default_factory=RetentionConfig)
    web: WebConfig = Field(default_factory=WebConfig)

    _path: Path | None = PrivateAttr(default=None)

    @property
    def path(self) -> Path | None:
        """The file this configuration was read from, or None when built in code."""
        return self._path

    @model_validator(mode="before")
    @classmethod
    def _kinds(cls, data: Any) -> Any:
        """Fill in the default ``kind`` and accept it in any case, before the union picks."""
        if not isinstance(data, dict):
            return data
        data = dict(data)
        for section, default in DEFAULT_KINDS.items():
            value = data.get(section)
            if isinstance(value, dict):
                kind = value.get("kind", default)
                if isinstance(kind, str):
                    kind = kind.strip().lower()
                data[section] = {**value, "kind": kind}
        return data


def _secret_paths(model: type[BaseModel], prefix: tuple[str, ...] = ()) -> set[tuple[str, ...]]:
    found: set[tuple[str, ...]] = set()
    for name, info in model.model_fields.items():
        key = info.alias or name
        if SECRET in info.metadata:
            found.add((*prefix, key))
        nested: list[type[BaseModel]] = list(variants().get(key, {}).values()) if not prefix else []
        if isinstance(info.annotation, type) and issubclass(info.annotation, BaseModel):
            nested.append(info.annotation)
        for section in nested:
            found |= _secret_paths(section, (*prefix, key))
    return found


@functools.cache
def variants() -> dict[str, dict[str, type[Section]]]:
    """Each kind's section model, by section and ``kind``, from the connector registry.

    Imported on the first parse, not when this package is imported: a connector's config
    module imports ``syncd.config.base``, and ``syncd --help`` needs no model at all. The
    ``source`` and ``portal`` fields become discriminated unions on ``kind`` here, so each
    kind validates exactly its own keys.
    """
    found: dict[str, dict[str, type[Section]]] = {
        section: {name: kind.load_config() for name, kind in registry.items()}
        for section, registry in (("source", SOURCES), ("portal", PORTALS))
    }
    unions = {
        f"Any{section.title()}": Annotated[
            Union[tuple(models.values())],  # noqa: UP007 - a union built at run time
            Field(discriminator="kind"),
        ]
        for section, models in found.items()
    }
    Config.model_rebuild(_types_namespace=unions)
    return found


@functools.cache
def secret_paths() -> frozenset[tuple[str, ...]]:
    """Paths of every secret key, e.g. ("mail", "smtp", "password"), taken from the schema."""
    return frozenset(_secret_paths(Config))


def load_config(
    path: str | Path | None = None, *, environ: Mapping[str, str] = os.environ
) -> Config:
    """Read and validate the configuration file: ``path``, else $SYNCD_CONFIG, else default."""
    if path is not None:
        file, origin = Path(path), "given with --config"
    elif environ.get("SYNCD_CONFIG"):
        file, origin = Path(environ["SYNCD_CONFIG"]), "from SYNCD_CONFIG"
    else:
        file, origin = DEFAULT_PATH, "the default path"
    elsewhere = "point to another file with --config PATH or SYNCD_CONFIG=PATH"
    try:
        text = file.read_bytes().decode("utf-8")
    except FileNotFoundError:
        message = (
            f"{file}: configuration file not found ({origin}); create it from "
            f"config.example.yaml, or {elsewhere}"
        )
        raise ConfigError([message]) from None
    except OSError as error:
        message = (
            f"{file}: cannot read the configuration file: {error.strerror}; check the path "
            f"and its permissions, or {elsewhere}"
        )
        raise ConfigError([message]) from None
    except UnicodeDecodeError:
        raise ConfigError([f"{file}: is not UTF-8 text; save it as UTF-8"]) from None
    data = parse_yaml(text, str(file))
    config = _validate(data, environ=environ, base_dir=file.absolute().parent)
    config._path = file  # set once, by the only code that knows the file
    return config


def parse_config(
    data: Mapping[str, Any],
    *,
    environ: Mapping[str, str] = os.environ,
    base_dir: Path | None = None,
) -> Config:
    """Validate an already-loaded mapping; relative paths are taken from ``base_dir``."""
    return _validate(data, environ=environ, base_dir=base_dir)


def _validate(data: Any, *, environ: Mapping[str, str], base_dir: Path | None) -> Config:
    sections = list(Config.model_fields)
    if data is None:
        data = {}
    if not isinstance(data, Mapping):
        message = f"(top level): must be a mapping of sections ({', '.join(sections)})"
        raise ConfigError([message])
    kinds, secrets = variants(), secret_paths()
    resolved = resolve(data, environ=environ, base_dir=base_dir, secret_paths=secrets)
    problems = list(resolved.problems)
    try:
        config = Config.model_validate(resolved.data, context={"base_dir": base_dir})
    except ValidationError as error:
        found = from_validation(error, model=Config, secret_paths=secrets, variants=kinds)
        problems += without_repeats(found, resolved.unresolved)
        raise ConfigError(render(problems, order=sections, secrets=resolved.secrets)) from None
    if problems:
        raise ConfigError(render(problems, order=sections, secrets=resolved.secrets))
    return config


def describe(config: Config) -> dict[str, Any]:
    """The effective configuration as JSON-ready data, every secret shown as ``"***"``."""
    return _describe_section(config)


def _describe_section(section: BaseModel) -> dict[str, Any]:
    described: dict[str, Any] = {}
    for name, info in type(section).model_fields.items():
        value = getattr(section, name)
        key = info.alias or name
        if SECRET in info.metadata and value is not None:
            shown = hide_url_secrets(value) if isinstance(value, str) else None
            described[key] = shown or "***"
        else:
            described[key] = _plain(value)
    return described


def _plain(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return _describe_section(value)
    if isinstance(value, timedelta):
        return format_duration(value)
    if isinstance(value, StrEnum):
        return value.value
    if isinstance(value, Path | ListenAddress):
        return str(value)
    if isinstance(value, RemovalLimit):
        return value.count if value.count is not None else str(value)
    if isinstance(value, tuple):
        return [_plain(item) for item in value]
    return value
