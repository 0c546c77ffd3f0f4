"""The outbox's delivery bookkeeping on SQLite, PostgreSQL and MariaDB, in constant statements."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest

from syncd.store import AuditEntry, MailEntry, StateStore
from tests.integration.test_store import Clock, make_binding, statements, writes


@pytest.fixture
def store(db_url: str) -> Iterator[StateStore]:
    """A migrated store on each backend, with three bindings and a due mail for each."""
    clock = Clock()
    state = StateStore.open(db_url, clock=clock)
    state.migrate()
    bindings = [make_binding(k, status="pending") for k in ("1", "2", "3")]
    mails = [
        MailEntry(b.key, b.account_id, b.login, "activation", clock.now, {"login": b.login})
        for b in bindings
    ]
    state.commit_batch(upserts=bindings, mails=mails)
    yield state
    assert state.engine.pool.checkedout() == 0  # type: ignore[attr-defined]
    state.close()


def test_record_sent_marks_the_mail_and_activates_a_pending_binding(store: StateStore) -> None:
    """One transaction: the mail is sent, the binding activated and active, an audit row added."""
    first = store.due_mails()[0]
    entry = AuditEntry(first.key, None, "mail_sent", "ok", {"mail_id": first.id}, "ewa")
    with statements(store.engine) as seen:
        store.record_sent(first.id, activate=first.key, entry=entry)
    assert len(writes(seen)) == 3
    binding = store.binding(first.key)
    assert binding is not None
    assert (binding.status, binding.activated) == ("active", True)
    [sent] = store.mails(status="sent")
    assert (sent.id, sent.attempts, sent.sent_at is not None) == (first.id, 1, True)
    assert store.audit_for(first.key)[-1].actor == "ewa"


def test_record_sent_of_a_notice_is_two_writes_and_keeps_the_address(store: StateStore) -> None:
    """A mail without a password: one UPDATE (sent, and the address it went to), one INSERT."""
    first, second = store.due_mails()[:2]
    entry = AuditEntry(first.key, None, "mail_sent", "ok", {"mail_id": first.id})
    with statements(store.engine) as seen:
        store.record_sent(first.id, activate=None, entry=entry, recipient="nowy@example.com")
    assert [s.split()[0] for s in writes(seen)] == ["UPDATE", "INSERT"]
    store.record_sent(second.id, activate=None, entry=entry)  # no address: the row's stays
    sent = {m.id: m for m in store.mails(status="sent")}
    assert sent[first.id].recipient == "nowy@example.com"
    assert sent[second.id].recipient == second.recipient
    assert (sent[first.id].attempts, sent[first.id].last_error) == (1, None)
    binding = store.binding(first.key)
    assert binding is not None
    assert (binding.status, binding.activated) == ("pending", False)


def test_settle_mails_writes_a_batch_in_constant_statements(store: StateStore) -> None:
    """Failed, deferred and cancelled mails of a batch: one statement per kind, any count."""
    one, two, three = store.due_mails()
    later = store.clock() + timedelta(minutes=1)
    with statements(store.engine) as seen:
        store.settle_mails(
            failed=[(one.id, "550 User unknown")],
            deferred=[(two.id, "451 later", later)],
            cancelled=[(three.id, "the account was removed")],
        )
    assert len(writes(seen)) == 3
    assert store.due_mails() == []
    assert store.mail_counts() == {"failed": 1, "pending": 1, "cancelled": 1}
    [deferred] = store.mails(status="pending")
    assert (deferred.not_before, deferred.attempts, deferred.last_error) == (later, 1, "451 later")
    assert store.mails(status="failed")[0].last_error == "550 User unknown"


def test_a_cancelled_mail_is_never_marked_sent(store: StateStore) -> None:
    """A mail cancelled before its result is recorded stays cancelled."""
    first = store.due_mails()[0]
    store.cancel_pending(first.key, ["activation", "password_reset"], why="replaced")
    entry = AuditEntry(first.key, None, "mail_sent", "ok", {})
    store.record_sent(first.id, activate=None, entry=entry)
    assert [m.status for m in store.mails(key=first.key)] == ["cancelled"]
    assert set(store.bindings_for(["1", "3", "9"])) == {"1", "3"}
