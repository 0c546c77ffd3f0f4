"""Bounce tracking: match the delivery reports in the bounce mailbox to the outbox (spec 3, 4).

A mail the SMTP server accepted can still bounce hours later; the report (a DSN) arrives
in the mailbox named by ``mail.bounces``. One pass (``syncd mail bounces``, or the
daemon every ``mail.bounces.interval``):

1. lists the folder's unseen messages and reads their headers without marking them seen;
   only those that look like a bounce (a ``multipart/report``, a mailer daemon, an empty
   return path, a VERP address) are fetched whole;
2. reads each as a DSN (``syncd.mail._dsn``) and finds the outbox mail it reports on, by
   the original Message-ID or the VERP return path; the mail must be one this store sent;
3. a permanent failure (5.x.x) marks the mail ``bounced`` with the server's diagnostic in
   ``last_error``; the contractor's address counts as undeliverable for as long as its
   e-mail is still that address (``undeliverable``: a changed e-mail clears it). A delay or
   temporary failure (4.x.x) is recorded in the audit trail, the mail stays ``sent``;
4. moves every report it matched to ``processed_folder`` (kept there for inspection; the
   audit entry names its Message-ID). Everything else stays as it was, unseen.

Recording comes before moving: a pass that dies in between sees the report again next
time, and recording it again changes nothing.
"""

from __future__ import annotations

import re
import ssl
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Any, TextIO

import sqlalchemy as sa
import structlog

from syncd.config import Config, ConfigError, MailRecipient
from syncd.mail._dsn import (
    Bounce,
    created_stamp,
    outbox_refs,
    parse,
    read_bounce,
    verp_pattern,
)
from syncd.mail._imap import open_mailbox
from syncd.mail.render import PASSWORD_TEMPLATES
from syncd.recipient import choose_recipient
from syncd.store import AuditEntry, MailRow, StateStore
from syncd.store._batch import audit_values
from syncd.store._rows import load_json, mail_from_row
from syncd.store.schema import audit, binding, outbox

__all__ = ["BounceReport", "bounce_command", "run_pass", "undeliverable"]

log = structlog.get_logger(__name__)

PASS_LIMIT = 500  # unseen messages looked at per pass; the rest wait for the next one
_DAEMON_SENDER = re.compile(r"mailer-daemon|postmaster|mail delivery", re.IGNORECASE)


@dataclass(slots=True)
class BounceReport:
    """What one pass did: bounced and delayed mails, and how many messages it left alone."""

    bounced: list[dict[str, Any]] = field(default_factory=list)
    delayed: list[dict[str, Any]] = field(default_factory=list)
    other: int = 0  # success notices of our mail: moved, nothing recorded
    left: int = 0  # messages that are not bounces of our mail: untouched
    moved: int = 0

    def as_json(self) -> dict[str, Any]:
        return {
            "bounced": self.bounced,
            "delayed": self.delayed,
            "notices": self.other,
            "untouched": self.left,
            "moved": self.moved,
        }

    def summary_line(self) -> str:
        return (
            f"bounces: {len(self.bounced)} bounced, {len(self.delayed)} delayed, "
            f"{self.moved} moved to the processed folder, {self.left} other message(s) untouched"
        )


def run_pass(
    config: Config,
    store: StateStore,
    *,
    ssl_context: ssl.SSLContext | None = None,
    limit: int = PASS_LIMIT,
) -> BounceReport:
    """One pass over the bounce mailbox. Raises ``UnavailableError`` when the mailbox or the
    state store cannot be reached (what was recorded before stays recorded)."""
    settings = config.mail.bounces
    verp = verp_pattern(config.mail.return_path) if config.mail.return_path else None
    report = BounceReport()
    with open_mailbox(settings, ssl_context=ssl_context) as box:
        uids = box.unseen(limit)
        wanted = [uid for uid, head in box.headers(uids).items() if _looks_like(head, verp)]
        report.left = len(uids) - len(wanted)
        processed: list[int] = []
        try:
            for uid, raw in sorted(box.messages(wanted).items()):
                if _process(store, raw, verp, settings.processed_folder, report):
                    processed.append(uid)
                else:
                    report.left += 1
        finally:
            box.move(processed, settings.processed_folder)
            report.moved = len(processed)
    log.info(
        "bounces.finished",
        bounced=len(report.bounced),
        delayed=len(report.delayed),
        moved=report.moved,
        untouched=report.left,
    )
    return report


