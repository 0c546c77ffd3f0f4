"""Start-up cost: ``syncd --help`` loads no driver, connector, pydantic model or Jinja2,
``syncd status`` on a current store loads no alembic, cycle, mail package or connector (on
SQLite not even SQLAlchemy: ``syncd._status_sqlite``), and ``syncd check-config`` loads the
configuration and the mail templates but no state store, SQLAlchemy, bcrypt or connector.
These count modules, not seconds."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from alembic.util.exc import CommandError

from connectors import PORTALS, SOURCES
from syncd.store import StateStore, _db

KINDS = (*SOURCES.values(), *PORTALS.values())

HEAVY = (
    "sqlalchemy", "pydantic", "jinja2", "bcrypt", "psycopg", "pymysql", "pyodbc", "apscheduler",
    "connectors.subiekt_gt", "connectors.sql_portal", "syncd.config",
    "starlette", "uvicorn", "argon2", "syncd.web.app", "syncd.web.people", "rich",
)  # fmt: skip


def _modules_after(argv: list[str]) -> set[str]:
    code = (
        "import sys, json\n"
        "from syncd.cli import main\n"
        "try:\n"
        f"    main({argv!r})\n"
        "except SystemExit:\n"
        "    pass\n"
        "print(json.dumps(sorted(sys.modules)), file=sys.stderr)\n"
    )
    done = subprocess.run(  # noqa: S603 - this interpreter, fixed code
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    return set(json.loads(done.stderr.strip().splitlines()[-1]))


def test_help_imports_no_driver_connector_or_config_model() -> None:
    """--help, a sub-command's --help and --version import none of the heavy modules."""
    for argv in (
        ["--help"], ["sync", "--help"], ["accounts", "--help"], ["web", "--help"], ["--version"],
    ):  # fmt: skip
        loaded = _modules_after(argv)
        heavy = sorted(m for m in loaded if m.startswith(HEAVY))
        assert heavy == [], (argv, heavy)


