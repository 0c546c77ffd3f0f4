"""``syncd web`` (serve the support console) and ``syncd web hash-password``.

Only argparse is imported here: ``syncd --help`` registers these commands without loading
Starlette, uvicorn or the configuration models. ``run`` imports what the command uses.
"""

from __future__ import annotations

import argparse
import getpass
import sys
from typing import TextIO

from syncd.errors import PasswordRejected

MIN_STAFF_PASSWORD = 12


def add_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``web`` and its ``hash-password`` action on the main parser."""
    web = commands.add_parser(
        "web", help="the support console: a web page for support and sales staff"
    )
    web.add_argument(
        "--listen",
        metavar="HOST:PORT",
        help="where to serve it (default: web.listen, else 127.0.0.1:8080)",
    )
    actions = web.add_subparsers(dest="action", metavar="ACTION")
    actions.add_parser(
        "hash-password",
        help="read a password from stdin; print the hash to put in web.users[].password_hash",
    )


def run(args: argparse.Namespace, *, out: TextIO = sys.stdout) -> int:
    """Run ``syncd web [hash-password]``; returns the exit code."""
    if args.action == "hash-password":
        from syncd.web.people import hash_password

        out.write(hash_password(_read_password()) + "\n")
        return 0
    from syncd import log as logsetup
    from syncd.config import load_config
    from syncd.config._values import parse_listen
    from syncd.errors import ConfigError
    from syncd.web.server import serve

    logsetup.configure(stream=sys.stdout, level=args.log_level)  # a service: like `syncd run`
    config = load_config(args.config)
    listen = None
    if args.listen:
        try:
            listen = parse_listen(args.listen)
        except ValueError as error:
            raise ConfigError([f"--listen: {error} (got {args.listen!r})"]) from None
    return serve(config, listen)


def _read_password() -> str:
    """The password, without echo on a terminal, else one line of stdin; never printed."""
    if sys.stdin.isatty():
        password = getpass.getpass("password: ")
        if getpass.getpass("again: ") != password:
            raise PasswordRejected("the two passwords differ: run it again")
    else:
        password = sys.stdin.readline().removesuffix("\n").removesuffix("\r")
    if len(password) < MIN_STAFF_PASSWORD:
        message = (
            f"the password has {len(password)} characters; "
            f"use at least {MIN_STAFF_PASSWORD} for the console"
        )
        raise PasswordRejected(message)
    return password
