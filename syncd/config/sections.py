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
from typing import Annotated

from pydantic import AfterValidator, Field, PlainValidator, model_validator

from syncd.config._values import (
    ListenAddress,
    RemovalLimit,
    enum_parser,
    hide_url_secrets,
    parse_crontab,
    parse_listen,
    parse_removal_limit,
)
from syncd.config.base import (
    NO_VALUE,
    ConfigPath,
    DatabaseUrl,
    Duration,
    FieldProblems,
    HttpUrl,
    Mailbox,
    PositiveDuration,
    Secret,
    Section,
    Text,
)

DEFAULT_STATE_URL = "sqlite:////var/lib/syncd/state.db"


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


class StateConfig(Section):
    """``state``: syncd's own database (bindings, outbox, audit trail, cycle lease)."""

    url: DatabaseUrl = DEFAULT_STATE_URL
    password: Secret = None  # merged into url on connect; not in spec §3, for LoadCredential=

    @property
    def safe_url(self) -> str:
        """The URL with its password hidden, for output and logs."""
        return hide_url_secrets(self.url) or "***"


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
