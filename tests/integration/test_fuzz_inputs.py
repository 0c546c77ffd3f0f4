"""Bad input from people: any YAML file and any command line end in exit 0, 1, 2, 3 or 4
with a message, never a traceback (issue 9, the bad-input suite's fuzz part)."""

from __future__ import annotations

import contextlib
import io
from pathlib import Path
from typing import Any

import pytest
import structlog
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from syncd.cli import main
from syncd.config import load_config
from syncd.errors import ConfigError

KEYS = ["state", "source", "portal", "mail", "schedule", "safety", "kind", "url", "feature",
        "query", "sender", "transport", "directory", "smtp", "host", "port", "interval",
        "max_removals", "on_removed", "password", "password_file", "token", "tables",
        "columns", "operations", "${X}", "listen", ""]  # fmt: skip
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**40), 2**40),
    st.floats(allow_nan=True),
    st.text(max_size=40),
    st.sampled_from(
        [
            "sqlite:///x.db",
            "5m",
            "-1s",
            "100%",
            "sql",
            "scim",
            "rest",
            "subiekt_gt",
            "subiekt_nexo",
            "${UNSET}",
            "a@b",
            "\x00",
            "💥",
        ]
    ),
)
DOCUMENTS = st.recursive(
    SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.sampled_from(KEYS), inner, max_size=6)
    ),
    max_leaves=25,
)


def _problems(path: Path) -> list[str] | None:
    """None for a valid configuration, else its problem lines; any other error escapes."""
    try:
        load_config(path, environ={})
    except ConfigError as error:
        return error.problems
    return None


def _quiet_main(argv: list[str]) -> tuple[int, str]:
    """``syncd.cli.main`` with stdout and stderr captured; argparse's exit becomes a code."""
    out, err = io.StringIO(), io.StringIO()
    saved = structlog.get_config()
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = main(argv)
            except SystemExit as stop:
                code = int(stop.code or 0)
    finally:
        structlog.configure(**saved)
    return code, out.getvalue() + err.getvalue()


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(document=DOCUMENTS)
def test_any_yaml_document_is_a_config_or_a_config_error(document: Any) -> None:
    """Whatever the mapping, loading it gives a Config or a ConfigError, nothing else."""
    path = Path("/tmp/syncd-fuzz-config.yaml")  # noqa: S108 - a scratch file of this test
    path.write_text(yaml.safe_dump(document, allow_unicode=True), encoding="utf-8")
    problems = _problems(path)
    assert problems is None or all(isinstance(line, str) and line for line in problems)


@settings(max_examples=200, deadline=None)
@given(text=st.text(max_size=200))
def test_any_text_file_is_a_config_or_a_config_error(text: str) -> None:
    """Broken YAML (tabs, unclosed quotes, binary junk) is a ConfigError naming the place."""
    path = Path("/tmp/syncd-fuzz-text.yaml")  # noqa: S108 - a scratch file of this test
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    problems = _problems(path)
    assert problems is None or problems


WORDS = ["plan", "sync", "explain", "status", "check-config", "doctor", "accounts", "find",
         "show", "block", "unblock", "reset-password", "mail", "list", "history", "--json",
         "--contractor", "--full", "--reason", "--status", "--actor", "--online",
         "--discover", "--allow-removals", "-x", "K001", "101", "*kowalsk*", "nobody@x.pl",
         "", "'; DROP TABLE b2b_account; --", "💥", "\u202e", "--limit", "-5"]  # fmt: skip


@pytest.fixture(scope="module")
def demo_config(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A synced demo on SQLite files, for commands that need a real configuration."""
    from syncd.demo import build_demo

    config = build_demo(tmp_path_factory.mktemp("fuzz") / "demo")
    assert _quiet_main(["--config", str(config), "sync"])[0] == 0
    return config


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow,
          HealthCheck.function_scoped_fixture])  # fmt: skip
@given(argv=st.lists(st.one_of(st.sampled_from(WORDS), st.text(max_size=12)), max_size=6))
def test_any_command_line_exits_with_a_code_and_no_traceback(
    argv: list[str], demo_config: Path
) -> None:
    """Random words after `syncd --config DEMO` exit 0-4 and never print a traceback."""
    code, printed = _quiet_main(["--config", str(demo_config), *argv])
    assert code in (0, 1, 2, 3, 4), (argv, code, printed[-500:])
    assert "Traceback" not in printed, (argv, printed[-2000:])
