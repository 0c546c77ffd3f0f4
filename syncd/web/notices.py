"""The one-line notices the console shows after an action or a cycle, in words a support
person can act on (the same outcomes ``syncd.support_cli`` prints for the command line).

A notice's ``text`` is an English message id with ``{name}`` fields, translated when the
next page is rendered; ``detail`` is an error's own sentence, shown as it is. Neither ever
holds a password: the typed one is never passed here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from syncd.cycle import CycleResult

# The button each support action has (a message id: shown in the person's language).
ACTION_LABELS = {
    "block": "Block",
    "unblock": "Unblock",
    "reset-password": "Reset password",
    "resend-activation": "Resend activation",
}


@dataclass(frozen=True, slots=True)
class Notice:
    """One line for the next page: ``text`` is an English message id (translated when shown)
    with ``{name}`` fields; ``detail`` is shown as it is (an error's own sentence)."""

    kind: str  # ok | warning | error
    text: str
    values: dict[str, Any] = field(default_factory=dict)
    detail: str | None = None

    def as_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "text": self.text, "values": self.values, "detail": self.detail}


def cycle_notice(result: CycleResult, mail: dict[str, Any]) -> Notice:
    """What a cycle started from the console did, in one line."""
    if result.error:
        return Notice("error", "The cycle did not run.", detail=result.error)
    counts = result.plan.counts() if result.plan else {}
    values = {
        "changed": sum(counts.get(k, 0) for k in ("create", "adopt", "update", "remove")),
        "blocked": counts.get("block", 0) + counts.get("unblock", 0),
        "failed": result.report.failed if result.report else 0,
        "held": counts.get("held", 0),
        "sent": mail.get("sent", 0),
    }
    kind = "warning" if values["failed"] or values["held"] else "ok"
    text = (
        "Cycle {run}: {changed} accounts changed, {blocked} blocked or unblocked, "
        "{failed} failed, {held} removals held back; {sent} mails sent."
    )
    return Notice(kind, text, {**values, "run": result.run_id})


def mail_notice(action: str, document: dict[str, Any], *, typed: bool) -> Notice:
    """What became of a support action and the mail it caused (as ``support_cli`` says it)."""
    report = document.get("mail")
    label = ACTION_LABELS.get(action, action)
    done = {"action": label, "login": document["account"]["login"]}
    if report is None:
        return Notice("ok", "Done: {action} for {login}.", done)
    if report["sent"]:
        return Notice("ok", "Done: {action} for {login}; the mail was sent.", done)
    problem = next(iter(report["not_sent"]), None)
    error = problem["error"] if problem else report.get("stopped")
    if typed:
        text = (
            "The password you typed IS set in the portal, but the mail was NOT delivered: "
            "tell the customer yourself, or reset again with a generated password."
        )
        return Notice("error", text, done, detail=error)
    if problem and problem["result"] == "failed":
        return Notice("error", "The mail server refused the mail for good.", detail=error)
    text = "Done: {action} for {login}; the mail could not be sent now and will be retried."
    return Notice("warning", text, done, detail=error)
