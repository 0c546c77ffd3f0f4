"""The mailer's pure rules: when a deferred mail is retried, and what its template sees."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from syncd.mail._rules import mail_context, retry_time
from syncd.store import Binding, MailRow

NOW = datetime(2024, 3, 1, 8, 0, tzinfo=UTC)


def test_retry_time_doubles_from_a_minute_up_to_an_hour() -> None:
    """1, 2, 4 ... minutes after each failed run, never more than an hour."""
    pauses = [retry_time(NOW, attempts) - NOW for attempts in range(8)]
    assert pauses[:4] == [timedelta(minutes=m) for m in (1, 2, 4, 8)]
    assert pauses[-1] == timedelta(hours=1)
    assert retry_time(NOW, 10_000) - NOW == timedelta(hours=1)


def test_context_takes_the_current_login_name_and_salesperson_from_the_binding() -> None:
    """A mail that waited out send_delay shows the account as it is now, not as enqueued."""
    fields = {"name": "Nowa Nazwa", "symbol": "K1", "owner_name": "Ewa", "owner_email": None}
    binding = Binding("1", "10", "nowy@x.pl", "f" * 64, json.dumps(fields), "pending", False, None)
    row = MailRow(
        id=1,
        created_at=NOW,
        not_before=NOW,
        key="1",
        account_id="10",
        recipient="stary@x.pl",
        template="login_changed",
        language="pl",
        status="pending",
        attempts=0,
        last_error=None,
        sent_at=None,
        context={"login": "stary@x.pl", "name": "Stara", "old_login": "s@x.pl", "portal_url": None},
    )
    context = mail_context(row, binding)
    assert context["login"] == "nowy@x.pl"
    assert (context["name"], context["owner_name"], context["owner_email"]) == (
        "Nowa Nazwa",
        "Ewa",
        None,
    )
    assert context["old_login"] == "s@x.pl"
    assert "portal_url" not in context  # the renderer fills in mail.portal_url