def _looks_like(head: bytes, verp: re.Pattern[str] | None) -> bool:
    """Whether a message's headers are worth fetching it whole (cheap, generous)."""
    try:
        headers = parse(head)
        return _reportish(headers, head, verp)
    except (ValueError, TypeError, LookupError):  # unreadable headers: let the full read judge
        return True


def _reportish(headers: EmailMessage, head: bytes, verp: re.Pattern[str] | None) -> bool:
    if headers.get_content_type() == "multipart/report" or headers.get("X-Failed-Recipients"):
        return True
    if str(headers.get("Return-Path", "")).strip() == "<>":
        return True
    if _DAEMON_SENDER.search(str(headers.get("From", ""))):
        return True
    return verp is not None and bool(verp.search(head.decode("utf-8", "replace")))


def _process(
    store: StateStore, raw: bytes, verp: re.Pattern[str] | None, folder: str, report: BounceReport
) -> bool:
    """Record one report if it is about our mail; False leaves the message untouched."""
    try:
        bounce = read_bounce(raw)
    except Exception as error:  # one odd message (or a detector's bug) must not stop the pass
        log.warning("bounces.unreadable", error=f"{type(error).__name__}: {error}")
        return False
    mail = _match(store, bounce, verp) if bounce is not None else None
    if bounce is None or mail is None:
        return False
    item = {
        "mail_id": mail.id,
        "key": mail.key,
        "template": mail.template,
        "to": mail.recipient,
        "status": bounce.status,
        "diagnostic": bounce.describe(),
        "report": bounce.message_id,
        "folder": folder,
    }
    if bounce.permanent:
        if _mark_bounced(store, mail, bounce, item):  # False: seen before, recorded then
            report.bounced.append(item)
            log.warning("mail.bounced", mail_id=mail.id, contractor=mail.key, status=bounce.status)
    elif bounce.permanent is False:
        _record_delay(store, mail, item)
        report.delayed.append(item)
        log.info("mail.delayed", mail_id=mail.id, contractor=mail.key, status=bounce.status)
    else:
        report.other += 1
    return True


def _match(store: StateStore, bounce: Bounce, verp: re.Pattern[str] | None) -> MailRow | None:
    """The sent outbox mail the report is about, or None when it is not ours."""
    refs = [ref for text in bounce.originals for ref in outbox_refs(text)]
    by_verp: list[int] = []
    if verp is not None:
        texts = (*bounce.addressed_to, *bounce.originals)
        by_verp = [int(m.group(1)) for text in texts for m in verp.finditer(text)]
    ids = {mail_id for mail_id, _ in refs} | set(by_verp)
    if not ids:
        return None
    query = sa.select(outbox).where(outbox.c.id.in_(sorted(ids)))
    with store.begin(write=False) as connection:
        rows = {row["id"]: mail_from_row(row) for row in connection.execute(query).mappings()}
    for mail_id, stamp in refs:
        mail = rows.get(mail_id)
        if mail is not None and created_stamp(mail.created_at) == stamp and _was_sent(mail):
            return mail
    for mail_id in by_verp:
        mail = rows.get(mail_id)
        if mail is not None and _was_sent(mail) and _same_recipient(mail, bounce):
            return mail
    return None


def _was_sent(mail: MailRow) -> bool:
    return mail.status in ("sent", "bounced")


def _same_recipient(mail: MailRow, bounce: Bounce) -> bool:
    """A VERP id alone could be another store's: the report's recipient must agree."""
    return not bounce.recipients or mail.recipient.lower() in bounce.recipients


