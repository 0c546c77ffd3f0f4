"""Reading a bounce: RFC 3464 delivery reports, other MTAs' shapes, and how they name our mail.

``read_bounce(raw)`` returns a ``Bounce`` for a delivery report and None for any other
message. Standard reports (``multipart/report; report-type=delivery-status``, as Postfix,
Exim, Exchange and Gmail send them) are read with the standard library; a bounce without
a machine-readable part (old qmail, some appliances) is classified by flufl.bounce, the
detectors GNU Mailman keeps up to date. A bounce names the mail it reports on in two
ways, both written here so that making and reading them cannot drift apart:

- the original ``Message-ID`` (``outbox_message_id``), returned in the ``message/rfc822``
  or ``text/rfc822-headers`` part: ``<syncd.outbox.<id>.<created, in µs>[.<random>]@domain>``;
- the envelope sender, when ``mail.return_path`` is a VERP template like
  ``bounces+{id}@example.com``: the bounce is addressed to that mail's own return path.
"""

from __future__ import annotations

import email.policy
import re
import secrets
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage, Message
from email.parser import BytesParser, HeaderParser
from email.utils import getaddresses

_REPORT_TYPES = ("message/delivery-status", "message/global-delivery-status")
_ORIGINAL_TYPES = ("message/rfc822", "text/rfc822-headers", "message/global-headers")
_OUR_ID = re.compile(r"<syncd\.outbox\.(\d+)\.(\d+)(?:\.[0-9a-f]+)?@[^<>\s]+>", re.IGNORECASE)
_STATUS = re.compile(r"\b([245])\.(\d{1,3})\.(\d{1,3})\b")
_SMTP_CODE = re.compile(r"\b([245])\d\d\b")
DIAGNOSTIC_MAX = 500


# -- how a mail is named, so that its bounce finds it again ---------------------------------


def outbox_message_id(mail_id: int, created_at: datetime, domain: str, *, fresh: bool) -> str:
    """The Message-ID of outbox mail ``mail_id``; ``fresh`` adds a random part (password
    mails: each sending differs) while still naming the mail."""
    stamp = int(created_at.timestamp() * 1_000_000)
    tail = f".{secrets.token_hex(4)}" if fresh else ""
    return f"<syncd.outbox.{mail_id}.{stamp}{tail}@{domain}>"


def outbox_refs(text: str) -> list[tuple[int, int]]:
    """Every (mail id, created µs) named by one of our Message-IDs in ``text``."""
    return [(int(m.group(1)), int(m.group(2))) for m in _OUR_ID.finditer(text)]


def created_stamp(created_at: datetime) -> int:
    """The creation time as a Message-ID carries it, to check a mail id is really ours."""
    return int(created_at.timestamp() * 1_000_000)


def return_path(template: str, mail_id: int) -> str:
    """The envelope sender of mail ``mail_id`` under the VERP ``template``."""
    return template.replace("{id}", str(mail_id))


def verp_pattern(template: str) -> re.Pattern[str]:
    """Matches an address made by ``return_path(template, id)``; group 1 is the id."""
    before, _, after = template.partition("{id}")
    return re.compile(re.escape(before) + r"(\d+)" + re.escape(after), re.IGNORECASE)


# -- reading a bounce -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Bounce:
    """What a delivery report says about the one recipient syncd's mail had.

    ``permanent`` is True for a permanent failure (5.x.x), False for a delay or a
    temporary failure (4.x.x), None for a success notice (2.x.x: delivered, relayed).
    """

    permanent: bool | None
    status: str
    action: str
    diagnostic: str
    recipients: tuple[str, ...]  # original and final recipient, lower-case
    reported_by: str | None
    message_id: str | None  # the bounce's own, to find it in the processed folder
    originals: tuple[str, ...]  # text that may name our mail: returned headers, then body
    addressed_to: tuple[str, ...]  # where the bounce was sent: a VERP return path

    def describe(self) -> str:
        """One line for ``last_error`` and the audit trail: status, diagnostic, reporter."""
        by = f" (reported by {self.reported_by})" if self.reported_by else ""
        return f"{self.status} {self.diagnostic}{by}"[:DIAGNOSTIC_MAX]


def parse(raw: bytes) -> EmailMessage:
    """The message as the ``email`` package reads it (modern policy)."""
    message: EmailMessage = BytesParser(policy=email.policy.default).parsebytes(raw)
    return message


def read_bounce(raw: bytes) -> Bounce | None:
    """The delivery report in ``raw``, or None when the message is not a bounce."""
    message = parse(raw)
    report = next((p for p in message.walk() if p.get_content_type() in _REPORT_TYPES), None)
    if report is not None:
        return _standard(message, report)
    return _heuristic(message, raw)


