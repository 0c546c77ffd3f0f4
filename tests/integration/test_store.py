"""The state store against real SQLite, PostgreSQL and MariaDB: schema, batches, read side."""

from __future__ import annotations

import json
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from syncd.clock import utcnow
from syncd.errors import FatalError, UnavailableError
from syncd.model import Conflict, ConflictKind
from syncd.store import AuditEntry, Binding, MailEntry, StateStore
from syncd.store.schema import metadata

T0 = datetime(2025, 3, 1, 12, 0, 0, 123456, tzinfo=UTC)
DML = ("INSERT", "UPDATE", "DELETE")


class Clock:
    """A settable clock: tests move time, the store reads it."""

    def __init__(self, now: datetime = T0) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@pytest.fixture
def clock() -> Clock:
    """A clock fixed at T0."""
    return Clock()


@pytest.fixture
def store(db_url: str, clock: Clock) -> Iterator[StateStore]:
    """A migrated store on each backend; asserts no connection is left checked out."""
    state = StateStore.open(db_url, clock=clock)
    state.migrate()
    yield state
    assert state.engine.pool.checkedout() == 0
    state.close()


@contextmanager
def statements(engine: sa.Engine) -> Iterator[list[str]]:
    """Collect the SQL statements sent to the database inside the block."""
    seen: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        seen.append(statement.strip())

    sa.event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        sa.event.remove(engine, "before_cursor_execute", record)


def writes(seen: list[str]) -> list[str]:
    return [s for s in seen if s.upper().startswith(DML)]


def make_binding(key: str, login: str | None = None, **changes: Any) -> Binding:
    values: dict[str, Any] = {
        "key": key,
        "account_id": f"acc-{key}",
        "login": login or f"k{key}@example.com",
        "fingerprint": "0" * 64,
        "fields_json": json.dumps({"name": f"Firma {key}", "discount": "5.00"}),
        "status": "active",
        "erp_blocked": False,
        "support_block_reason": None,
    }
    values.update(changes)
    return Binding(**values)


def make_mail(key: str, template: str = "activation") -> MailEntry:
    return MailEntry(
        key=key,
        account_id=f"acc-{key}",
        recipient=f"k{key}@example.com",
        template=template,
        not_before=T0 + timedelta(minutes=5),
        context={"name": "Łódź Sp. z o.o."},
    )


def test_migrate_twice_is_a_no_op(store: StateStore) -> None:
    """A second migrate() changes nothing: no DDL, and the schema still matches the code."""
    with statements(store.engine) as seen:
        store.migrate()
    ddl = [s for s in seen if s.upper().startswith(("CREATE", "ALTER", "DROP"))]
    assert ddl == []
    assert writes(seen) == []


def test_migrations_build_exactly_the_schema_the_code_uses(store: StateStore) -> None:
    """The alembic revisions and syncd/_store_schema.py describe the same tables and indexes."""
    with store.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        diff = compare_metadata(context, metadata)
    assert [d for d in diff if "syncd_alembic_version" not in str(d)] == []


def test_concurrent_migrations_both_succeed(db_url: str) -> None:
    """Two processes migrating an empty store at the same moment both end at head."""
    stores = [StateStore.open(db_url) for _ in range(2)]
    try:
        with ThreadPoolExecutor(2) as pool:
            list(pool.map(StateStore.migrate, stores))
        assert stores[0].load_bindings() == {}
    finally:
        for state in stores:
            state.close()


def test_migration_lock_is_released_after_the_commit(db_url: str) -> None:
    """The next process may migrate only once this one's version row is committed: were
    the lock released first, it would find the tables but no version and make them again
    (MariaDB's DDL commits by itself, the version row does not)."""
    state = StateStore.open(db_url)
    events: list[str] = []

    def statement(conn: Any, cursor: Any, sql: str, *args: Any) -> None:
        lowered = sql.lower()
        if "release_lock" in lowered or "advisory_unlock" in lowered:
            events.append("release")
        elif "alembic_version" in lowered and lowered.startswith(("insert", "update")):
            events.append("version")

    def commit(conn: Any) -> None:
        events.append("commit")

    engine = state.engine
    sa.event.listen(engine, "before_cursor_execute", statement)
    sa.event.listen(engine, "commit", commit)
    try:
        state.migrate()
    finally:
        state.close()
    if engine.dialect.name == "sqlite":
        assert "release" not in events  # SQLite's write lock serialises the migrations
        return
    assert events.count("release") == 1
    written = len(events) - 1 - events[::-1].index("version")
    assert "commit" in events[written : events.index("release")], events


