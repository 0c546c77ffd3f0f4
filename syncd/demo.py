"""``syncd demo``: an embedded demo on SQLite files, to see a whole cycle in one command.

It builds an ERP of the chosen kind (Subiekt GT by default, ``--source subiekt_nexo`` or
``sql``) with the same few dozen Polish contractors (some with the messy data real ERPs
hold), writes a configuration that points at it, a SQLite portal and a
SQLite state store, with mail written to files, then runs ``plan`` and ``sync`` on it and
sends the activation mail (one ``.eml`` file each in ``outbox/``).
Running it again starts from scratch: the demo's databases are rebuilt every time.
"""

from __future__ import annotations

import secrets
import shutil
from pathlib import Path
from typing import Any, TextIO

import yaml

from syncd._render import dump_json, print_result
from syncd.config import load_config
from syncd.cycle import CycleRequest, run_cycle
from syncd.demo_data import build_demo_erp
from syncd.errors import ExitCode
from syncd.mail.mailer import mail_after_sync
from syncd.wiring import open_services

CONFIG_TEMPLATE = """\
# The demo's configuration, written by `syncd demo`. Every key is explained in
# config.example.yaml at the top of the source tree.
state:
  url: sqlite:///{dir}/state.db
{source}
portal:
  kind: sql
  url: sqlite:///{dir}/portal.db
  on_removed: delete
mail:
  transport: file
  directory: {dir}/outbox
  sender: "B2B Hurtownia <b2b@hurtownia.example.pl>"
  language: pl
  portal_url: https://b2b.hurtownia.example.pl
  send_delay: 0s
safety:
  max_removals: 10%
"""


# The console's demo people (``syncd web``): one of each role; the salespeople are two of
# the demo ERP's, so each sees only their own customers. Demo only: one known password.
DEMO_PASSWORD = "demo-konsola"  # noqa: S105 - the demo's published login, not a secret
DEMO_USERS = (
    ("Administrator", "admin@hurtownia.example.pl", "admin"),
    ("Ewa Nowak", "e.nowak@hurtownia-demo.pl", "support"),
    ("Agnieszka Zielińska", "a.zielinska@hurtownia-demo.pl", "salesperson"),
    ("Michał Łukaszewicz", "m.lukaszewicz@hurtownia-demo.pl", "salesperson"),
)
DEMO_LISTEN = "127.0.0.1:8080"


def _web_section() -> dict[str, Any]:
    from syncd.web.people import hash_password

    digest = hash_password(DEMO_PASSWORD)
    users = [
        {"name": name, "email": email, "role": role, "password_hash": digest}
        for name, email, role in DEMO_USERS
    ]
    return {"listen": DEMO_LISTEN, "session_secret": secrets.token_urlsafe(32), "users": users}


def build_demo(directory: Path, source: str = "subiekt_gt") -> Path:
    """Create (or re-create) the demo's files in ``directory`` with an ERP of kind ``source``;
    returns the config's path."""
    directory = directory.resolve()
    directory.mkdir(parents=True, exist_ok=True)
    for name in ("erp.db", "portal.db", "state.db", "state.db-wal", "state.db-shm"):
        (directory / name).unlink(missing_ok=True)
    shutil.rmtree(directory / "outbox", ignore_errors=True)
    (directory / "outbox").mkdir(mode=0o700)  # the .eml files hold passwords
    section = build_demo_erp(source, f"sqlite:///{directory / 'erp.db'}")
    config_path = directory / "config.yaml"
    text = CONFIG_TEMPLATE.format(dir=directory, source=_yaml_section("source", section))
    text += _yaml_section("web", _web_section()) + "\n"
    config_path.write_text(text, encoding="utf-8")
    config_path.chmod(0o600)
    return config_path


def _yaml_section(name: str, values: dict[str, Any]) -> str:
    return yaml.safe_dump({name: values}, allow_unicode=True, sort_keys=False).rstrip()


def run_demo(directory: Path, *, source: str = "subiekt_gt", as_json: bool, out: TextIO) -> int:
    """Build the demo, then show ``plan`` and run ``sync`` on it."""
    config_path = build_demo(directory, source)
    config = load_config(config_path)
    with open_services(config) as services:
        planned = run_cycle(services, CycleRequest(dry_run=True, actor="demo"))
        synced = run_cycle(services, CycleRequest(actor="demo"))
        mail = mail_after_sync(services, synced.exit_code)
    if as_json:
        document = {"plan": planned.as_json(), "sync": synced.as_json(), "mail": mail.document}
        dump_json(document, out)
    else:
        out.write(f"Demo built in {config_path.parent}\n\n== syncd plan ==\n")
        print_result(planned, out, dry_run=True)
        out.write("\n== syncd sync ==\n")
        print_result(synced, out, dry_run=False)
        out.write(
            mail.text.replace("mail:", f"mail (files in {config_path.parent / 'outbox'}):", 1)
        )
        out.write(
            "\nTry next:\n"
            f"  syncd --config {config_path} status\n"
            f"  syncd --config {config_path} plan        # nothing left to do\n"
            f"  syncd --config {config_path} explain 104     # why has it no account?\n"
            f"  syncd --config {config_path} accounts find '*kowalsk*'\n"
            f"  syncd --config {config_path} mail list\n"
            f"\nThe support console: syncd --config {config_path} web\n"
            f"  then open http://{DEMO_LISTEN}/ and sign in as {DEMO_USERS[0][1]} "
            f"(or {DEMO_USERS[2][1]}, a salesperson) with the password {DEMO_PASSWORD}\n"
        )
    if synced.exit_code in (ExitCode.UNAVAILABLE, ExitCode.CONFIG):
        return int(synced.exit_code)
    return int(ExitCode.OK)