def test_logging_is_configured_when_structlog_is_first_imported() -> None:
    """configure() before structlog is imported: the newest set-up applies on its import."""
    code = (
        "import sys\n"
        "from syncd import log\n"
        "log.configure(stream=sys.stdout, json=False)\n"
        "log.configure(stream=sys.stderr, json=True, level='warning')\n"
        "assert 'structlog' not in sys.modules\n"
        "import structlog\n"
        "structlog.get_logger().info('below the level')\n"
        "structlog.get_logger().warning('shown', contractor='K1')\n"
    )
    done = subprocess.run(  # noqa: S603 - this interpreter, fixed code
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert done.stdout == ""
    [line] = done.stderr.splitlines()
    assert json.loads(line) | {"timestamp": None} == {
        "event": "shown",
        "level": "warning",
        "contractor": "K1",
        "timestamp": None,
    }


# -- syncd status on a store at the newest revision ----------------------------------------

# What ``status`` never needs while the store is current: the migration tool, the cycle, the
# mail package (Jinja2, bcrypt) and every connector's code (its config section is loaded to
# validate the file, the connector itself is not).
STATUS_NEVER = (
    "alembic", "syncd.cycle", "syncd._cycle_plan", "syncd.backoff", "syncd.apply",
    "syncd.mail", "jinja2", "bcrypt", "connectors.base", "structlog", "apscheduler",
    *sorted({f"connectors.{kind.connector.partition(':')[0]}" for kind in KINDS}),
    *sorted({f"connectors.{kind.fake.partition(':')[0]}" for kind in KINDS if kind.fake}),
)  # fmt: skip


@pytest.fixture(scope="module")
def demo_config(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A demo directory, built and synced once by ``syncd demo`` in its own process."""
    directory = tmp_path_factory.mktemp("startup") / "demo"
    _modules_after(["demo", str(directory)])
    return str(directory / "config.yaml")


# What ``status`` on a current SQLite store does not load either: the store reads it
# through the stdlib, and loading the configuration needs no SQLAlchemy or email-validator
# (``syncd.config._url``, ``syncd._email``) for plain addresses and URLs like the demo's.
STATUS_SQLITE_NEVER = (
    *STATUS_NEVER, "sqlalchemy", "syncd.store", "syncd.wiring", "email_validator",
)  # fmt: skip


def test_status_of_a_current_sqlite_store_imports_no_sqlalchemy_cycle_mail_or_connector(
    demo_config: str,
) -> None:
    """``syncd status`` reads a current SQLite store without SQLAlchemy or what a cycle needs."""
    for argv in (["status"], ["status", "--json"]):
        loaded = _modules_after(["--config", demo_config, *argv])
        assert "syncd._status_sqlite" in loaded  # the command ran (and read the store)
        assert sorted(m for m in loaded if m.startswith(STATUS_SQLITE_NEVER)) == []


# What ``check-config`` (offline) never needs: it validates the file (every kind's config
# section, ``connectors.<kind>.config``, builds the source and portal unions) and renders
# every mail template with sample data (Jinja2, and a generated password, which is not a
# hash); it opens no state store, ERP, portal or mail server.
CHECK_CONFIG_NEVER = (
    *(m for m in STATUS_NEVER if m not in ("syncd.mail", "jinja2")), "sqlalchemy", "argon2",
    "syncd.store", "syncd.wiring", "syncd.status", "syncd.mail.mailer", "syncd.mail._batch",
    "syncd.mail.transports", "syncd.mail.bounces", "psycopg", "pymysql", "pyodbc", "rich",
    "email_validator",
)  # fmt: skip
CHECK_CONFIG_NEEDS = ("syncd.config", "syncd.mail.render", "jinja2")


def test_check_config_imports_no_store_sqlalchemy_bcrypt_or_connector(demo_config: str) -> None:
    """``syncd check-config`` renders the templates without the mailer, store or a connector."""
    for argv in (["check-config"], ["check-config", "--json"]):
        loaded = _modules_after(["--config", demo_config, *argv])
        assert set(CHECK_CONFIG_NEEDS) <= loaded  # the command ran (and rendered the mails)
        assert sorted(m for m in loaded if m.startswith(CHECK_CONFIG_NEVER)) == []


def test_status_of_a_store_elsewhere_goes_through_sqlalchemy(
    demo_config: str, tmp_path: Path
) -> None:
    """A state URL with options is read by StateStore, still without a cycle or a connector."""
    text = Path(demo_config).read_text(encoding="utf-8")
    url = next(line.split()[1] for line in text.splitlines() if line.startswith("  url: sqlite"))
    config = tmp_path / "config.yaml"
    config.write_text(text.replace(url, f"{url}?timeout=20", 1), encoding="utf-8")
    loaded = _modules_after(["--config", str(config), "status"])
    assert "syncd.status" in loaded
    assert "sqlalchemy" in loaded
    assert sorted(m for m in loaded if m.startswith(STATUS_NEVER)) == []


def test_head_revision_is_alembics_head() -> None:
    """The fast path's idea of the newest revision (file names) is alembic's own head."""
    config = Config()
    config.set_main_option("script_location", "syncd.store:migrations")
    assert _db.head_revision() == ScriptDirectory.from_config(config).get_current_head()


def test_migrated_store_is_current_and_skips_alembic(db_url: str) -> None:
    """After migrate() the version check alone finds the store current, on every backend."""
    store = StateStore.open(db_url)
    try:
        assert not _db.is_current(store.engine)  # a new, empty database
        store.migrate()
        assert _db.is_current(store.engine)
    finally:
        store.close()


def _upgrade_to(engine: sa.Engine, revision: str) -> None:
    config = Config()
    config.set_main_option("script_location", "syncd.store:migrations")
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, revision)


def test_store_one_revision_behind_is_migrated(db_url: str) -> None:
    """A store one revision behind the code is not taken as current: migrate() upgrades it."""
    head = _db.head_revision()
    behind = f"{int(head) - 1:04d}"
    store = StateStore.open(db_url)
    try:
        _upgrade_to(store.engine, behind)
        assert not _db.is_current(store.engine)
        store.migrate()
        assert _db.is_current(store.engine)
        version = sa.table(_db.VERSION_TABLE, sa.column("version_num"))
        with store.engine.connect() as connection:
            assert connection.execute(sa.select(version.c.version_num)).scalar_one() == head
            assert sa.inspect(connection).has_table("syncd_record_backoff")  # made by 0004
        assert store.record_failures() == {}
    finally:
        store.close()


def test_store_newer_than_the_code_is_refused(sqlite_url: str) -> None:
    """A store migrated by a newer syncd is not current either: alembic refuses it, as before."""
    store = StateStore.open(sqlite_url)
    try:
        store.migrate()
        version = sa.table(_db.VERSION_TABLE, sa.column("version_num"))
        with store.engine.begin() as connection:
            connection.execute(sa.update(version).values(version_num="9999"))
        assert not _db.is_current(store.engine)
        with pytest.raises(CommandError, match="9999"):
            store.migrate()
    finally:
        store.close()
