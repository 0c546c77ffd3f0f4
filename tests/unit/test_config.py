"""The configuration: loading, every problem at once with its path, secrets never shown."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pydantic
import pytest

import syncd.config
from syncd.config import (
    Config,
    ConfigError,
    Language,
    MailTransport,
    OnRemoved,
    SmtpSecurity,
    describe,
    load_config,
    parse_config,
)
from syncd.config._values import format_duration, parse_duration
from syncd.errors import ExitCode

EXAMPLE = Path(__file__).parents[2] / "config.example.yaml"
CANARY = "Zaq1@wsx-very-secret"


def minimal(**sections: dict[str, Any]) -> dict[str, Any]:
    """The smallest valid configuration, with ``sections`` merged over it."""
    data: dict[str, Any] = {
        "source": {"url": "sqlite:////tmp/erp.db", "feature": "b2b"},
        "portal": {"url": "sqlite:////tmp/portal.db"},
        "mail": {"sender": "B2B <b2b@example.com>", "smtp": {"host": "localhost"}},
    }
    for name, values in sections.items():
        data[name] = {**data.get(name, {}), **values}
    return data


def problems(data: Any, **kwargs: Any) -> list[str]:
    """The problem lines ``parse_config`` reports for ``data``."""
    with pytest.raises(ConfigError) as caught:
        parse_config(data, **kwargs)
    assert caught.value.exit_code == ExitCode.CONFIG
    return caught.value.problems


def write(path: Path, text: str) -> Path:
    """Write ``text`` to ``path`` and return the path."""
    path.write_text(text, encoding="utf-8")
    return path


def test_example_file_loads(tmp_path: Path) -> None:
    """config.example.yaml is valid once its credential files exist, and documents the defaults."""
    write(tmp_path / "erp-password", CANARY + "\n")
    write(tmp_path / "smtp-password", "smtp-secret-pass\n")
    config = load_config(EXAMPLE, environ={"CREDENTIALS_DIRECTORY": str(tmp_path)})
    assert config.path == EXAMPLE
    assert config.source.kind == "subiekt_gt"
    assert config.source.password is not None
    assert config.source.password.get_secret_value() == CANARY
    assert config.mail.smtp.password is not None
    assert config.mail.smtp.password.get_secret_value() == "smtp-secret-pass"
    assert describe(config) == describe(parse_config(minimal_like_example(config), environ={}))


def minimal_like_example(config: Config) -> dict[str, Any]:
    """The example's non-default values on top of the defaults: they must describe alike."""
    return minimal(
        source={"url": config.source.url, "password": CANARY},
        portal={"url": "sqlite:////var/lib/syncd/portal.db"},
        mail={
            "directory": "/var/lib/syncd/outbox",
            "portal_url": "https://b2b.example.com",
            "smtp": {"host": "localhost", "username": "b2b@example.com", "password": "x" * 8},
        },
    )


def test_minimal_config_gets_every_default() -> None:
    """A config with only the required keys gets the defaults promised in spec section 3."""
    config = parse_config(minimal(), environ={})
    assert config.path is None
    assert config.state.url == "sqlite:////var/lib/syncd/state.db"
    assert config.source.erp_block_reason == "Konto zablokowane w systemie ERP"
    assert config.portal.kind == "sql"
    assert config.portal.on_removed is OnRemoved.DELETE
    assert config.portal.adopt_existing is False
    assert config.portal.password_scheme == "bcrypt"  # noqa: S105 - a scheme name
    assert config.mail.transport is MailTransport.SMTP
    assert config.mail.smtp.port == 587
    assert config.mail.smtp.security is SmtpSecurity.STARTTLS
    assert config.mail.smtp.timeout == timedelta(seconds=30)
    assert config.mail.language is Language.PL
    assert config.mail.send_delay == timedelta(minutes=5)
    assert config.schedule.interval == timedelta(minutes=5)
    assert config.schedule.full_reconcile == "0 3 * * *"
    assert str(config.safety.max_removals) == "10%"
    assert config.observability.listen is None
    assert config.retention.audit == timedelta(days=365)
    assert config.retention.mail == timedelta(days=90)
    assert config.retention.runs == timedelta(days=30)


