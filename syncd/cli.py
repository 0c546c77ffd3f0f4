"""The ``syncd`` command line (spec section 4): argument parsing and exit codes only.

Each command lives in a small function that returns an exit code; the work itself is done
by the modules the data path names (cycle, explain, status, demo). Errors are caught here,
once: a ``ConfigError`` prints every problem and exits 2, an ``UnavailableError`` exits 4.
"""

from __future__ import annotations

import argparse
import getpass
import os
import signal
import sys
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from syncd import __version__, support_cli
from syncd.errors import ConfigError, ExitCode, SyncdError, UnavailableError
from syncd.web import cli as web_cli

if TYPE_CHECKING:
    from syncd.config import Config

# Only argparse and the error classes are imported above: ``syncd --help`` must not load
# pydantic, SQLAlchemy or a connector. Each command imports what it uses.


def _actor() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return f"uid:{os.getuid()}"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="syncd",
        description="Keeps the B2B portal's customer accounts in step with the ERP.",
    )
    parser.add_argument("--version", action="version", version=f"syncd {__version__}")
    parser.add_argument(
        "--config",
        help="configuration file (default: $SYNCD_CONFIG, else /etc/syncd/config.yaml)",
    )
    parser.add_argument("--log-level", default="info", choices=["debug", "info", "warning"])
    shared = argparse.ArgumentParser(add_help=False)
    shared.add_argument("--json", action="store_true", help="one JSON document on stdout")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    check = commands.add_parser("check-config", parents=[shared], help="validate the configuration")
    check.add_argument(
        "--online",
        action="store_true",
        help="also check the queries, tables and features against the live ERP",
    )
    doctor = commands.add_parser(
        "doctor", parents=[shared], help="connect to ERP, portal and state store; count scope"
    )
    doctor.add_argument(
        "--discover",
        action="store_true",
        help="list candidate tables and columns for what the config must name (nexo)",
    )
    for name, text in (("plan", "dry run: what a cycle would do"), ("sync", "one cycle now")):
        sub = commands.add_parser(name, parents=[shared], help=text)
        sub.add_argument(
            "--contractor",
            action="append",
            metavar="K",
            help="only this contractor (ERP id, symbol or login); may be repeated",
        )
        sub.add_argument("--full", action="store_true", help="compare with the portal's listing")
        sub.add_argument(
            "--allow-removals",
            action="store_true",
            help="let removals over safety.max_removals through, this once",
        )
        if name == "sync":
            sub.add_argument(
                "--until-done",
                action="store_true",
                help="send mail until none is due now, not only for mail.run_budget",
            )
    explain = commands.add_parser("explain", parents=[shared], help="the story of one contractor")
    explain.add_argument("key", metavar="K", help="ERP contractor id, symbol or login")
    commands.add_parser("status", parents=[shared], help="last cycle, counts, conflicts, health")
    demo = commands.add_parser("demo", parents=[shared], help="build an embedded demo and sync it")
    demo.add_argument("directory", nargs="?", default="demo", metavar="DIR")
    demo.add_argument(
        "--source",
        default="subiekt_gt",
        choices=["subiekt_gt", "subiekt_nexo", "sql"],
        help="which kind of ERP the demo builds (default: subiekt_gt)",
    )
    commands.add_parser(
        "run", help="the daemon, in the foreground (systemd Type=notify); logs on stdout"
    )
    support_cli.add_commands(commands, shared, actor=_actor)
    web_cli.add_commands(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; returns the process exit code of spec section 4."""
    args = _parser().parse_args(argv)
    from syncd import log as logsetup

    logsetup.configure(stream=sys.stderr, level=args.log_level)
    try:
        return int(_dispatch(args))
    except ConfigError as error:
        _print_config_error(error, as_json=getattr(args, "json", False))
        return int(ExitCode.CONFIG)
    except UnavailableError as error:
        print(f"syncd: {error}", file=sys.stderr)
        return int(ExitCode.UNAVAILABLE)
    except SyncdError as error:
        print(f"syncd: {error}", file=sys.stderr)
        return int(error.exit_code)
    except KeyboardInterrupt:
        return 130


def _print_config_error(error: ConfigError, *, as_json: bool) -> None:
    from syncd._render import dump_json

    if as_json:
        dump_json({"valid": False, "errors": error.problems}, sys.stdout)
    print(f"syncd: {error}", file=sys.stderr)
    print(
        "Fix the file and run `syncd check-config` again; nothing was started.",
        file=sys.stderr,
    )


def _load(args: argparse.Namespace) -> Config:
    from syncd.config import load_config

    return load_config(args.config)


def _dispatch(args: argparse.Namespace) -> int:
    command = args.command
    if command == "demo":
        from syncd.demo import run_demo

        return run_demo(Path(args.directory), source=args.source, as_json=args.json, out=sys.stdout)
    if command == "run":
        from syncd import log as logsetup
        from syncd.daemon import run_daemon

        # journald stores stdout: JSON lines there, a readable console on a terminal.
        logsetup.configure(stream=sys.stdout, level=args.log_level)
        return run_daemon(args.config)
    if command == "web":
        return web_cli.run(args)
    config = _load(args)
    if command == "check-config":
        return _check_config(config, as_json=args.json, online=args.online)
    if command in ("plan", "sync"):
        return _cycle(config, args, dry_run=command == "plan")
    if command == "explain":
        from syncd.explain import explain

        return explain(config, args.key, as_json=args.json, out=sys.stdout)
    if command == "status":
        from syncd.status import status

        return status(config, as_json=args.json, out=sys.stdout)
    if command == "doctor":
        from syncd.doctor import doctor

        return doctor(config, as_json=args.json, out=sys.stdout, discover_names=args.discover)
    if command in support_cli.COMMANDS:
        return support_cli.run(config, args, out=sys.stdout)
    raise AssertionError(command)


def _check_config(config: Config, *, as_json: bool, online: bool) -> int:
    from syncd._render import dump_json
    from syncd.config import describe
    from syncd.mail.render import check_templates

    check_templates(config)
    if online:
        from syncd.doctor import check_source_online

        check_source_online(config)
    if as_json:
        dump_json({"valid": True, "path": str(config.path), "config": describe(config)}, sys.stdout)
    else:
        print(f"configuration {config.path} is valid")
    return int(ExitCode.OK)


def _cycle(config: Config, args: argparse.Namespace, *, dry_run: bool) -> int:
    from syncd import lookup
    from syncd._render import dump_json, print_result
    from syncd.cycle import CycleRequest, run_cycle
    from syncd.mail.mailer import mail_after_sync
    from syncd.progress import for_terminal
    from syncd.wiring import open_services

    with (
        open_services(config) as services,
        _stop_on_sigterm() as stop,
        for_terminal(as_json=args.json or dry_run) as progress,
    ):
        only = None
        if args.contractor:
            only = lookup.resolve_all(args.contractor, source=services.source, store=services.store)
        request = CycleRequest(
            dry_run=dry_run,
            only_keys=only,
            full=args.full,
            allow_removals=args.allow_removals,
            trigger="cli",
            actor=_actor(),
            stop=stop,
            progress=progress,
            itemise=not dry_run,  # both outputs give each item's result (print_result too)
        )
        result = run_cycle(services, request)
        mail = None
        if not dry_run:
            mail = mail_after_sync(
                services,
                result.exit_code,
                until_done=args.until_done,
                stop_event=stop,
                progress=progress,
            )
    if args.json:
        document = result.as_json(stream=True)  # written item by item (``_render.Items``)
        if mail is not None:
            document["mail"] = mail.document
            document["exit_code"] = int(mail.exit_code)
        dump_json(document, sys.stdout)
    else:
        print_result(result, sys.stdout, dry_run=dry_run)
        if mail is not None:
            sys.stdout.write(mail.text)
    return int(mail.exit_code if mail is not None else result.exit_code)


@contextmanager
def _stop_on_sigterm() -> Iterator[threading.Event]:
    """An event SIGTERM sets for the block: the cycle stops between two batches and the
    mailer after the mail in hand, as the daemon does (spec section 7)."""
    stop = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield stop  # signals reach only the main thread (tests may run main elsewhere)
        return
    previous = signal.signal(signal.SIGTERM, lambda _signum, _frame: stop.set())
    try:
        yield stop
    finally:
        signal.signal(signal.SIGTERM, previous if previous is not None else signal.SIG_DFL)
