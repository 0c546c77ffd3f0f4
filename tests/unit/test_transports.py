"""Transports without a server: retry and backoff logic, and the .eml file writer."""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import os
import threading
import time
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest

from syncd.errors import TemporaryMailError
from syncd.mail.render import MailRenderer, sample_context
from syncd.mail.transports import FileTransport, RetryPolicy, send_with_retry


def message(to: str) -> EmailMessage:
    msg = EmailMessage(policy=email.policy.SMTP)
    msg["From"] = "B2B <b2b@example.com>"
    msg["To"] = to
    msg["Subject"] = "Test"
    msg.set_content("body\n")
    return msg


class FlakySession:
    """A session that fails with a 451 a given number of times."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.sent = 0

    def send(self, message: EmailMessage) -> None:
        if self.failures:
            self.failures -= 1
            raise TemporaryMailError("451 later", code=451)
        self.sent += 1


def test_deadline_stops_before_a_pause_that_would_overrun() -> None:
    """With 7 s left, pauses of 2 and 4 s are taken but not the 8 s one after them."""
    now = [0.0]

    def sleep(seconds: float) -> None:
        now[0] += seconds

    session = FlakySession(failures=10)
    with pytest.raises(TemporaryMailError):
        send_with_retry(
            session, message("a@example.com"), deadline=7.0, clock=lambda: now[0], sleep=sleep
        )
    assert now[0] == 6.0
    assert session.failures == 7  # three attempts made


def test_stop_event_cuts_the_backoff_short() -> None:
    """Setting the stop event during a pause ends the retries without another attempt."""
    stop = threading.Event()
    pauses: list[float] = []

    def sleep(seconds: float) -> None:
        pauses.append(seconds)
        stop.set()  # SIGTERM arrives while we wait

    session = FlakySession(failures=10)
    with pytest.raises(TemporaryMailError, match="451 later"):
        send_with_retry(session, message("a@example.com"), sleep=sleep, stop_event=stop)
    assert pauses == [2.0]
    assert session.failures == 9


def test_stop_event_already_set_means_one_attempt_and_no_pause() -> None:
    """During shutdown a temporary failure is raised at once, without any backoff."""
    stop = threading.Event()
    stop.set()
    pauses: list[float] = []
    session = FlakySession(failures=10)
    with pytest.raises(TemporaryMailError):
        send_with_retry(session, message("a@example.com"), sleep=pauses.append, stop_event=stop)
    assert pauses == []
    assert session.failures == 9


def test_stop_event_wakes_the_default_sleep() -> None:
    """Without an injected sleep, setting the event from another thread ends a 30 s pause."""
    stop = threading.Event()
    session = FlakySession(failures=10)
    policy = RetryPolicy(initial=30.0, maximum=30.0)
    timer = threading.Timer(0.05, stop.set)
    started = time.monotonic()
    timer.start()
    with pytest.raises(TemporaryMailError):
        send_with_retry(session, message("a@example.com"), policy=policy, stop_event=stop)
    timer.join()
    assert time.monotonic() - started < 10
    assert session.failures == 9


# --------------------------------------------------------------------------- file transport


def test_file_transport_writes_parseable_eml(tmp_path: Path) -> None:
    """Each mail becomes one owner-only .eml, named by time, that parses back intact."""
    stamps = iter([dt.datetime(2024, 3, 1, 8, 30, 0, 5, tzinfo=dt.UTC)] * 2)
    tokens = iter(["aaaa", "bbbb"])
    transport = FileTransport(
        tmp_path / "outbox", now=lambda: next(stamps), token=lambda: next(tokens)
    )
    renderer = MailRenderer("en", None, sender="b2b@example.com", reply_to=None, portal_url=None)
    with transport.session() as session:
        session.send(renderer.render("blocked", "jan@example.com", sample_context("blocked")))
        session.send(message("b@example.com"))
    files = sorted(p.name for p in (tmp_path / "outbox").iterdir())
    assert files == ["20240301T083000.000005Z-aaaa.eml", "20240301T083000.000005Z-bbbb.eml"]
    first = tmp_path / "outbox" / files[0]
    assert first.stat().st_mode & 0o777 == 0o600
    parsed = email.message_from_bytes(first.read_bytes(), policy=email.policy.default)
    assert parsed["To"] == "jan@example.com"
    assert parsed["Subject"] == "Your B2B portal account has been blocked"
    assert b"\r\n" in first.read_bytes()


def test_file_transport_failure_leaves_nothing_behind(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A failed rename raises a retriable error and leaves neither .eml nor temp file."""

    def broken_replace(src: Any, dst: Any) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", broken_replace)
    transport = FileTransport(tmp_path)
    with pytest.raises(TemporaryMailError, match="No space left on device"):
        transport.send(message("a@example.com"))
    assert list(tmp_path.iterdir()) == []


def test_file_transport_check_reports_unusable_directory(tmp_path: Path) -> None:
    """doctor's check fails clearly when mail.directory cannot be created."""
    (tmp_path / "taken").write_text("a file, not a directory")
    with pytest.raises(TemporaryMailError, match="cannot create the mail directory"):
        FileTransport(tmp_path / "taken").check()
