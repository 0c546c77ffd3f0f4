"""What every configuration section is built from, including each connector kind's section.

A connector kind's own section (``connectors/<kind>/config.py``) subclasses ``SourceSection``
or ``PortalSection`` and declares ``kind`` as a ``Literal``: ``syncd.config`` turns the
registry's sections into a discriminated union on ``kind``, so each kind accepts only its
own keys and every error still names its YAML path (``source.query: ...``).

This module imports nothing of syncd's but the value parsers, so that a connector's config
module stays cheap to import.
"""

from __future__ import annotations

from datetime import timedelta
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PlainValidator,
    SecretStr,
    StringConstraints,
    ValidationInfo,
    model_validator,
)

from syncd.config._problems import NO_VALUE, FieldProblems
from syncd.config._values import (
    SECRET,
    check_database_url,
    check_http_url,
    enum_parser,
    hide_url_secrets,
    parse_duration,
    parse_mailbox,
    parse_positive_duration,
)

__all__ = [
    "NO_VALUE",
    "ConfigPath",
    "DatabaseUrl",
    "Duration",
    "FieldProblems",
    "HttpUrl",
    "LoginBy",
    "Mailbox",
    "OnRemoved",
    "Passwords",
    "PortalSection",
    "PositiveDuration",
    "Secret",
    "Section",
    "SourceSection",
    "SqlSourceSection",
    "Text",
    "secret_value",
]


def _relative_to_config(value: Path, info: ValidationInfo) -> Path:
    """A relative path is relative to the configuration file's directory, not the cwd."""
    base = (info.context or {}).get("base_dir")
    return base / value if isinstance(base, Path) and not value.is_absolute() else value


Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]
Duration = Annotated[timedelta, PlainValidator(parse_duration)]
PositiveDuration = Annotated[timedelta, PlainValidator(parse_positive_duration)]
Mailbox = Annotated[str, PlainValidator(parse_mailbox)]
ConfigPath = Annotated[Path, AfterValidator(_relative_to_config)]
HttpUrl = Annotated[str, AfterValidator(check_http_url)]
# Secrets: marked so they are never shown, and may be given as <key>_file.
Secret = Annotated[SecretStr | None, SECRET]
DatabaseUrl = Annotated[str, SECRET, Field(repr=False), AfterValidator(check_database_url)]


def secret_value(value: SecretStr | str | None) -> str | None:
    """The plain text of a secret, for the one place that makes a connection."""
    if value is None:
        return None
    return value.get_secret_value() if isinstance(value, SecretStr) else value


class Section(BaseModel):
    """A YAML section: frozen, unknown keys are errors, an empty section means defaults."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    @model_validator(mode="before")
    @classmethod
    def _empty_means_defaults(cls, data: Any) -> Any:
        return {} if data is None else data


class SourceSection(Section):
    """``source``: the keys every ERP kind has. A kind adds its own (``kind`` a Literal)."""

    kind: str
    erp_block_reason: Text = "Konto zablokowane w systemie ERP"


class SqlSourceSection(SourceSection):
    """A source read over SQLAlchemy: a database URL and a password merged into it."""

    url: DatabaseUrl
    password: Secret = None  # merged into url on connect

    @property
    def safe_url(self) -> str:
        """The URL with its password hidden, for output and logs."""
        return hide_url_secrets(self.url) or "***"


class OnRemoved(StrEnum):
    """What happens to the account of a contractor that leaves scope."""

    DELETE = "delete"
    DEACTIVATE = "deactivate"


class Passwords(StrEnum):
    """Who gives the customer a password: syncd (``set``, mailed with the activation) or
    the portal itself (``none``: the mail says how to set one there)."""

    SET = "set"
    NONE = "none"


class LoginBy(StrEnum):
    """What a portal account's login is: the contractor's e-mail, or its ERP symbol (the
    client number, as ISPadmin does: mail then only goes to the e-mail, which several
    contractors may share)."""

    EMAIL = "email"
    SYMBOL = "symbol"


class PortalSection(Section):
    """``portal``: the keys every portal kind has. A kind adds its own."""

    kind: str
    login: Annotated[LoginBy, PlainValidator(enum_parser(LoginBy))] = LoginBy.EMAIL
    on_removed: Annotated[OnRemoved, PlainValidator(enum_parser(OnRemoved))] = OnRemoved.DELETE
    adopt_existing: bool = False
    passwords: Annotated[Passwords, PlainValidator(enum_parser(Passwords))] = Passwords.SET

    @property
    def safe_url(self) -> str:
        """Where the portal is, for output and logs, with any secret hidden."""
        url = getattr(self, "url", None)
        return (hide_url_secrets(url) or "***") if isinstance(url, str) else self.kind


# Keeps the re-exported helpers visibly used for linters that do not read __all__.
_ = (NO_VALUE, FieldProblems)
