"""`syncd status` on SQLite through the stdlib: StateStore's own statements, the same document."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from syncd import _status_sqlite
from syncd._status_sqlite import SqliteStatusReader
from syncd.config import Config
from syncd.model import Conflict, ConflictKind
from syncd.status import collect, status
from syncd.store import Binding, MailEntry, RecordFailure, StateStore, _db
from syncd.store.schema import UtcDateTime, metadata
from syncd.wiring import open_store
from tests.support import write_config

T0 = datetime(2026, 12, 1, 9, 30, 15, 123456, tzinfo=UTC)


@pytest.fixture
def config(tmp_path: Path) -> Config:
    """A configuration whose state store is a SQLite file in ``tmp_path``."""
    return write_config(tmp_path, schedule={"interval": "5m"})


@pytest.fixture
def store(config: Config) -> Iterator[StateStore]:
    """The migrated store of ``config``, with something in every table status reads."""
    state = open_store(config, clock=lambda: T0)
    try:
        _fill(state)
        yield state
    finally:
        state.close()


def _fill(store: StateStore) -> None:
    for number, (trigger, outcome) in enumerate(
        [("schedule", "ok"), ("cli", "failed"), ("schedule", "held")]
    ):
        run_id = f"run{number}"
        store.start_run(run_id, kind="sync", trigger=trigger)
        summary = {"created": number, "held": number, "held_by": "max_removals"}
        store.finish_run(run_id, status=outcome, summary=summary, error="Łódź refused")
    store.start_run("run3", kind="full", trigger="schedule")  # still running
    bindings = [_binding(str(key), status) for key, status in enumerate(["active", "blocked"] * 3)]
    mails = [
        MailEntry(b.key, b.account_id, b.login, "activation", T0, {"name": "Żółw"})
        for b in bindings
    ]
    failures = [
        RecordFailure("7", "k7@x.pl", "create", 3, T0, T0, T0 + timedelta(hours=1), False,
                      "f" * 64, "portal said no"),
        RecordFailure("8", None, "remove", 5, T0, T0, None, True, None, "gone wrong"),
    ]  # fmt: skip
    store.commit_batch(inserts=bindings, mails=mails, failures=failures)
    store.mark_mail(1, status="sent")
    store.mark_mail(2, status="failed", error="550 no such user")
    store.sync_conflicts(
        [Conflict("9", "K9", "Firma 9", None, ConflictKind.MISSING_EMAIL, "no e-mail: add one")]
    )


def _binding(key: str, status: str) -> Binding:
    fields = json.dumps({"name": f"Firma {key}"})
    return Binding(key, f"acc{key}", f"k{key}@x.pl", "0" * 64, fields, status, False, None)


def _reader(config: Config) -> SqliteStatusReader:
    reader = SqliteStatusReader.open(config.state.url)
    assert reader is not None
    return reader


def test_the_reader_sends_state_stores_own_statements(store: StateStore, config: Config) -> None:
    """Each query of the reader is what StateStore sends on SQLite, text and parameters."""
    sent: list[tuple[str, Any]] = []
    sa.event.listen(
        store.engine, "before_cursor_execute", lambda *args: sent.append((args[2], args[3]))
    )
    store.last_runs(10)
    store.mail_counts()
    store.record_failures()
    store.counts_by_status()
    store.conflicts()
    store.mails(status="failed", limit=20)
    expected = [
        (_status_sqlite.LAST_RUNS, (10, 0)),
        (_status_sqlite.MAIL_COUNTS, ()),
        (_status_sqlite.RECORD_FAILURES, ()),
        (_status_sqlite.COUNTS_BY_STATUS, ()),
        (_status_sqlite.CONFLICTS, ()),
        (_status_sqlite.MAILS_WITH_STATUS, ("failed", 20, 0)),
    ]
    assert sent == expected


def test_the_reader_gives_the_same_rows_and_document(store: StateStore, config: Config) -> None:
    """Rows, types and the whole status document equal StateStore's, field for field."""
    reader = _reader(config)
    try:
        assert reader.last_runs(10) == store.last_runs(10)
        assert reader.record_failures() == store.record_failures()
        assert reader.conflicts() == store.conflicts()
        assert reader.mails(status="failed", limit=20) == store.mails(status="failed", limit=20)
        assert reader.mail_counts() == store.mail_counts() == {"failed": 1, "pending": 4, "sent": 1}
        assert reader.counts_by_status() == store.counts_by_status()
        now = T0 + timedelta(minutes=3)
        fast, full = collect(reader, config, now), collect(store, config, now)
    finally:
        reader.close()
    assert fast == full
    assert all(fast[part] for part in ("failed_mail", "quarantined", "retrying", "conflicts"))
    started = [run.started_at for run in store.last_runs(10)]
    assert all(t.tzinfo is UTC for t in started)


