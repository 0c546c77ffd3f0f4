"""Mail rendering: every template in both languages, headers, escaping, overrides, checks."""

from __future__ import annotations

import email
import email.policy
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path

import pytest

from syncd.errors import ConfigError, MailTemplateError
from syncd.mail.render import (
    LANGUAGES,
    TEMPLATE_NAMES,
    MailRenderer,
    sample_context,
    validate_templates,
)

SENDER = "Hurtownia Żółć <b2b@hurtownia.example.pl>"
FIXED_NOW = datetime(2024, 3, 1, 8, 30, tzinfo=UTC)


def make_renderer(
    language: str = "pl", templates_dir: Path | None = None, reply_to: str | None = None
) -> MailRenderer:
    return MailRenderer(
        language,
        templates_dir,
        sender=SENDER,
        reply_to=reply_to,
        portal_url="https://b2b.example.com",
        clock=lambda: FIXED_NOW,
    )


def parse(msg: EmailMessage) -> EmailMessage:
    """The message as a receiving MUA sees it: serialised to bytes and parsed back."""
    parsed = email.message_from_bytes(msg.as_bytes(), policy=email.policy.default)
    assert isinstance(parsed, EmailMessage)
    return parsed


def body(msg: EmailMessage, subtype: str) -> str:
    part = msg.get_body((subtype,))
    assert part is not None, f"no text/{subtype} part"
    content = part.get_content()
    assert isinstance(content, str)
    return content.replace("\r\n", "\n")  # parsed from the wire, lines end in CRLF


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("template", TEMPLATE_NAMES)
def test_every_template_renders_both_parts(language: str, template: str) -> None:
    """Each mail, in Polish and English, has a subject, a text part and an HTML part."""
    context = sample_context(template)
    msg = parse(make_renderer(language).render(template, "jan@example.com", context))
    assert msg.get_content_type() == "multipart/alternative"
    assert str(msg["Subject"]).strip()
    text, html = body(msg, "plain"), body(msg, "html")
    for part in (text, html):
        assert context["name"] in part
        assert context["login"] in part
        assert "Řeřicha Brno" in part  # the salesperson, known here
    assert html.lstrip().startswith("<!DOCTYPE html>")
    assert "<" not in text


@pytest.mark.parametrize("template", ["activation", "password_reset"])
def test_password_mails_carry_login_password_and_portal_url(template: str) -> None:
    """Activation and reset mails show the login, the password and the portal address."""
    context = sample_context(template)
    msg = parse(make_renderer().render(template, "jan@example.com", context))
    for subtype in ("plain", "html"):
        part = body(msg, subtype)
        assert context["password"] in part
        assert "https://b2b.example.com" in part


def test_unknown_salesperson_is_left_out() -> None:
    """Without owner_name/owner_email the contact line is omitted, not printed as None."""
    context = sample_context("activation", full=False)
    msg = parse(make_renderer().render("activation", "jan@example.com", context))
    for subtype in ("plain", "html"):
        part = body(msg, subtype)
        assert "opiekun" not in part
        assert "None" not in part


def test_salesperson_email_alone_is_shown() -> None:
    """A salesperson known only by e-mail still appears, without a dangling comma."""
    context = sample_context("unblocked", full=False) | {"owner_email": "anna@example.com"}
    text = body(parse(make_renderer("en").render("unblocked", "j@example.com", context)), "plain")
    assert "account manager:\nanna@example.com\n" in text


def test_html_is_escaped_and_text_is_literal() -> None:
    """Markup in a contractor's name is escaped in the HTML part and verbatim in the text."""
    context = sample_context("blocked") | {"name": "<script>alert(1)</script> & Co"}
    msg = parse(make_renderer().render("blocked", "jan@example.com", context))
    html, text = body(msg, "html"), body(msg, "plain")
    assert "<script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; Co" in html
    assert "<script>alert(1)</script> & Co" in text


@pytest.mark.parametrize(
    "name", ["Żółć Łódź", "Řeřicha Brno", "Școală Iași", "Żółć Łódź " * 12 + "Školní Iași"]
)
def test_subject_with_diacritics_round_trips(name: str) -> None:
    """The subject goes out as ASCII encoded-words and decodes back to the same text."""
    context = sample_context("activation") | {"name": name}
    raw = make_renderer().render("activation", "jan@example.com", context).as_bytes()
    headers = raw.split(b"\r\n\r\n", 1)[0]
    assert headers.isascii()
    assert b"=?utf-8?" in headers
    parsed = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(parsed, EmailMessage)
    assert parsed["Subject"] == "Dostęp do portalu B2B dla " + " ".join(name.split())
    assert " ".join(name.split()) in body(parsed, "plain")


