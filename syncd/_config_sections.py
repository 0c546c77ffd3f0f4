"""The sections of the configuration: one frozen pydantic model per YAML section.

Values are converted here, at the boundary, by the parsers in ``_config_values``; cross-field
rules raise ``FieldProblems`` so that each problem names its own key. Import these names
from ``syncd.config``.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
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

from syncd._config_problems import NO_VALUE, FieldProblems
from syncd._config_values import (
    SECRET,
    ListenAddress,
    RemovalLimit,
    check_database_url,
    check_http_url,
    enum_parser,
    hide_url_secrets,
    parse_crontab,
    parse_duration,
    parse_listen,
    parse_mailbox,
    parse_positive_duration,
    parse_removal_limit,
)

DEFAULT_STATE_URL = "sqlite:////var/lib/syncd/state.db"


class SourceKind(StrEnum):
    """Which ERP the contractors are read from."""

    SUBIEKT_GT = "subiekt_gt"
    SUBIEKT_NEXO = "subiekt_nexo"
    SQL = "sql"  # any database, through source.query


class PortalKind(StrEnum):
    """How the portal's accounts are reached."""

    SQL = "sql"
    SCIM = "scim"
    REST = "rest"


class OnRemoved(StrEnum):
    """What happens to the account of a contractor that leaves scope."""

    DELETE = "delete"
    DEACTIVATE = "deactivate"


class MailTransport(StrEnum):
    """Where mail goes: an SMTP server, or .eml files in a directory."""

    SMTP = "smtp"
    FILE = "file"


class SmtpSecurity(StrEnum):
    """SMTP transport security: STARTTLS upgrade (587), implicit TLS (465), or none."""

    STARTTLS = "starttls"
    TLS = "tls"
    NONE = "none"


class Language(StrEnum):
    """The language of the mail templates."""

    PL = "pl"
    EN = "en"


def _relative_to_config(value: Path, info: ValidationInfo) -> Path:
    """A relative path is relative to the configuration file's directory, not the cwd."""
    base = (info.context or {}).get("base_dir")
    return base / value if isinstance(base, Path) and not value.is_absolute() else value


def _existing_directory(value: Path) -> Path:
    if not value.is_dir():
        raise ValueError(f"directory {value} does not exist")
    return value


def _port(value: int) -> int:
    if not 1 <= value <= 65535:
        raise ValueError("must be a port number from 1 to 65535")
    return value


def _positive(value: int) -> int:
    if value < 1:
        raise ValueError("must be a whole number greater than zero")
    return value


def _only_bcrypt(value: str) -> str:
    if value != "bcrypt":
        raise ValueError("must be bcrypt, the only password scheme syncd supports for now")
    return value


Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]
Duration = Annotated[timedelta, PlainValidator(parse_duration)]
PositiveDuration = Annotated[timedelta, PlainValidator(parse_positive_duration)]
Mailbox = Annotated[str, PlainValidator(parse_mailbox)]
ConfigPath = Annotated[Path, AfterValidator(_relative_to_config)]
HttpUrl = Annotated[str, AfterValidator(check_http_url)]
# Secrets: marked so they are never shown, and may be given as <key>_file.
Secret = Annotated[SecretStr | None, SECRET]
DatabaseUrl = Annotated[str, SECRET, Field(repr=False), AfterValidator(check_database_url)]


class Section(BaseModel):
    """A YAML section: frozen, unknown keys are errors, an empty section means defaults."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    @model_validator(mode="before")
    @classmethod
    def _empty_means_defaults(cls, data: Any) -> Any:
        return {} if data is None else data


class StateConfig(Section):
    """``state``: syncd's own database (bindings, outbox, audit trail, cycle lease)."""

    url: DatabaseUrl = DEFAULT_STATE_URL
    password: Secret = None  # merged into url on connect; not in spec §3, for LoadCredential=

    @property
    def safe_url(self) -> str:
        """The URL with its password hidden, for output and logs."""
        return hide_url_secrets(self.url) or "***"


class SourceConfig(Section):
    """``source``: the ERP, read-only."""

    kind: Annotated[SourceKind, PlainValidator(enum_parser(SourceKind))] = SourceKind.SUBIEKT_GT
    url: DatabaseUrl
    password: Secret = None  # merged into url on connect
    feature: Text
    erp_block_reason: Text = "Konto zablokowane w systemie ERP"
    query: Text | None = None  # kind sql: the SELECT that lists the contractors

    @property
    def safe_url(self) -> str:
        """The URL with its password hidden, for output and logs."""
        return hide_url_secrets(self.url) or "***"

    @model_validator(mode="after")
    def _query_for_sql_only(self) -> SourceConfig:
        if self.kind is SourceKind.SQL and self.query is None:
            message = "required when kind is sql: the SELECT that lists the contractors"
            raise FieldProblems([(("query",), message, NO_VALUE)])
        if self.kind is not SourceKind.SQL and self.query is not None:
            message = f"is used only with kind sql (kind is {self.kind.value}): remove it"
            raise FieldProblems([(("query",), message, NO_VALUE)])
        return self