def test_config_is_frozen() -> None:
    """Sections cannot be changed after loading: a reload builds a new Config."""
    config = parse_config(minimal(), environ={})
    with pytest.raises(pydantic.ValidationError):
        config.portal.on_removed = OnRemoved.DEACTIVATE


def test_every_problem_is_reported_at_once_with_its_path(tmp_path: Path) -> None:
    """Four mistakes in four sections give four problems, each naming its key and value."""
    text = (
        EXAMPLE.read_text(encoding="utf-8")
        .replace("on_removed: delete", "on_removed: remove")
        .replace("interval: 5m", "interval: 5 minutes")
        .replace("max_removals: 10%", "max_removals: lots")
        .replace("portal:\n", "potral: {}\nportal:\n")
    )
    write(tmp_path / "erp-password", CANARY)
    write(tmp_path / "smtp-password", CANARY)
    with pytest.raises(ConfigError) as caught:
        load_config(
            write(tmp_path / "c.yaml", text), environ={"CREDENTIALS_DIRECTORY": str(tmp_path)}
        )
    assert caught.value.problems == [
        "portal.on_removed: must be one of delete, deactivate (got 'remove')",
        "schedule.interval: must be a duration like 30s, 5m, 2h, 1d or 1h30m (got '5 minutes')",
        "safety.max_removals: must be a count like 25 or a percentage like 10% (got 'lots')",
        "potral: unknown key (did you mean 'portal'?)",
    ]
    assert str(caught.value).startswith("configuration is invalid (4 errors):")


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (minimal(mail={"transport": "file"}), "mail.directory: required when transport is file"),
        (minimal(mail={"smtp": {}}), "mail.smtp.host: required when transport is smtp"),
        (minimal(mail={"sender": "b2b at example"}), "mail.sender: must be an e-mail address"),
        (minimal(mail={"sender": "a@example.com, b@example.com"}), "mail.sender: must be one"),
        (minimal(source={"feature": "   "}), "source.feature: must not be empty (got '   ')"),
        (
            minimal(portal={"kind": "scim", "url": "https://p.example.com/scim/v2"}),
            "portal.token: kind scim needs token, or username and password",
        ),
        (
            minimal(portal={"kind": "ldap"}),
            "portal.kind: must be one of sql, scim, rest (got 'ldap')",
        ),
        (minimal(portal={"kind": "rest", "url": "ftp://x"}), "portal.url: must be an http"),
        (minimal(source={"kind": "oracle"}), "source.kind: must be one of subiekt_gt,"),
        (
            minimal(source={"kind": "subiekt_gt", "query": "SELECT 1"}),
            "source.query: unknown key",
        ),
        (minimal(portal={"password_scheme": "md5"}), "portal.password_scheme: must be bcrypt"),
        (
            minimal(portal={"kind": "scim", "url": "https://x/scim", "login": "client"}),
            "portal.login: must be one of email, symbol (got 'client')",
        ),
        (minimal(source={"kind": "sql"}), "source.query: required key is missing"),
        (
            minimal(source={"kind": "sql", "query": "SELECT 1 AS key", "schema": "x"}),
            "source.schema: unknown",
        ),
        (minimal(mail={"smtp": {"host": "h", "port": 70000}}), "mail.smtp.port: must be a port"),
        (minimal(observability={"listen": "9464"}), "observability.listen: must be host:port"),
        (minimal(mail={"templates_dir": "/nonexistent/t"}), "mail.templates_dir: directory"),
        (
            {"source": {"url": "sqlite://", "feature": "b2b"}, "mail": {"sender": "a@b.pl"}},
            "portal: required section is missing (it needs url)",
        ),
    ],
)
def test_cross_field_and_value_rules(data: dict[str, Any], expected: str) -> None:
    """Each rule of spec section 3 is reported at the key the admin has to fix."""
    found = problems(data, environ={})
    assert any(line.startswith(expected) for line in found), found