def _mark_bounced(store: StateStore, mail: MailRow, bounce: Bounce, item: dict[str, Any]) -> bool:
    """``sent`` -> ``bounced`` with the diagnostic, and its audit entry; False if it already was."""
    entry = AuditEntry(mail.key, mail.recipient, "mail_bounced", "failed", item, "syncd")
    update = (
        sa.update(outbox)
        .where(outbox.c.id == mail.id, outbox.c.status == "sent")
        .values(status="bounced", last_error=bounce.describe())
    )
    with store.begin() as connection:
        if connection.execute(update).rowcount != 1:
            return False
        connection.execute(sa.insert(audit), [audit_values(entry, store.clock(), None)])
    return True


def _record_delay(store: StateStore, mail: MailRow, item: dict[str, Any]) -> None:
    """An audit entry for a delay, once per report (a report seen twice is not repeated)."""
    seen = store.audit_for(mail.key, limit=50)
    if any(a.action == "mail_delayed" and a.detail.get("report") == item["report"] for a in seen):
        return
    entry = AuditEntry(mail.key, mail.recipient, "mail_delayed", "deferred", item, "syncd")
    with store.begin() as connection:
        connection.execute(sa.insert(audit), [audit_values(entry, store.clock(), None)])


# -- the read side: status, explain, accounts show -----------------------------------------


def undeliverable(
    store: StateStore,
    keys: Collection[str] | None = None,
    *,
    chain: Sequence[MailRecipient] = (MailRecipient.EMAIL,),
) -> dict[str, Any]:
    """Contractors whose current e-mail bounced for good, by key (one query).

    An address stays undeliverable while the binding's e-mail (or login, or the address
    ``mail.recipient`` chooses, ``chain``) is still the one a bounced mail went to; once the
    ERP has another e-mail the next cycle changes the binding and this no longer lists it."""
    query = (
        sa.select(outbox, binding.c.login.label("b_login"), binding.c.fields_json)
        .join(binding, binding.c.contractor_key == outbox.c.contractor_key)
        .where(outbox.c.status == "bounced")
        .order_by(outbox.c.id.desc())
    )
    if keys is not None:
        query = query.where(outbox.c.contractor_key.in_(sorted(keys)))
    found: dict[str, Any] = {}
    with store.begin(write=False) as connection:
        for row in connection.execute(query).mappings():
            key = row["contractor_key"]
            fields = load_json(row["fields_json"])
            chosen = choose_recipient(chain, fields, login=row["b_login"]).address
            current = {row["b_login"].lower(), str(fields.get("email") or "").lower(), chosen}
            if key in found or row["recipient"].lower() not in current:
                continue
            found[key] = {
                "address": row["recipient"],
                "mail_id": int(row["id"]),
                "template": row["template"],
                "diagnostic": row["last_error"],
                "hint": _hint(key, row["recipient"], row["template"]),
            }
    return found


def _hint(key: str, address: str, template: str) -> str:
    text = f"{address} does not accept mail: fix the e-mail in the ERP"
    if template in PASSWORD_TEMPLATES:
        text += f", then run `syncd accounts resend-activation {key}` (the password never arrived)"
    return text


def bounce_hint(mail: Any) -> str | None:
    """What to do about one outbox mail, for ``mail list``: only a bounced one needs it."""
    if mail.status != "bounced":
        return None
    return _hint(mail.key, mail.recipient, mail.template)


# -- the command ----------------------------------------------------------------------------


def bounce_command(config: Config, *, as_json: bool, out: TextIO) -> int:
    """``syncd mail bounces``: one pass, printed; exit 0, or 4 when the mailbox is down."""
    from syncd._render import dump_json
    from syncd.wiring import open_store

    if config.mail.bounces.host is None:
        message = (
            "mail.bounces.host: not set; name the IMAP mailbox where bounces arrive "
            "(host, username, password_file) to track them"
        )
        raise ConfigError([message])
    store = open_store(config)
    try:
        report = run_pass(config, store)
    finally:
        store.close()
    if as_json:
        dump_json(report.as_json(), out)
        return 0
    out.write(report.summary_line() + "\n")
    for item in report.bounced:
        out.write(f"  bounced  mail {item['mail_id']} to {item['to']}: {item['diagnostic']}\n")
        out.write(f"           {_hint(item['key'], item['to'], item['template'])}\n")
    for item in report.delayed:
        out.write(f"  delayed  mail {item['mail_id']} to {item['to']}: {item['diagnostic']}\n")
    return 0
