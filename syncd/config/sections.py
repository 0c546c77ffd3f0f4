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
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AfterValidator, BeforeValidator, Field, PlainValidator, model_validator

from syncd.config._values import (
    ListenAddress,
    RemovalLimit,
    enum_parser,
    hide_url_secrets,
    parse_crontab,
    parse_listen,
    parse_mailbox,
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


class MailRecipient(StrEnum):
    """A place ``mail.recipient`` may send account mail to; each source kind says where it
    finds it (README "Where mail goes")."""

    CONTACT = "contact"  # the contact person authorised to receive mail
    BILLING = "billing"  # the contractor's billing (invoice) e-mail
    EMAIL = "email"  # the contractor's main e-mail (the login by default)


def _recipient_list(value: object) -> object:
    """One source may be written alone (``recipient: email``); anything else must be a list."""
    if isinstance(value, str):
        return (value,)
    if not isinstance(value, list | tuple):
        raise ValueError("must be a list of sources, e.g. [contact, billing, email]")
    return value


def _recipient_chain(value: tuple[MailRecipient, ...]) -> tuple[MailRecipient, ...]:
    """Each source once, and ``email`` among them: without it a contractor with neither a
    contact nor a billing address would never get its activation mail."""
    repeated = sorted({item.value for item in value if value.count(item) > 1})
    if repeated:
        raise ValueError(f"names {', '.join(repeated)} twice: name each source once")
    if MailRecipient.EMAIL not in value:
        raise ValueError(
            "must include email (the contractor's main e-mail, the last resort), or a "
            "contractor without the other addresses gets no mail: e.g. [contact, billing, email]"
        )
    return value


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


class BouncesConfig(Section):
    """``mail.bounces``: the IMAP mailbox where bounces (DSNs) arrive; off without ``host``.

    ``syncd mail bounces`` and the daemon (every ``interval``) read its unseen messages in
    ``folder`` and move the bounces of syncd's mail to ``processed_folder``.
    """

    host: Text | None = None
    port: Annotated[int, AfterValidator(_port)] | None = None  # default: 993 tls, else 143
    security: Annotated[SmtpSecurity, PlainValidator(enum_parser(SmtpSecurity))] = SmtpSecurity.TLS
    username: Text | None = None
    password: Secret = None
    folder: Text = "INBOX"
    processed_folder: Text = "syncd-processed"
    interval: PositiveDuration = timedelta(minutes=5)
    timeout: PositiveDuration = timedelta(seconds=30)

    @property
    def imap_port(self) -> int:
        """The port to use: the configured one, else IMAP's standard for ``security``."""
        if self.port is not None:
            return self.port
        return 993 if self.security is SmtpSecurity.TLS else 143

    @model_validator(mode="after")
    def _complete(self) -> BouncesConfig:
        problems: list[tuple[tuple[str, ...], str, object]] = []
        if self.host is None and (self.username is not None or self.password is not None):
            problems.append((("host",), "required when username or password is given", NO_VALUE))
        if self.host is not None:
            for name in ("username", "password"):
                if getattr(self, name) is None:
                    problems.append(((name,), "required to log in to the bounce mailbox", NO_VALUE))
        if self.processed_folder == self.folder:
            message = "must differ from folder (processed bounces are moved there)"
            problems.append((("processed_folder",), message, self.processed_folder))
        if problems:
            raise FieldProblems(problems)
        return self


def _return_path(value: str) -> str:
    """``bounces+{id}@example.com``: one ``{id}`` in the local part of a valid address."""
    text = value.strip()
    local, _, domain = text.rpartition("@")
    if text.count("{id}") != 1 or "{id}" not in local:
        raise ValueError("must hold {id} once, before the @, like 'bounces+{id}@example.com'")
    parse_mailbox(local.replace("{id}", "1") + "@" + domain)
    return text


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
    run_budget: PositiveDuration = timedelta(minutes=2)  # how long one run sends mail at most
    rate_limit: Annotated[int, AfterValidator(_positive)] | None = None  # messages per minute
    bounces: BouncesConfig = Field(default_factory=BouncesConfig)
    return_path: Annotated[str, AfterValidator(_return_path)] | None = None  # VERP
    # Where mail goes: the first of these sources that has an address (syncd.mail.recipient).
    recipient: Annotated[
        tuple[Annotated[MailRecipient, PlainValidator(enum_parser(MailRecipient))], ...],
        BeforeValidator(_recipient_list),
        AfterValidator(_recipient_chain),
    ] = (MailRecipient.EMAIL,)

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
    """``safety``: when a cycle holds its removals back, and when a record is quarantined.

    ``min_scope``: a read of fewer contractors than this share of the last good read (or
    than this count), or of none at all (a renamed feature), holds every removal; ``0``
    switches both checks off. ``quarantine_after``: failures in a row after which a record
    is no longer retried until its ERP row changes (``syncd.backoff``).
    """

    max_removals: Annotated[RemovalLimit, PlainValidator(parse_removal_limit)] = RemovalLimit(
        percent=Decimal(10)
    )
    min_scope: Annotated[RemovalLimit, PlainValidator(parse_removal_limit)] = RemovalLimit(
        percent=Decimal(50)
    )
    quarantine_after: Annotated[int, Field(ge=1, le=1000)] = 5


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


class Role(StrEnum):
    """What a console user may do: everything, every support action, or their own customers."""

    ADMIN = "admin"
    SUPPORT = "support"
    SALESPERSON = "salesperson"


def _time_zone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError("must be a time zone name like Europe/Warsaw or UTC") from None
    return value


TimeZone = Annotated[str, AfterValidator(_time_zone)]
HASH_PREFIXES = ("$argon2", "$2a$", "$2b$", "$2y$")  # argon2 (``syncd web hash-password``), bcrypt


class WebUser(Section):
    """One person in ``web.users``. No ``password_hash``: signs in only through the proxy's
    ``trusted_header``. ``email`` picks a salesperson's customers (their ``owner_email``)."""

    name: Text
    email: Mailbox
    role: Annotated[Role, PlainValidator(enum_parser(Role))]
    password_hash: Secret = None
    language: Annotated[Language, PlainValidator(enum_parser(Language))] | None = None
    timezone: TimeZone | None = None

    @model_validator(mode="after")
    def _known_hash(self) -> WebUser:
        value = self.password_hash.get_secret_value() if self.password_hash else None
        if value is not None and not value.startswith(HASH_PREFIXES):
            message = "must be a hash made by `syncd web hash-password` (argon2 or bcrypt)"
            raise FieldProblems([(("password_hash",), message, NO_VALUE)])  # never echo it
        return self


class WebConfig(Section):
    """``web``: the support console (spec section 8). ``syncd run`` serves it when ``listen``
    is set; ``syncd web`` always does, on 127.0.0.1:8080 unless ``listen`` says otherwise.
    ``language`` None means ``mail.language``. Without ``session_secret`` each start makes
    one, so sessions end with the process."""

    listen: Annotated[ListenAddress, PlainValidator(parse_listen)] | None = None
    users: tuple[WebUser, ...] = ()
    trusted_header: Text | None = None
    session_secret: Secret = None
    secure_cookies: bool = False
    language: Annotated[Language, PlainValidator(enum_parser(Language))] | None = None
    timezone: TimeZone = "Europe/Warsaw"

    @model_validator(mode="after")
    def _unique_people(self) -> WebConfig:
        problems: list[tuple[tuple[str, ...], str, object]] = []
        seen: set[str] = set()
        for index, user in enumerate(self.users):
            for key, value in (("name", user.name), ("email", user.email)):
                if value.casefold() in seen:
                    problems.append((("users", str(index), key), "is given twice", value))
                seen.add(value.casefold())
        if self.listen is not None and not self.users:
            message = "add at least one person when listen is set (nobody could sign in)"
            problems.append((("users",), message, NO_VALUE))
        if problems:
            raise FieldProblems(problems)
        return self
