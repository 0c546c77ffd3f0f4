"""Security properties of the code itself: no SQL built by string formatting, markup escaped
in every mail field, files that hold secrets created owner-only."""

from __future__ import annotations

import ast
import stat
from pathlib import Path

import pytest

from syncd.mail.render import TEMPLATE_NAMES, MailRenderer, sample_context

ROOT = Path(__file__).parents[2]
# Calls that send SQL text to a database.
SQL_SINKS = {"text", "exec_driver_sql", "execute", "executescript", "literal_column"}


def _formatted(node: ast.expr) -> bool:
    """An f-string, ``%`` or ``.format`` with a value that is not a constant."""
    if isinstance(node, ast.JoinedStr):
        return any(isinstance(part, ast.FormattedValue) for part in node.values)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mod):
        return not isinstance(node.right, ast.Constant)
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
        return node.func.attr == "format"
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        return _formatted(node.left) or _formatted(node.right)
    return False


def test_no_sql_is_built_by_string_formatting_in_the_product() -> None:
    """No call that sends SQL in syncd/ or connectors/ gets an f-string, % or .format."""
    found = []
    for path in [*ROOT.glob("syncd/**/*.py"), *ROOT.glob("connectors/**/*.py")]:
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call) or not node.args:
                continue
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            if name in SQL_SINKS and _formatted(node.args[0]):
                found.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert found == [], "SQL built by string formatting: " + ", ".join(found)


def test_the_check_itself_catches_formatted_sql() -> None:
    """The AST check flags the shapes it is there to forbid (so it cannot pass vacuously)."""
    for bad in ('text(f"SELECT {x}")', 'conn.exec_driver_sql("DROP %s" % x)',
                'sa.text("SELECT {}".format(x))', 'text("SELECT " + f"{x}")'):  # fmt: skip
        call = ast.parse(bad).body[0].value  # type: ignore[attr-defined]
        assert _formatted(call.args[0]), bad
    assert not _formatted(ast.parse('text("SELECT 1")').body[0].value.args[0])  # type: ignore[attr-defined]


MARKUP = '<script>alert("x")</script><img src=x onerror=alert(1)>&'


@pytest.mark.parametrize("template", TEMPLATE_NAMES)
def test_markup_in_every_field_is_escaped_in_the_html_part(template: str) -> None:
    """Every value a template shows, set to markup, comes out escaped in HTML, never raw."""
    renderer = MailRenderer(
        "pl", None, sender="B2B <b2b@example.com>", reply_to=None, portal_url="https://b2b.pl"
    )
    context = sample_context(template)
    for name, value in list(context.items()):
        if isinstance(value, str) and name not in ("login", "password", "portal_url"):
            context[name] = MARKUP
    message = renderer.render(template, "k@example.com", context)
    html = message.get_body(("html",)).get_content()  # type: ignore[union-attr]
    assert "<script>" not in html
    assert "<img src=x" not in html
    assert "&lt;script&gt;" in html


def test_state_store_mail_files_and_demo_files_are_owner_only(tmp_path: Path) -> None:
    """The demo's databases, config and every .eml (passwords inside) are 0600, dirs 0700."""
    from syncd.demo import build_demo
    from tests.gt_env import run_main

    config = build_demo(tmp_path / "demo")
    assert run_main(["--config", str(config), "sync"]) == 0
    files = [config, *(tmp_path / "demo").glob("*.db"), *(tmp_path / "demo/outbox").glob("*")]
    assert any(f.suffix == ".eml" for f in files)
    loose = [
        f"{f.name}: {oct(f.stat().st_mode & 0o777)}" for f in files if f.stat().st_mode & 0o077
    ]
    assert loose == []
    outbox = (tmp_path / "demo/outbox").stat().st_mode
    assert stat.S_IMODE(outbox) & 0o077 == 0
