"""Turning a mail template and its variables into a ready-to-send ``EmailMessage``.

Templates are Jinja2 files in ``syncd/mail/templates/<language>/`` (see the README there),
each overridable by a file of the same name in ``mail.templates_dir/<language>/``. Variables
are strict, so a typo in a template fails at ``check-config`` (``check_templates``) instead
of sending a mail with a hole in it. ``check-config`` imports this module and not the mailer
(``syncd.mail.mailer``), so checking a file loads no state store, connector or bcrypt.
"""

from __future__ import annotations

import email.policy
import functools
import random
import re
import traceback
from collections.abc import Callable, Mapping
from datetime import datetime
from email.header import Header
from email.headerregistry import BaseHeader, HeaderRegistry
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid, parseaddr
from pathlib import Path
from typing import TYPE_CHECKING, Any

import jinja2

from syncd.clock import utcnow
from syncd.errors import ConfigError, MailTemplateError
from syncd.mail import _mime
from syncd.passwords import generate_password

if TYPE_CHECKING:
    from syncd.config import Config

LANGUAGES = ("pl", "en")
TEMPLATE_NAMES = (
    "activation",
    "password_reset",
    "login_changed",
    "blocked",
    "unblocked",
    "reactivated",
)
PASSWORD_TEMPLATES = frozenset({"activation", "password_reset"})
PARTS = ("subject", "txt", "html")

# Keys every template may test with {% if %} although the caller did not pass them.
_OPTIONAL_KEYS = ("owner_name", "owner_email")
# make_msgid() without a domain asks the resolver for our FQDN, which can hang.
_FALLBACK_DOMAIN = "syncd.localdomain"
_BLANK_LINES = re.compile(r"\n[ \t]*(?:\n[ \t]*){2,}")


class _Headers(HeaderRegistry):
    """The standard header registry, but each header's class is made once.

    Python's registry builds a new class for every header it parses (``type(...)`` in
    ``HeaderRegistry.__getitem__``): about a third of rendering a mail, a limit on mails
    per second. The classes hold no state, so one per header name serves every message."""

    @functools.cache  # noqa: B019 - one registry for the process; the cache lives as long
    def __getitem__(self, name: str) -> type[BaseHeader]:
        made: type[BaseHeader] = super().__getitem__(name)
        return made


# email.policy.SMTP (CRLF line ends, RFC 5322 headers) with the header classes cached.
MAIL_POLICY = email.policy.SMTP.clone(header_factory=_Headers())