def test_each_source_kind_validates_its_own_keys() -> None:
    """source is a union on kind: each kind is parsed into its own model, kind in any case."""
    nexo = parse_config(minimal(source={"kind": " Subiekt_Nexo "}), environ={})
    assert type(nexo.source).__name__ == "SubiektNexoConfig"
    assert nexo.source.kind == "subiekt_nexo"
    sql = {"kind": "sql", "url": "sqlite://", "query": "SELECT id AS key FROM k"}
    plain = parse_config(minimal() | {"source": sql}, environ={})
    assert type(plain.source).__name__ == "SqlSourceConfig"


def test_yaml_syntax_error_names_line_and_column(tmp_path: Path) -> None:
    """A YAML syntax error gives file:line:column and says what to check."""
    path = write(tmp_path / "c.yaml", "source:\n  url: x\n feature: b2b\n")
    with pytest.raises(ConfigError) as caught:
        load_config(path, environ={})
    (line,) = caught.value.problems
    assert line.startswith(f"{path}:3:")
    assert "invalid YAML" in line
    assert "indentation" in line


def test_duplicate_key_is_an_error(tmp_path: Path) -> None:
    """A key given twice is reported with both lines instead of the first being dropped."""
    path = write(tmp_path / "c.yaml", "portal:\n  url: a\n  url: b\n")
    with pytest.raises(ConfigError) as caught:
        load_config(path, environ={})
    assert caught.value.problems == [
        f"{path}:3:3: invalid YAML: key 'url' is given twice (first on line 2); fix the file "
        "there (check the indentation, and quote values that contain ': ' or ' #' or start "
        "with { [ * & ! % @ or `)"
    ]


def test_missing_file_says_where_to_point(tmp_path: Path) -> None:
    """A missing file names the path and how to point elsewhere."""
    path = tmp_path / "nope.yaml"
    with pytest.raises(ConfigError) as caught:
        load_config(path, environ={})
    (line,) = caught.value.problems
    assert line.startswith(f"{path}: configuration file not found")
    assert "--config" in line
    assert "SYNCD_CONFIG" in line