def test_commit_batch_round_trips_everything(store: StateStore, clock: Clock) -> None:
    """Bindings, audits and mails come back as written, with aware UTC times from the clock."""
    blocked = make_binding("2", status="blocked", support_block_reason="nie płaci")
    store.commit_batch(
        upserts=[make_binding("1"), blocked],
        audits=[AuditEntry("1", "k1@example.com", "create", "ok", {"fields": ["name"]})],
        mails=[make_mail("1")],
        run_id="run-1",
    )
    assert store.load_bindings() == {"1": make_binding("1"), "2": blocked}
    first = store.binding("1")
    assert first is not None
    assert first.fields == {"name": "Firma 1", "discount": "5.00"}
    assert first.created_at == T0
    assert first.created_at.tzinfo is UTC

    (entry,) = store.audit_for("1")
    assert (entry.at, entry.run_id, entry.actor, entry.action, entry.result) == (
        T0,
        "run-1",
        "syncd",
        "create",
        "ok",
    )
    assert entry.detail == {"fields": ["name"]}
    (mail,) = store.mails(key="1")
    assert (mail.status, mail.attempts, mail.template, mail.language) == (
        "pending",
        0,
        "activation",
        "pl",
    )
    assert mail.not_before == T0 + timedelta(minutes=5)
    assert mail.context == {"name": "Łódź Sp. z o.o."}

    clock.advance(hours=1)
    store.commit_batch(
        upserts=[make_binding("1", fingerprint="1" * 64, erp_blocked=True, activated=True)]
    )
    updated = store.binding("1")
    assert updated is not None
    assert (updated.fingerprint, updated.erp_blocked, updated.activated) == ("1" * 64, True, True)
    assert (updated.created_at, updated.updated_at) == (T0, T0 + timedelta(hours=1))


def test_logins_move_between_keys_within_one_batch(store: StateStore) -> None:
    """A login may pass from a deleted key to a new one, and two keys may swap logins."""
    store.commit_batch(
        upserts=[make_binding("1", "a@x.pl"), make_binding("2", "b@x.pl"), make_binding("3")]
    )
    store.commit_batch(
        deletes=["3"],
        upserts=[
            make_binding("1", "b@x.pl"),
            make_binding("2", "a@x.pl"),
            make_binding("4", "k3@example.com"),
        ],
    )
    logins = {key: b.login for key, b in store.load_bindings().items()}
    assert logins == {"1": "b@x.pl", "2": "a@x.pl", "4": "k3@example.com"}
    assert store.find_binding_by_login("k3@example.com") == make_binding("4", "k3@example.com")


def test_cancel_mail_for_cancels_only_pending_mails_of_those_keys(store: StateStore) -> None:
    """cancel_mail_for leaves sent mails and other contractors' mails alone."""
    store.commit_batch(mails=[make_mail("1"), make_mail("1", "blocked"), make_mail("2")])
    sent = store.mails(key="1", status="pending")[0]
    store.mark_mail(sent.id, status="sent")
    store.commit_batch(cancel_mail_for=["1"], mails=[make_mail("1", "reactivated")])
    by_template = {(m.key, m.template): m.status for m in store.mails()}
    assert by_template == {
        ("1", "activation"): "cancelled",
        ("1", "blocked"): "sent",
        ("1", "reactivated"): "pending",
        ("2", "activation"): "pending",
    }


def test_a_failing_batch_writes_nothing(store: StateStore) -> None:
    """When one statement of a batch fails, every earlier one of it is rolled back too."""
    store.commit_batch(upserts=[make_binding("1"), make_binding("2")], mails=[make_mail("2")])
    before = store.load_bindings()
    with pytest.raises(FatalError, match="nothing of it was written") as caught:
        store.commit_batch(
            cancel_mail_for=["2"],
            deletes=["2"],
            # Key 1 is updated, then key 3 is inserted with key 1's new login: a bug.
            upserts=[make_binding("1", "same@x.pl"), make_binding("3", "same@x.pl")],
            audits=[AuditEntry("1", None, "update", "ok", {})],
            mails=[make_mail("1")],
        )
    assert "INSERT" not in str(caught.value)  # no SQL text in the message
    assert store.load_bindings() == before
    assert store.audit_for("1") == []
    assert [(m.key, m.status) for m in store.mails()] == [("2", "pending")]


def test_commit_batch_statement_count_does_not_grow_with_the_batch(store: StateStore) -> None:
    """A batch of 300 records sends as many statements as a batch of one."""

    def batch(keys: range) -> dict[str, Any]:
        return {
            "upserts": [make_binding(str(k)) for k in keys],
            "deletes": [str(k + 10_000) for k in keys],
            "audits": [AuditEntry(str(k), None, "create", "ok", {}) for k in keys],
            "mails": [make_mail(str(k)) for k in keys],
            "cancel_mail_for": [str(k) for k in keys],
        }

    with statements(store.engine) as small:
        store.commit_batch(**batch(range(1)))
    with statements(store.engine) as large:
        store.commit_batch(**batch(range(1, 301)))
    assert len(large) == len(small) <= 7
    assert len(store.load_bindings()) == 301