class MailRenderer:
    """Renders the mails of one language with one sender; build it once from the config."""

    def __init__(
        self,
        language: str,
        templates_dir: Path | None,
        *,
        sender: str,
        reply_to: str | None,
        portal_url: str | None,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        if language not in LANGUAGES:
            choices = ", ".join(LANGUAGES)
            raise ConfigError([f"mail.language: must be one of {choices} (got {language!r})"])
        self.language = language
        self.templates_dir = templates_dir
        self.sender = sender
        self.reply_to = reply_to
        self.portal_url = portal_url
        self._clock = clock
        self._domain = parseaddr(sender)[1].rpartition("@")[2] or _FALLBACK_DOMAIN
        # Encoded and folded once, not for every mail (``syncd.mail._mime``).
        self._from = _mime.folded(MAIL_POLICY, "From", sender)
        self._reply_to = _mime.folded(MAIL_POLICY, "Reply-To", reply_to) if reply_to else None
        loaders: list[jinja2.BaseLoader] = []
        if templates_dir is not None:
            loaders.append(jinja2.FileSystemLoader(templates_dir / language))
        loaders.append(jinja2.PackageLoader("syncd.mail", f"templates/{language}"))
        self._env = jinja2.Environment(
            loader=jinja2.ChoiceLoader(loaders),
            autoescape=jinja2.select_autoescape(
                enabled_extensions=("html",), default_for_string=False, default=False
            ),
            undefined=jinja2.StrictUndefined,
            auto_reload=False,  # a renderer lives for one run: no stat() of 3 files per mail
            trim_blocks=True,
            lstrip_blocks=True,
            keep_trailing_newline=True,
        )

    def __repr__(self) -> str:
        return (
            f"MailRenderer(language={self.language!r}, templates_dir={self.templates_dir!r}, "
            f"sender={self.sender!r})"
        )

    def render(
        self,
        template: str,
        to: str,
        context: Mapping[str, Any],
        *,
        message_id: str | None = None,
    ) -> EmailMessage:
        """The complete message: headers, a plain-text part and an HTML alternative.

        ``context`` holds the template variables (``templates/README.md``); ``portal_url``
        defaults to the configured one and the salesperson's fields to None. Passing a
        stored ``message_id`` makes a re-sent mail recognisable as the same one. Raises
        ``MailTemplateError`` when a template is missing or fails to render.
        """
        if template not in TEMPLATE_NAMES:
            message = f"unknown mail template {template!r}"
            raise ValueError(message)
        values: dict[str, Any] = {"portal_url": self.portal_url}
        values.update(dict.fromkeys(_OPTIONAL_KEYS))
        values.update(context)
        subject = " ".join(self._render_part(template, "subject", values).split())
        values["subject"] = subject
        text = _BLANK_LINES.sub("\n\n", self._render_part(template, "txt", values)).strip()
        html = self._render_part(template, "html", values)

        msg = _mime.Composed(policy=MAIL_POLICY)
        _set_subject(msg, subject)
        msg.set_raw("From", self._from)
        _mime.set_address(msg, "To", to)
        if self._reply_to is not None:
            msg.set_raw("Reply-To", self._reply_to)
        msg.set_raw("Date", format_datetime(self._clock()))
        _mime.set_message_id(msg, message_id or make_msgid(domain=self._domain))
        msg.set_raw("Auto-Submitted", "auto-generated")  # RFC 3834: no out-of-office replies
        _mime.alternative(msg, text + "\n", html, language=self.language)
        return msg

    def override_problems(self) -> list[str]:
        """Mistakes in ``templates_dir`` that would otherwise be silently ignored."""
        if self.templates_dir is None:
            return []
        if not self.templates_dir.is_dir():
            return [f"mail.templates_dir: {self.templates_dir} is not a directory"]
        problems = []
        known = ", ".join(TEMPLATE_NAMES)
        for path in sorted((self.templates_dir / self.language).glob("*")):
            stem, _, part = path.name.partition(".")
            if part in PARTS and not stem.startswith("_") and stem not in TEMPLATE_NAMES:
                problems.append(
                    f"mail.templates_dir: {path} overrides no template "
                    f"(the mails are {known}); rename or remove it"
                )
        return problems

    def _render_part(self, template: str, part: str, values: Mapping[str, Any]) -> str:
        name = f"{template}.{part}"
        try:
            return self._env.get_template(name).render(values)
        except Exception as error:  # template code may raise anything at all
            problem = f"mail template {self.language}/{name}: {_describe(error)}"
            secret = values.get("password")
            if isinstance(secret, str) and secret:
                problem = problem.replace(secret, "***")
        # Raised outside the except block so the Jinja error, which may quote the
        # template's variables, is not chained to it.
        raise MailTemplateError([problem])


def _set_subject(msg: EmailMessage, subject: str) -> None:
    """Set Subject so that spaces survive: Python 3.11's folder can put a space *between*
    two encoded-words of a long subject, where readers drop it ("ŻółćŁódź"). The legacy
    ``Header`` encoder keeps every space inside the encoded-words instead.
    """
    if subject.isascii():
        _mime.set_text(msg, "Subject", subject)
    else:
        msg.set_raw("Subject", Header(subject, "utf-8", header_name="Subject").encode("\n"))


def _describe(error: Exception) -> str:
    """The error with the template file and line it happened at, when Jinja knows them."""
    where = None
    if isinstance(error, jinja2.TemplateSyntaxError) and error.lineno:
        where = f"{error.filename or error.name}, line {error.lineno}"
    else:
        for frame in reversed(traceback.extract_tb(error.__traceback__)):
            if frame.filename.endswith((".subject", ".txt", ".html")):
                where = f"{frame.filename}, line {frame.lineno}"
                break
    detail = getattr(error, "message", None) or str(error) or type(error).__name__
    return f"{detail} ({where})" if where else detail


SAMPLE_TO = "zolc.lodz@example.com"


def sample_context(template: str, *, full: bool = True) -> dict[str, Any]:
    """Variables for a check render, with Polish, Czech and Romanian diacritics.

    ``full=False`` leaves out what may be unknown (salesperson, reason) so that both
    branches of a template's ``{% if %}`` are exercised.
    """
    context: dict[str, Any] = {
        "login": SAMPLE_TO,
        "name": "Żółć Łódź Sp. z o.o.",
        "symbol": "ŻÓŁĆ-01",
    }
    if full:
        context |= {"owner_name": "Řeřicha Brno", "owner_email": "rericha@example.com"}
    if template in PASSWORD_TEMPLATES:
        context["password"] = generate_password(rng=random.Random(template))
    if template == "blocked":
        context["reason"] = "Școală Iași: zaległe płatności" if full else None
    if template == "login_changed":
        context["old_login"] = "stary.adres@example.com"
    return context


def validate_templates(renderer: MailRenderer) -> list[str]:
    """Render every mail with sample data; one problem line per template that fails.

    Besides render errors, an activation or reset mail that does not show the login and
    the password in both parts is reported: it would leave the customer locked out.
    """
    problems = renderer.override_problems()
    for template in TEMPLATE_NAMES:
        problem = None
        for full in (True, False):
            problem = _check_one(renderer, template, sample_context(template, full=full))
            if problem:
                problems.append(problem)
                break
    return problems


def _check_one(renderer: MailRenderer, template: str, context: dict[str, Any]) -> str | None:
    try:
        msg = renderer.render(template, SAMPLE_TO, context)
    except MailTemplateError as error:
        return "; ".join(error.problems)
    if not str(msg["Subject"]).strip():
        return f"mail template {renderer.language}/{template}.subject: renders empty"
    if template in PASSWORD_TEMPLATES:
        for subtype in ("plain", "html"):
            part = msg.get_body((subtype,))
            body = part.get_content() if part is not None else ""
            if context["login"] not in body or context["password"] not in body:
                suffix = "txt" if subtype == "plain" else "html"
                return (
                    f"mail template {renderer.language}/{template}.{suffix}: does not show "
                    "{{ login }} and {{ password }}; the customer could not sign in"
                )
    return None


def make_renderer(config: Config, language: str | None = None) -> MailRenderer:
    """The configured renderer, in ``language`` (default: ``mail.language``)."""
    mail = config.mail
    return MailRenderer(
        language or mail.language.value,
        mail.templates_dir,
        sender=mail.sender,
        reply_to=mail.reply_to,
        portal_url=str(mail.portal_url) if mail.portal_url else None,
    )


def check_templates(config: Config) -> None:
    """Render every mail with sample data (``check-config``, daemon start); raises
    ``MailTemplateError`` (a configuration error, exit 2) listing each one that fails."""
    problems = validate_templates(make_renderer(config))
    if problems:
        raise MailTemplateError(problems)
