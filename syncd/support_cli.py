"""The support commands of the command line: ``accounts ...``, ``mail list`` and ``history``.

Kept apart from ``syncd.cli`` so that file stays a list of commands: ``add_commands``
registers the sub-commands, ``run`` executes one and returns its exit code. The work is
done by ``syncd.accounts.Support``; this module only parses, prints and picks exit codes.
"""

from __future__ import annotations

import argparse
import getpass
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TextIO

from syncd.errors import ExitCode, PasswordRejected

if TYPE_CHECKING:
    from syncd.accounts import Support
    from syncd.config import Config

COMMANDS = frozenset({"accounts", "mail", "history"})
MAIL_STATUSES = ("pending", "sent", "failed", "bounced", "cancelled")


def add_commands(
    commands: argparse._SubParsersAction[argparse.ArgumentParser],
    shared: argparse.ArgumentParser,
    *,
    actor: Callable[[], str],
) -> None:
    """Register ``accounts``, ``mail`` and ``history`` on the main parser's sub-commands."""
    who = argparse.ArgumentParser(add_help=False)
    who.add_argument(
        "--actor", metavar="NAME", help="who does it, for the audit trail (default: you)"
    )
    who.set_defaults(default_actor=actor)
    parents = [shared, who]

    accounts = commands.add_parser(
        "accounts", help="find, show, block, unblock accounts; passwords"
    )
    actions = accounts.add_subparsers(dest="action", required=True, metavar="ACTION")
    find = actions.add_parser(
        "find", parents=parents, help="search name, symbol, NIP, e-mail, login in the whole ERP"
    )
    find.add_argument(
        "query",
        metavar="QUERY",
        help="text with * and ? wildcards; any case, any accents; also lists contractors "
        "without an account, with why",
    )
    for name, text in (
        ("show", "one account: binding, status, mail, recent history"),
        ("unblock", "lift a support block (an ERP block stays)"),
        ("resend-activation", "mail a fresh activation (with a new password) now"),
    ):
        actions.add_parser(name, parents=parents, help=text).add_argument("key", metavar="K")
    block = actions.add_parser("block", parents=parents, help="block; no sync lifts it")
    block.add_argument("key", metavar="K")
    block.add_argument("--reason", required=True, help="shown to the customer at login")
    reset = actions.add_parser("reset-password", parents=parents, help="mail a new password now")
    reset.add_argument("key", metavar="K")
    reset.add_argument(
        "--password-stdin",
        action="store_true",
        help="use the password read from stdin (one line) instead of a generated one",
    )

    mail = commands.add_parser("mail", help="the mail outbox")
    mail_actions = mail.add_subparsers(dest="action", required=True, metavar="ACTION")
    listing = mail_actions.add_parser("list", parents=parents, help="the outbox, newest first")
    listing.add_argument("--status", choices=MAIL_STATUSES)
    listing.add_argument("--limit", type=int, default=100)
    mail_actions.add_parser(
        "bounces", parents=[shared], help="one pass over the bounce mailbox (mail.bounces)"
    )

    history = commands.add_parser("history", parents=parents, help="audit trail of one contractor")
    history.add_argument("key", metavar="K")
    history.add_argument("--limit", type=int, default=100)


def run(config: Config, args: argparse.Namespace, *, out: TextIO) -> int:
    """Run one support command; errors propagate to ``syncd.cli.main`` for their exit code."""
    from syncd._render import dump_json
    from syncd.accounts import Support
    from syncd.wiring import open_services

    if args.command == "mail" and args.action == "bounces":
        from syncd.mail.bounces import bounce_command

        return bounce_command(config, as_json=args.json, out=out)
    typed = _read_password() if getattr(args, "password_stdin", False) else None
    actor = args.actor or args.default_actor()
    with open_services(config) as services:
        support = Support(services, actor)
        document, exit_code = _execute(support, args, typed)
    if args.json:
        dump_json(document, out)
    else:
        _print(args, document, out)
    return int(exit_code)


def _execute(support: Support, args: argparse.Namespace, typed: str | None) -> tuple[Any, ExitCode]:
    command, action = args.command, getattr(args, "action", None)
    if command == "history":
        return support.history(args.key, args.limit), ExitCode.OK
    if command == "mail":
        return {"mail": support.mail_list(args.status, args.limit)}, ExitCode.OK
    if action == "find":
        return support.find_everywhere(args.query), ExitCode.OK
    if action == "show":
        return support.show(args.key), ExitCode.OK
    if action == "block":
        document = support.block(args.key, args.reason)
    elif action == "unblock":
        document = support.unblock(args.key)
    elif action == "reset-password":
        document = support.reset_password(args.key, typed)
    else:
        document = support.resend_activation(args.key)
    document["mail_result"] = _mail_result(document.get("mail"), typed=typed is not None)
    password_action = action in ("reset-password", "resend-activation")
    failed = document["mail_result"]["status"] == "failed"
    not_sent = document["mail_result"]["status"] not in ("sent", "none")
    return document, ExitCode.RECORDS_FAILED if failed or (
        password_action and not_sent
    ) else ExitCode.OK