def test_sync_conflicts_writes_only_the_differences(store: StateStore, clock: Clock) -> None:
    """An unchanged conflict set writes nothing; a changed one keeps first_seen of survivors."""
    a = Conflict("1", "A1", "Alfa", None, ConflictKind.MISSING_EMAIL, "add an e-mail in the ERP")
    b = Conflict("2", "B2", "Beta", "x@y.pl", ConflictKind.DUPLICATE_EMAIL, "shared with 3")
    c = Conflict("4", "C4", "Gamma", "bad", ConflictKind.INVALID_EMAIL, "fix the e-mail")
    store.sync_conflicts([a, b])
    clock.advance(minutes=5)
    with statements(store.engine) as seen:
        store.sync_conflicts([b, a])
    assert writes(seen) == []

    changed = Conflict("2", "B2", "Beta", "x@y.pl", ConflictKind.DUPLICATE_EMAIL, "shared with 5")
    with statements(store.engine) as seen:
        store.sync_conflicts([changed, c])
    assert len(writes(seen)) == 3  # one delete, one update, one insert
    rows = {row.key: row for row in store.conflicts()}
    assert set(rows) == {"2", "4"}
    assert (rows["2"].reason, rows["2"].first_seen) == ("shared with 5", T0)
    assert (rows["4"].kind, rows["4"].first_seen) == ("invalid_email", T0 + timedelta(minutes=5))
    assert store.conflict("1") is None


def test_load_bindings_is_one_query_for_2000_bindings(store: StateStore) -> None:
    """Loading 2,000 bindings sends exactly one statement."""
    store.commit_batch(upserts=[make_binding(str(k)) for k in range(2000)])
    with statements(store.engine) as seen:
        loaded = store.load_bindings()
    assert len(loaded) == 2000
    assert len(seen) == 1


def test_runs_are_recorded_newest_first(store: StateStore, clock: Clock) -> None:
    """start_run/finish_run record a cycle; last_runs lists the newest first."""
    store.start_run("r1", kind="sync", trigger="schedule")
    clock.advance(seconds=3)
    store.finish_run("r1", status="ok", summary={"created": 2})
    store.start_run("r2", kind="full", trigger="cli")
    newest, oldest = store.last_runs()
    assert (newest.run_id, newest.status, newest.finished_at) == ("r2", "running", None)
    assert (oldest.status, oldest.summary, oldest.finished_at) == (
        "ok",
        {"created": 2},
        T0 + timedelta(seconds=3),
    )
    with pytest.raises(FatalError, match="never started"):
        store.finish_run("nope", status="ok", summary={})


def test_read_side_counts_and_mail_queue(store: StateStore, clock: Clock) -> None:
    """counts_by_status, due_mails and mark_mail answer what status and the mailer ask."""
    store.commit_batch(
        upserts=[make_binding("1"), make_binding("2", status="pending")],
        mails=[make_mail("1"), make_mail("2")],
    )
    assert store.counts_by_status() == {"active": 1, "pending": 1}
    assert store.due_mails() == []
    clock.advance(minutes=5)
    first, second = store.due_mails()
    store.mark_mail(
        first.id, status="pending", error="451 try later", retry_at=clock() + timedelta(minutes=1)
    )
    store.mark_mail(second.id, status="sent")
    assert store.due_mails() == []
    (retry,) = store.mails(status="pending")
    assert (retry.attempts, retry.last_error) == (1, "451 try later")
    (sent,) = store.mails(status="sent")
    assert sent.sent_at == clock()


def test_mail_context_refuses_a_password() -> None:
    """A mail whose context carries a password is refused before it reaches the outbox."""
    with pytest.raises(ValueError, match="never stored"):
        MailEntry("1", "a", "x@y.pl", "activation", utcnow(), {"Password": "s3cret"})


def test_mail_refuses_a_naive_not_before() -> None:
    """A not_before without a time zone is refused: the outbox compares times in UTC."""
    with pytest.raises(ValueError, match="no time zone"):
        MailEntry("1", "a", "x@y.pl", "activation", datetime(2025, 1, 1), {})


@pytest.mark.parametrize(
    "url",
    [
        "postgresql+psycopg://syncd:Tajne-Haslo-42@127.0.0.1:1/state",
        "mysql+pymysql://syncd:Tajne-Haslo-42@127.0.0.1:1/state",
    ],
)
def test_unreachable_store_raises_unavailable_without_password(url: str) -> None:
    """A store that cannot be reached raises UnavailableError that hides the password."""
    state = StateStore.open(url)
    try:
        with pytest.raises(UnavailableError) as caught:
            state.migrate()
    finally:
        state.close()
    message = str(caught.value)
    assert "Tajne-Haslo-42" not in message
    assert "127.0.0.1:1" in message
    assert "state.url" in message


def test_sqlite_store_creates_its_directory_or_says_why_not(tmp_path: Any) -> None:
    """open() creates a missing parent directory; an impossible one is UnavailableError."""
    state = StateStore.open(f"sqlite:///{tmp_path}/a/b/state.db")
    try:
        state.migrate()
    finally:
        state.close()
    assert (tmp_path / "a" / "b" / "state.db").exists()
    (tmp_path / "file").write_text("")
    with pytest.raises(UnavailableError, match=r"state\.url"):
        StateStore.open(f"sqlite:///{tmp_path}/file/state.db")