def test_headers_message_id_date_reply_to_and_sender() -> None:
    """From, To, Reply-To, Date and a Message-ID in the sender's domain are set."""
    renderer = make_renderer(reply_to="Biuro <biuro@hurtownia.example.pl>")
    msg = parse(renderer.render("unblocked", "jan@example.com", sample_context("unblocked")))
    assert msg["From"].addresses[0].addr_spec == "b2b@hurtownia.example.pl"
    assert msg["From"].addresses[0].display_name == "Hurtownia Żółć"
    assert msg["To"] == "jan@example.com"
    assert msg["Reply-To"].addresses[0].addr_spec == "biuro@hurtownia.example.pl"
    assert msg["Date"].datetime == FIXED_NOW
    assert msg["Message-ID"].endswith("@hurtownia.example.pl>")
    assert msg["Content-Language"] == "pl"
    assert msg["Auto-Submitted"] == "auto-generated"


def test_no_reply_to_unless_configured() -> None:
    """Reply-To is absent when mail.reply_to is not set."""
    msg = make_renderer().render("unblocked", "jan@example.com", sample_context("unblocked"))
    assert msg["Reply-To"] is None


def test_message_ids_differ_unless_given() -> None:
    """Each mail gets a fresh Message-ID; a stored one is reused for a re-send."""
    renderer, context = make_renderer(), sample_context("unblocked")
    first = renderer.render("unblocked", "jan@example.com", context)
    second = renderer.render("unblocked", "jan@example.com", context)
    assert first["Message-ID"] != second["Message-ID"]
    again = renderer.render("unblocked", "jan@example.com", context, message_id="<x@y.pl>")
    assert again["Message-ID"] == "<x@y.pl>"


def test_missing_variable_fails_loudly() -> None:
    """A template variable the caller forgot is an error naming it, not an empty string."""
    context = sample_context("login_changed")
    del context["old_login"]
    with pytest.raises(MailTemplateError, match=r"pl/login_changed\.txt: 'old_login' is undefined"):
        make_renderer().render("login_changed", "jan@example.com", context)


def test_render_error_never_contains_the_password(tmp_path: Path) -> None:
    """An override that fails on the password value reports without revealing it."""
    write(tmp_path / "pl" / "activation.txt", "{{ password ~ 1 + 2 }}{{ password.nope }}")
    context = sample_context("activation")
    with pytest.raises(MailTemplateError) as info:
        make_renderer(templates_dir=tmp_path).render("activation", "j@example.com", context)
    assert context["password"] not in str(info.value)
    assert info.value.__context__ is None


def test_override_file_wins_over_packaged(tmp_path: Path) -> None:
    """A same-named file in templates_dir/<lang>/ replaces only that part."""
    write(tmp_path / "pl" / "activation.subject", "Witamy, {{ name }}!")
    msg = make_renderer(templates_dir=tmp_path).render(
        "activation", "jan@example.com", sample_context("activation")
    )
    assert msg["Subject"] == "Witamy, Żółć Łódź Sp. z o.o.!"
    assert "Hasło:" in body(msg, "plain")  # the packaged text part still used


def test_override_of_shared_footer_changes_every_mail(tmp_path: Path) -> None:
    """Overriding a shared piece (_footer.txt) affects all plain-text parts."""
    write(tmp_path / "en" / "_footer.txt", "ACME B2B desk\n")
    renderer = make_renderer("en", templates_dir=tmp_path)
    for template in TEMPLATE_NAMES:
        msg = renderer.render(template, "jan@example.com", sample_context(template))
        assert body(msg, "plain").endswith("ACME B2B desk\n")


def test_packaged_templates_validate_cleanly() -> None:
    """validate_templates finds nothing wrong with the shipped templates in any language."""
    for language in LANGUAGES:
        assert validate_templates(make_renderer(language)) == []