def test_path_resolution_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An explicit path wins over SYNCD_CONFIG, which wins over the default path."""
    explicit = write(tmp_path / "explicit.yaml", json.dumps(minimal()))
    from_env = write(tmp_path / "env.yaml", json.dumps(minimal()))
    default = write(tmp_path / "default.yaml", json.dumps(minimal()))
    monkeypatch.setattr(syncd.config, "DEFAULT_PATH", default)
    assert load_config(explicit, environ={"SYNCD_CONFIG": str(from_env)}).path == explicit
    assert load_config(environ={"SYNCD_CONFIG": str(from_env)}).path == from_env
    assert load_config(environ={}).path == default


def test_environment_variables_are_substituted() -> None:
    """${NAME} is replaced anywhere in a string; $${ stays a literal ${."""
    environ = {"DB_HOST": "db.example.local", "FEATURE": "B2B-Hurt", "SMTP_PORT": "465"}
    config = parse_config(
        minimal(
            source={"url": "postgresql+psycopg://syncd@${DB_HOST}/erp", "feature": "${FEATURE}"},
            mail={"smtp": {"host": "h", "port": "${SMTP_PORT}"}, "portal_url": "https://x/$${a}"},
        ),
        environ=environ,
    )
    assert config.source.url == "postgresql+psycopg://syncd@db.example.local/erp"
    assert config.source.feature == "B2B-Hurt"
    assert config.mail.smtp.port == 465
    assert config.mail.portal_url == "https://x/${a}"


def test_unset_environment_variable_names_path_and_variable() -> None:
    """An unset variable is one problem at its key, without a follow-up error for that key."""
    found = problems(minimal(mail={"sender": "${SENDER}"}), environ={})
    assert found == [
        "mail.sender: environment variable SENDER is not set: set it (under systemd: "
        "Environment= or EnvironmentFile= in a drop-in)"
    ]


def test_secret_file_is_read_relative_to_the_config(tmp_path: Path) -> None:
    """x_file reads the secret from a file (one trailing newline dropped), relative paths too."""
    write(tmp_path / "token", "t0ken-value\n")
    write(tmp_path / "url", "postgresql+psycopg://syncd:pw-in-url@db/portal\n")
    data = minimal()
    data["portal"] = {"url_file": "${CREDENTIALS_DIRECTORY}/url", "password_file": "token"}
    config = parse_config(data, environ={"CREDENTIALS_DIRECTORY": str(tmp_path)}, base_dir=tmp_path)
    password = getattr(config.portal, "password", None)
    assert password is not None
    assert password.get_secret_value() == "t0ken-value"
    assert config.portal.url == "postgresql+psycopg://syncd:pw-in-url@db/portal"
    assert config.portal.safe_url == "postgresql+psycopg://syncd:***@db/portal"


def test_secret_file_problems(tmp_path: Path) -> None:
    """Both x and x_file is an error, and so is a file that cannot be read (named)."""
    data = minimal(
        source={"password": "pw", "password_file": str(tmp_path / "pw")},
        portal={"password_file": str(tmp_path / "missing")},
    )
    assert problems(data, environ={}) == [
        "source.password_file: give either password or password_file, not both",
        f"portal.password_file: cannot read {tmp_path / 'missing'}: No such file or directory",
    ]


def test_secrets_never_appear_in_problems_or_describe() -> None:
    """Wrong secrets show as <secret>, URLs with their password hidden, describe() as ***."""
    encoded = quote(CANARY, safe="")
    data = minimal(
        source={"url": f"mssql+pyodbc://sa:{CANARY}@erp/GT", "password": CANARY},
        portal={"kind": "sql", "url": f"postgresql://u:{encoded}@h/db", "password": [CANARY]},
        mail={"smtp": {"host": "h", "password": [CANARY]}},
        state={"url": f"not a url {CANARY}"},
    )
    with pytest.raises(ConfigError) as caught:
        parse_config(data, environ={})
    text = str(caught.value)
    assert "very-secret" not in text
    assert "source.url: has more than one @ before the host" in text
    assert "state.url: must be an SQLAlchemy database URL" in text
    assert "mail.smtp.password: must be text (put it in quotes) (got <secret>)" in text

    data = minimal(
        source={"url": f"mssql+pyodbc:///?odbc_connect=DRIVER%3Dx%3BPWD%3D{encoded}"},
        portal={"url": f"postgresql://u:{encoded}@h/db", "password": CANARY},
        mail={"smtp": {"host": "h", "username": "u", "password": CANARY}},
    )
    described = json.dumps(describe(parse_config(data, environ={})))
    assert "very-secret" not in described
    assert '"password": "***"' in described
    assert "postgresql://u:***@h/db" in described
    assert "PWD%3D%2A%2A%2A" in described


@pytest.mark.parametrize(
    ("written", "seconds", "canonical"),
    [
        ("30s", 30, "30s"),
        ("5m", 300, "5m"),
        ("2h", 7200, "2h"),
        ("1d", 86400, "1d"),
        ("1h30m", 5400, "1h30m"),
        ("1.5h", 5400, "1h30m"),
        (" 1d 2h ", 93600, "1d2h"),
        (90, 90, "1m30s"),
        (0.5, 0.5, "0.5s"),
        ("0s", 0, "0s"),
    ],
)
def test_durations(written: object, seconds: float, canonical: str) -> None:
    """Durations parse to timedelta and print in their canonical short form."""
    parsed = parse_duration(written)
    assert parsed == timedelta(seconds=seconds)
    assert format_duration(parsed) == canonical


@pytest.mark.parametrize("written", ["5 minutes", "m", "", "-5m", "5m1h", True, [5]])
def test_invalid_durations(written: object) -> None:
    """Anything but the short duration forms is rejected with a hint."""
    with pytest.raises(ValueError, match="must be a duration like 30s"):
        parse_duration(written)


def test_zero_interval_is_rejected() -> None:
    """The cycle interval must be longer than zero; a zero send delay is fine."""
    assert problems(minimal(schedule={"interval": 0}), environ={}) == [
        "schedule.interval: must be a duration like 30s, 5m, 2h, 1d or 1h30m, longer than "
        "zero (got 0)"
    ]
    assert parse_config(minimal(mail={"send_delay": "0s"}), environ={}).mail.send_delay == (
        timedelta(0)
    )


@pytest.mark.parametrize(
    ("written", "managed", "limit", "shown"),
    [
        (25, 1000, 25, "25"),
        ("25", 3, 25, "25"),
        ("10%", 1000, 100, "10%"),
        ("10%", 5, 1, "10%"),
        ("2.5%", 200, 5, "2.5%"),
        ("0%", 100, 0, "0%"),
    ],
)
def test_max_removals(written: object, managed: int, limit: int, shown: str) -> None:
    """max_removals is a count or a percentage of the managed accounts (rounded up)."""
    config = parse_config(minimal(safety={"max_removals": written}), environ={})
    assert config.safety.max_removals.limit(managed) == limit
    assert str(config.safety.max_removals) == shown
    assert describe(config)["safety"]["max_removals"] == (int(shown) if shown.isdigit() else shown)


@pytest.mark.parametrize("written", ["150%", "-3", "x%", True])
def test_invalid_max_removals(written: object) -> None:
    """A negative count, a percentage over 100 or anything else is rejected."""
    (line,) = problems(minimal(safety={"max_removals": written}), environ={})
    assert line.startswith("safety.max_removals: must be a")


def test_cron_is_validated() -> None:
    """full_reconcile must be a 5-field crontab that APScheduler accepts."""
    ok = parse_config(minimal(schedule={"full_reconcile": "30  2 * * mon-fri"}), environ={})
    assert ok.schedule.full_reconcile == "30 2 * * mon-fri"
    for bad in ("0 3 * *", "61 3 * * *"):
        (line,) = problems(minimal(schedule={"full_reconcile": bad}), environ={})
        assert line.startswith("schedule.full_reconcile: must be a 5-field crontab")


def test_unknown_keys_are_errors_with_a_suggestion() -> None:
    """A typo'd key is reported with the closest real key; _file only works for secrets."""
    data = minimal(mail={"sendr": "x", "sender_file": "/x"})
    assert problems(data, environ={}) == [
        "mail.sendr: unknown key (did you mean 'sender'?)",
        "mail.sender_file: unknown key: only secrets can be read from a file (none here)",
    ]


def test_relative_paths_are_relative_to_the_config_file(tmp_path: Path) -> None:
    """mail.directory and templates_dir are resolved against the config file's directory."""
    (tmp_path / "templates").mkdir()
    data = minimal(mail={"transport": "file", "directory": "outbox", "templates_dir": "templates"})
    path = write(tmp_path / "c.yaml", json.dumps(data))
    config = load_config(path, environ={})
    assert config.mail.directory == tmp_path / "outbox"
    assert config.mail.templates_dir == tmp_path / "templates"


def test_listen_address() -> None:
    """observability.listen is parsed into host and port, IPv6 in brackets."""
    config = parse_config(minimal(observability={"listen": "[::1]:9464"}), environ={})
    assert config.observability.listen is not None
    assert (config.observability.listen.host, config.observability.listen.port) == ("::1", 9464)
    assert describe(config)["observability"]["listen"] == "[::1]:9464"


def test_top_level_must_be_a_mapping(tmp_path: Path) -> None:
    """A file that holds a list instead of sections is one clear problem."""
    with pytest.raises(ConfigError, match=r"\(top level\): must be a mapping of sections"):
        load_config(write(tmp_path / "c.yaml", "- a\n- b\n"), environ={})


def test_retention_is_configurable_and_must_be_positive() -> None:
    """retention.* take durations; zero would purge everything at once, so it is refused."""
    config = parse_config(minimal(retention={"audit": "730d"}), environ={})
    assert config.retention.audit == timedelta(days=730)
    assert describe(config)["retention"] == {"audit": "730d", "mail": "90d", "runs": "30d"}
    (line,) = problems(minimal(retention={"mail": "0s"}), environ={})
    assert line.startswith("retention.mail: must be a duration like 30s")