class PortalConfig(Section):
    """``portal``: where the accounts live. ``url`` is a database URL for kind sql."""

    kind: Annotated[PortalKind, PlainValidator(enum_parser(PortalKind))] = PortalKind.SQL
    url: Annotated[str, SECRET, Field(repr=False)]
    on_removed: Annotated[OnRemoved, PlainValidator(enum_parser(OnRemoved))] = OnRemoved.DELETE
    adopt_existing: bool = False
    password_scheme: Annotated[str, AfterValidator(_only_bcrypt)] = "bcrypt"  # noqa: S105 - a name
    token: Secret = None  # scim/rest: bearer token
    username: Text | None = None  # scim/rest: basic auth, with password
    password: Secret = None  # scim/rest: basic auth; sql: merged into url on connect

    @property
    def safe_url(self) -> str:
        """The URL with its password hidden, for output and logs."""
        return hide_url_secrets(self.url) or "***"

    @model_validator(mode="after")
    def _url_and_credentials_fit_kind(self) -> PortalConfig:
        problems: list[tuple[tuple[str, ...], str, Any]] = []
        check = check_database_url if self.kind is PortalKind.SQL else check_http_url
        try:
            check(self.url)
        except ValueError as error:
            problems.append((("url",), f"{error} (kind is {self.kind.value})", self.url))
        if self.kind is not PortalKind.SQL and self.token is None:
            if self.username is None and self.password is None:
                message = f"kind {self.kind.value} needs token, or username and password"
                problems.append((("token",), message, NO_VALUE))
            elif self.username is None or self.password is None:
                missing = "username" if self.username is None else "password"
                given = "password" if missing == "username" else "username"
                message = f"required with {given} (or give token instead)"
                problems.append(((missing,), message, NO_VALUE))
        if problems:
            raise FieldProblems(problems)
        return self


class SmtpConfig(Section):
    """``mail.smtp``: the SMTP server that mail is handed to."""

    host: Text | None = None
    port: Annotated[int, AfterValidator(_port)] = 587
    security: Annotated[SmtpSecurity, PlainValidator(enum_parser(SmtpSecurity))] = (
        SmtpSecurity.STARTTLS
    )
    username: Text | None = None
    password: Secret = None
    timeout: PositiveDuration = timedelta(seconds=30)

    @model_validator(mode="after")
    def _password_needs_username(self) -> SmtpConfig:
        if self.password is not None and self.username is None:
            raise FieldProblems([(("username",), "required when password is given", NO_VALUE)])
        return self


class MailConfig(Section):
    """``mail``: how and in what language account mail is sent."""

    transport: Annotated[MailTransport, PlainValidator(enum_parser(MailTransport))] = (
        MailTransport.SMTP
    )
    directory: ConfigPath | None = None  # transport file: one .eml per message
    smtp: SmtpConfig = Field(default_factory=SmtpConfig)
    sender: Mailbox
    reply_to: Mailbox | None = None
    language: Annotated[Language, PlainValidator(enum_parser(Language))] = Language.PL
    templates_dir: Annotated[ConfigPath, AfterValidator(_existing_directory)] | None = None
    portal_url: HttpUrl | None = None
    send_delay: Duration = timedelta(minutes=5)
    rate_limit: Annotated[int, AfterValidator(_positive)] | None = None  # messages per minute

    @model_validator(mode="after")
    def _transport_has_its_settings(self) -> MailConfig:
        if self.transport is MailTransport.FILE and self.directory is None:
            message = "required when transport is file (each message is written there as .eml)"
            raise FieldProblems([(("directory",), message, NO_VALUE)])
        if self.transport is MailTransport.SMTP and self.smtp.host is None:
            message = "required when transport is smtp (or set mail.transport: file)"
            raise FieldProblems([(("smtp", "host"), message, NO_VALUE)])
        return self


class ScheduleConfig(Section):
    """``schedule``: how often the light cycle and the full reconcile run."""

    interval: PositiveDuration = timedelta(minutes=5)
    full_reconcile: Annotated[str, PlainValidator(parse_crontab)] = "0 3 * * *"


class SafetyConfig(Section):
    """``safety``: how many removals a cycle may apply before it holds them back."""

    max_removals: Annotated[RemovalLimit, PlainValidator(parse_removal_limit)] = RemovalLimit(
        percent=Decimal(10)
    )


class RetentionConfig(Section):
    """``retention``: how long the daemon's daily housekeeping keeps old rows.

    Audit rows are the history support reads (``syncd history``), so they are kept a year;
    sent and cancelled mail three months (pending and failed mail is never purged); the
    run rows behind ``status`` a month.
    """

    audit: PositiveDuration = timedelta(days=365)
    mail: PositiveDuration = timedelta(days=90)
    runs: PositiveDuration = timedelta(days=30)


class ObservabilityConfig(Section):
    """``observability``: the optional /metrics and /healthz listener."""

    listen: Annotated[ListenAddress, PlainValidator(parse_listen)] | None = None
