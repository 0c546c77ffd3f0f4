"""Start-up cost: ``syncd --help`` loads no driver, connector, pydantic model or Jinja2."""

from __future__ import annotations

import json
import subprocess
import sys

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
    """--help and a sub-command's --help import none of the heavy modules."""
    for argv in (["--help"], ["sync", "--help"], ["accounts", "--help"], ["web", "--help"]):
        loaded = _modules_after(argv)
        heavy = sorted(m for m in loaded if m.startswith(HEAVY))
        assert heavy == [], (argv, heavy)
