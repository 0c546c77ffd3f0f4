"""The MIME shape of a syncd mail, built from text that is already on the wire.

Private to ``syncd.mail``. ``EmailMessage``'s ``msg[name] = value`` and ``set_content``
parse every header they store into a tree and fold it again when the message is
flattened: about two thirds of rendering a mail and a good part of handing it to smtplib,
so a limit on mails per second. Here a header whose value is plain ASCII in a known shape
(a date, a Message-ID, a simple address, a constant) is stored as it goes on the wire
(``set_raw``), and the text parts are encoded to quoted-printable once, the way
``email.contentmanager`` does; anything else (a display name or an address with other
characters, a long value) still goes through the email package, once per renderer or per
mail. The bytes are those ``set_content``/``add_alternative`` produced (a test compares
them), so the message is still an ``EmailMessage`` that every transport and reader takes.
"""

from __future__ import annotations

import random
import re
import sys
from email import quoprimime
from email.message import EmailMessage
from email.policy import EmailPolicy
from typing import Any, cast

# A header value stored as is must be ASCII without line breaks (BytesGenerator writes it
# as it is) and short enough not to be folded (the policy refolds a long line by parsing).
# An address without "=?" (the parser decodes what looks like an encoded-word).
_PLAIN_ADDRESS = re.compile(r"(?!.*=\?)[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]+@[A-Za-z0-9.-]+")
_PLAIN_MESSAGE_ID = re.compile(r"<[\x21-\x3b\x3d\x3f-\x7e]+>")
# Printable ASCII without an encoded-word ("=?"), which the parser would decode.
_PLAIN_TEXT = re.compile(r"(?:(?!=\?)[\x20-\x7e])*")
_TEXT_HEADERS = (("Content-Transfer-Encoding", "quoted-printable"),)


class Composed(EmailMessage):
    """An ``EmailMessage`` that knows its own Content-Type.

    Flattening asks each part for its type two or three times, and the email package
    parses the header anew every time. The type set by ``set_known_type`` is answered without
    parsing while the header is still the one set (any later change is parsed as usual)."""

    _known: tuple[str, str, str | None] | None = None  # raw value, type, boundary

    def set_known_type(self, content_type: str, params: str, boundary: str | None = None) -> None:
        raw = f"{content_type};{params}"
        self.set_raw("Content-Type", raw)
        self._known = (raw, content_type, boundary)

    def _type(self) -> tuple[str, str, str | None] | None:
        known = self._known
        if known is not None:
            for name, value in self._headers:  # type: ignore[attr-defined]
                if name.lower() == "content-type":
                    return known if value is known[0] else None
        return None

    def get_content_type(self) -> str:
        known = self._type()
        return known[1] if known is not None else super().get_content_type()

    def get_boundary(self, failobj: Any = None) -> Any:
        known = self._type()
        if known is not None and known[2] is not None:
            return known[2]
        return super().get_boundary(failobj)


def folded(policy: EmailPolicy[Any], name: str, value: str) -> str:
    """``value`` as the email package writes header ``name`` (RFC 2047 encoded, folded),
    ready for ``set_raw``: for values worked out once, such as the sender."""
    line: str = policy.header_factory(name, value).fold(policy=policy.clone(linesep="\n"))
    return line[len(name) + 2 :].rstrip("\n")


def set_header(msg: EmailMessage, name: str, value: str, plain: re.Pattern[str]) -> None:
    """Store ``value`` raw when it matches ``plain`` and fits a line, else parse it."""
    width = msg.policy.max_line_length or 78
    if len(name) + len(value) + 2 <= width and plain.fullmatch(value):
        msg.set_raw(name, value)
    else:
        msg[name] = value


def set_text(msg: EmailMessage, name: str, text: str) -> None:
    set_header(msg, name, text, _PLAIN_TEXT)


def set_address(msg: EmailMessage, name: str, address: str) -> None:
    set_header(msg, name, address, _PLAIN_ADDRESS)


def set_message_id(msg: EmailMessage, message_id: str) -> None:
    set_header(msg, "Message-ID", message_id, _PLAIN_MESSAGE_ID)


def alternative(msg: Composed, text: str, html: str, *, language: str) -> None:
    """Make ``msg`` multipart/alternative with a UTF-8 quoted-printable plain-text part and
    an HTML part, as ``set_content(text)`` followed by ``add_alternative(html)`` does."""
    policy = cast("EmailPolicy[Any]", msg.policy)
    boundary = "=" * 15 + f"{random.randrange(sys.maxsize):0{len(repr(sys.maxsize - 1))}d}" + "=="
    msg.set_raw("MIME-Version", "1.0")
    msg.set_known_type("multipart/alternative", f'\n boundary="{boundary}"', boundary)
    msg.set_raw("Content-Language", language)
    plain = _part(policy, "plain", text)
    # add_alternative() leaves a MIME-Version in the part it adds; kept, so that the bytes
    # stay those of the email package's own build.
    rich = _part(policy, "html", html, ("MIME-Version", "1.0"))
    msg.set_payload([plain, rich])


def _part(policy: EmailPolicy[Any], subtype: str, body: str, *extra: tuple[str, str]) -> Composed:
    part = Composed(policy=policy)
    part.set_known_type(f"text/{subtype}", ' charset="utf-8"')
    for name, value in (*_TEXT_HEADERS, *extra):
        part.set_raw(name, value)
    lines = body.encode("utf-8").splitlines()
    data = b"\n".join(lines) + b"\n"
    width = policy.max_line_length or 78
    part.set_payload(quoprimime.body_encode(data.decode("latin-1"), width))
    return part