def test_times_are_the_utc_columns_the_reader_reads() -> None:
    """Every UtcDateTime column of the tables status reads is converted, and nothing else."""
    tables = ("syncd_run", "syncd_record_backoff", "syncd_conflict", "syncd_outbox")
    utc = {
        column.name
        for name in tables
        for column in metadata.tables[name].columns
        if isinstance(column.type, UtcDateTime)
    }
    assert utc == _status_sqlite.TIMES


def test_status_prints_the_same_with_either_reader(
    store: StateStore, config: Config, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """`syncd status` text and --json come out the same whether or not the fast path runs."""
    outputs = []
    for fast in (True, False):
        if not fast:
            monkeypatch.setattr(SqliteStatusReader, "open", classmethod(lambda cls, url: None))
        for as_json in (False, True):
            out = tmp_path / f"{fast}{as_json}.txt"
            with out.open("w", encoding="utf-8") as stream:
                code = status(config, as_json=as_json, out=stream)
            outputs.append((code, _without_ages(out.read_text(encoding="utf-8"))))
    assert outputs[:2] == outputs[2:]


def _without_ages(text: str) -> str:
    # The health line says how long ago the last cycle finished, by the wall clock.
    return "\n".join(line for line in text.splitlines() if " ago" not in line)


def test_head_revision_is_the_stores(tmp_path: Path) -> None:
    """The reader's idea of the newest revision is the state store's own."""
    assert _status_sqlite.head_revision() == _db.head_revision() != ""


def test_a_store_that_needs_migrating_is_left_to_state_store(config: Config) -> None:
    """A missing file, a new database and an older revision all go through StateStore."""
    url = config.state.url
    assert SqliteStatusReader.open(url) is None  # no file yet
    sqlite3.connect(url.removeprefix("sqlite:///")).close()
    assert SqliteStatusReader.open(url) is None  # no version table
    store = open_store(config)
    store.close()
    _reader(config).close()  # current now
    behind = f"{int(_db.head_revision()) - 1:04d}"
    with sqlite3.connect(url.removeprefix("sqlite:///")) as connection:
        connection.execute("UPDATE syncd_alembic_version SET version_num = ?", (behind,))
    assert SqliteStatusReader.open(url) is None


@pytest.mark.parametrize(
    "url",
    [
        "postgresql+psycopg://syncd@db/state",
        "mysql+pymysql://syncd@db/state",
        "sqlite://",
        "sqlite:///:memory:",
        "sqlite+aiosqlite:///{file}",
        "sqlite:///{file}?timeout=5",
        "sqlite:///file:{file}?uri=true",
    ],
)
def test_other_urls_are_left_to_state_store(url: str, store: StateStore, config: Config) -> None:
    """Only a plain SQLite file URL takes the fast path: drivers and options are StateStore's."""
    file = config.state.url.removeprefix("sqlite:///")
    _reader(config).close()
    assert SqliteStatusReader.open(url.format(file=file)) is None