def _mail_result(report: dict[str, Any] | None, *, typed: bool) -> dict[str, Any]:
    """What became of the mail the action caused, in words a support person can act on."""
    if report is None:
        return {"status": "none", "message": "no mail for this change"}
    if report["sent"]:
        return {"status": "sent", "message": "the mail was handed to the mail server"}
    problem = next(iter(report["not_sent"]), None)
    error = problem["error"] if problem else report.get("stopped")
    if typed:
        message = (
            f"the password you typed IS set in the portal, but the mail was NOT delivered "
            f"({error}); tell the customer yourself, or run `syncd accounts reset-password` "
            "without --password-stdin to mail a generated one"
        )
        return {"status": "failed", "message": message}
    if problem and problem["result"] == "failed":
        return {
            "status": "failed",
            "message": f"the mail server refused the mail for good: {error}",
        }
    message = (
        f"the mail could not be sent now ({error}); it stays queued and is retried "
        "automatically (`syncd mail list --status pending`)"
    )
    return {"status": "queued", "message": message}


def _read_password() -> str:
    """One line from stdin (without echo on a terminal); never logged or stored."""
    if sys.stdin.isatty():
        return getpass.getpass("new password: ")
    line = sys.stdin.readline()
    password = line.removesuffix("\n").removesuffix("\r")
    if not password:
        raise PasswordRejected("no password on stdin: pipe it in, one line")
    return password


def _print(args: argparse.Namespace, doc: Any, out: TextIO) -> None:
    if args.command == "history":
        out.write(f"history of contractor {doc['key']} ({len(doc['history'])} entries):\n")
        for row in doc["history"]:
            line = f"  {row['at']}  {row['action']:<16} {row['result']:<6} {row['actor']}"
            out.write(f"{line}  {row['detail']}\n")
    elif args.command == "mail":
        _print_mail(doc["mail"], out)
    elif args.action == "find":
        _print_found(doc, out)
    elif args.action == "show":
        _print_account(doc, out)
        out.write(f"mail ({len(doc['mail'])}):\n")
        _print_mail(doc["mail"], out)
        out.write("recent history:\n")
        for row in doc["history"]:
            out.write(f"  {row['at']}  {row['action']:<16} {row['result']:<6} {row['actor']}\n")
    else:
        account = doc["account"]
        who = f"contractor {account['key']} ({account['login']})"
        out.write(f"{doc['action']}: {who}, status {account['status']}\n")
        out.write(f"mail: {doc['mail_result']['message']}\n")


def _print_found(doc: dict[str, Any], out: TextIO) -> None:
    """Ranked hits; a contractor without an account says why on the next line."""
    others = len(doc["results"]) - len(doc["accounts"])
    out.write(
        f"{len(doc['accounts'])} account(s) and {others} contractor(s) without one "
        f"match {doc['query']!r}\n"
    )
    for item in doc["results"]:
        login = item["login"] if item["account"] else "(no account)"
        state = item["status"] if item["account"] else item["why"]
        out.write(
            f"  {item['key']:>8}  {item['symbol'] or '':<12} {login or '':<32} "
            f"{state:<15} {item['name'] or ''}\n"
        )
        if item["reason"]:
            out.write(f"            {item['reason']}\n")
    if doc.get("more_out_of_scope"):
        out.write(
            f"  ... and {doc['more_out_of_scope']} more out of scope: narrow the search "
            "(`syncd explain K` says why for any of them)\n"
        )
    if doc["erp_error"]:
        out.write(f"note: {doc['erp_error']}\n")


def _print_account(doc: dict[str, Any], out: TextIO) -> None:
    out.write(f"contractor {doc['key']} {doc['symbol'] or ''}: {doc['name'] or ''}\n")
    out.write(f"  login {doc['login']}, account {doc['account_id']}, status {doc['status']}\n")
    if doc["support_block_reason"]:
        out.write(
            f"  blocked by support ({doc['support_blocked_by']}): {doc['support_block_reason']}\n"
        )
    if doc["erp_blocked"]:
        out.write("  blocked in the ERP\n")
    if doc["owner_name"] or doc["owner_email"]:
        out.write(f"  salesperson: {doc['owner_name'] or ''} <{doc['owner_email'] or ''}>\n")
    if doc.get("undeliverable"):
        out.write(f"  UNDELIVERABLE: {doc['undeliverable']['hint']}\n")


def _print_mail(mails: list[dict[str, Any]], out: TextIO) -> None:
    for m in mails:
        when = m["sent_at"] or m["not_before"]
        line = f"  {m['id']:>6}  {m['status']:<9} {m['template']:<14} {m['to']:<32} {when}"
        if m["last_error"]:
            line += f"\n          {m['last_error']}"
        if m.get("hint"):
            line += f"\n          {m['hint']}"
        out.write(line + "\n")