def _standard(message: EmailMessage, report: Message) -> Bounce | None:
    blocks = _blocks(report)
    if len(blocks) < 2:
        return None
    per_message, per_recipient = blocks[0], blocks[1:]
    ranked = sorted(per_recipient, key=lambda b: _ACTION_RANK.get(_field(b, "Action").lower(), 9))
    block = ranked[0]
    action = _field(block, "Action").lower()
    diagnostic = _field(block, "Diagnostic-Code")
    status = _status(_field(block, "Status"), diagnostic, action)
    names = ("Original-Recipient", "Final-Recipient")
    recipients = tuple(dict.fromkeys(a for n in names if (a := _typed_address(_field(block, n)))))
    reporter = _typed_address(_field(per_message, "Reporting-MTA")) or None
    sender = _typed_address(_field(per_message, "X-Postfix-Sender"))
    return Bounce(
        permanent=_permanence(status),
        status=status,
        action=action or "failed",
        diagnostic=diagnostic or "(the report gives no diagnostic)",
        recipients=recipients,
        reported_by=reporter,
        message_id=_own_id(message),
        originals=_originals(message),
        addressed_to=(*_addressed_to(message), *((sender,) if sender else ())),
    )


_ACTION_RANK = {"failed": 0, "delayed": 1}


def _heuristic(message: EmailMessage, raw: bytes) -> Bounce | None:
    """A bounce with no delivery-status part: flufl.bounce decides whether it is one."""
    from flufl.bounce import all_failures

    temporary, permanent = all_failures(message)
    if not temporary and not permanent:
        return None
    failed = sorted(permanent or temporary)
    text = raw.decode("utf-8", "replace")
    body = text.partition("\n\n")[2] or text
    line = next((ln.strip() for ln in body.splitlines() if _SMTP_CODE.search(ln)), "")
    found = _STATUS.search(line) or _STATUS.search(body)
    status = found.group(0) if found else ("5.0.0" if permanent else "4.0.0")
    return Bounce(
        permanent=bool(permanent) and not status.startswith("4"),
        status=status,
        action="failed" if permanent else "delayed",
        diagnostic=" ".join(line.split()) or "(the bounce gives no diagnostic)",
        recipients=tuple(a.decode("utf-8", "replace").lower() for a in failed),
        reported_by=None,
        message_id=_own_id(message),
        originals=(body,),
        addressed_to=_addressed_to(message),
    )


def _blocks(report: Message) -> list[Message]:
    """The report's field groups: first per message, then one per recipient."""
    payload = report.get_payload()
    if isinstance(payload, list):
        return [block for block in payload if isinstance(block, Message)]
    text = payload if isinstance(payload, str) else ""
    chunks = re.split(r"\r?\n\s*\r?\n", text.strip())
    return [HeaderParser().parsestr(chunk + "\n") for chunk in chunks if chunk.strip()]


def _field(block: Message, name: str) -> str:
    value = block.get(name)
    return " ".join(str(value).split()) if value is not None else ""


def _typed_address(value: str) -> str:
    """``rfc822; Someone@Example.com`` -> ``someone@example.com``; ``dns; mx`` -> ``mx``."""
    address = value.partition(";")[2] if ";" in value else value
    return address.strip().strip("<>").lower()


def _status(status: str, diagnostic: str, action: str) -> str:
    """The enhanced status code; guessed from the SMTP reply or the action when missing."""
    found = _STATUS.search(status) or _STATUS.search(diagnostic)
    if found:
        return found.group(0)
    code = _SMTP_CODE.search(diagnostic)
    if code:
        return f"{code.group(1)}.0.0"
    return {"delayed": "4.0.0", "delivered": "2.0.0", "relayed": "2.0.0"}.get(action, "5.0.0")


def _permanence(status: str) -> bool | None:
    return {"5": True, "4": False}.get(status[0])


def _own_id(message: Message) -> str | None:
    value = message.get("Message-ID")
    return str(value).strip() if value else None


def _originals(message: EmailMessage) -> tuple[str, ...]:
    """The returned original's headers (where our Message-ID is), then the whole body."""
    found: list[str] = []
    for part in message.walk():
        kind = part.get_content_type()
        if kind not in _ORIGINAL_TYPES:
            continue
        payload = part.get_payload()
        if isinstance(payload, list) and payload and isinstance(payload[0], Message):
            found.append(_header_text(payload[0]))
        elif isinstance(payload, str):
            found.append(payload)
    body = message.get_body(("plain",))
    found.extend(str(p.get_payload(decode=False)) for p in [body] if p is not None)
    return tuple(found)


def _header_text(original: Message) -> str:
    return "\n".join(f"{name}: {value}" for name, value in original.items())


def _addressed_to(message: Message) -> tuple[str, ...]:
    """Where the bounce was delivered: its To, Delivered-To and X-Original-To."""
    values = [
        str(v)
        for name in ("To", "Delivered-To", "X-Original-To")
        for v in message.get_all(name, [])
    ]
    return tuple(address.lower() for _, address in getaddresses(values) if address)