def test_broken_override_is_reported_per_template(tmp_path: Path) -> None:
    """A syntax error and an unknown variable are each reported once, with file and line."""
    write(tmp_path / "pl" / "blocked.html", "<p>{% if reason %}{{ reason }}</p>\n")
    write(tmp_path / "pl" / "unblocked.txt", "Konto\n{{ nazwa_firmy }}\n")
    problems = validate_templates(make_renderer(templates_dir=tmp_path))
    assert len(problems) == 2
    blocked, unblocked = problems
    assert blocked.startswith("mail template pl/blocked.html: ")
    assert "blocked.html, line 1" in blocked
    assert "'nazwa_firmy' is undefined" in unblocked
    assert "unblocked.txt, line 2" in unblocked


def test_activation_override_without_password_is_reported(tmp_path: Path) -> None:
    """An activation mail that forgets {{ password }} would lock the customer out."""
    write(tmp_path / "en" / "activation.txt", "Welcome {{ name }}, your login is {{ login }}.\n")
    problems = validate_templates(make_renderer("en", templates_dir=tmp_path))
    assert problems == [
        "mail template en/activation.txt: does not show {{ login }} and {{ password }}; "
        "the customer could not sign in"
    ]


def test_misnamed_override_and_missing_directory_are_reported(tmp_path: Path) -> None:
    """A typo in an override's name, or a templates_dir that is not there, is reported."""
    write(tmp_path / "pl" / "activaton.txt", "x")
    write(tmp_path / "pl" / "notes.md", "ignored: not a template part")
    problems = validate_templates(make_renderer(templates_dir=tmp_path))
    assert len(problems) == 1
    assert "activaton.txt overrides no template" in problems[0]
    missing = validate_templates(make_renderer(templates_dir=tmp_path / "nope"))
    assert missing == [f"mail.templates_dir: {tmp_path / 'nope'} is not a directory"]


def test_unknown_language_is_a_config_error() -> None:
    """mail.language other than pl/en is refused with the setting's path."""
    with pytest.raises(ConfigError, match=r"mail\.language: must be one of pl, en"):
        make_renderer("de")


def write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def _as_email_package_builds_it(msg: EmailMessage, to: str, reply_to: str | None) -> bytes:
    """The same mail built with ``EmailMessage``'s own setters (what syncd did before its
    headers were stored as they go on the wire), flattened with the same boundary."""
    plain, html = (msg.get_body((subtype,)) for subtype in ("plain", "html"))
    assert plain is not None
    assert html is not None
    reference = EmailMessage(policy=email.policy.SMTP)
    subject = str(msg["Subject"])
    if subject.isascii():
        reference["Subject"] = subject
    else:
        reference.set_raw("Subject", dict(msg.raw_items())["Subject"])  # the Header encoding
    reference["From"] = SENDER
    reference["To"] = to
    if reply_to:
        reference["Reply-To"] = reply_to
    reference["Date"] = str(msg["Date"])
    reference["Message-ID"] = str(msg["Message-ID"])
    reference["Auto-Submitted"] = "auto-generated"
    reference.set_content(
        plain.get_content(), subtype="plain", charset="utf-8", cte="quoted-printable"
    )
    reference.add_alternative(
        html.get_content(), subtype="html", charset="utf-8", cte="quoted-printable"
    )
    reference["Content-Language"] = str(msg["Content-Language"])
    reference.set_boundary(str(msg.get_boundary()))
    return reference.as_bytes()


@pytest.mark.parametrize("template", TEMPLATE_NAMES)
@pytest.mark.parametrize(
    "to",
    [
        "jan@example.com",
        "żółć@example.com",  # not plain ASCII: parsed by the email package
        "x y@example.com",  # not a plain address: parsed
        "=?utf-8?q?x?=@example.com",  # looks encoded: parsed (and decoded) as before
        "a.very.long.address.that.goes.on.and.on.and.on.and.on.and.on@example-long.com.pl",
    ],
)
def test_a_mail_is_byte_for_byte_what_the_email_package_builds(template: str, to: str) -> None:
    """Headers stored as they go on the wire change no byte of the mail (bar the boundary)."""
    renderer = make_renderer(reply_to="Biuro Łódź <biuro@example.com>")
    for full in (True, False):
        context = sample_context(template, full=full)
        if not full:  # a subject long enough to be folded
            context["name"] = "Bardzo długa nazwa firmy handlowej " * 3
        msg = renderer.render(template, to, context, message_id="<7.abc@example.com>")
        reference = _as_email_package_builds_it(msg, to, renderer.reply_to)
        assert msg.as_bytes() == reference
