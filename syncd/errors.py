"""The error hierarchy, grouped by how an operator or the daemon recovers from each error.

Every error syncd raises on purpose is a ``SyncdError``. The subclass says what to do:

- ``ConfigError``: fix the configuration and restart (exit code 2).
- ``UnavailableError``: a source, portal, SMTP server or lock is unreachable right now;
  retry later with backoff (exit code 4 when a command gives up).
- ``RecordError``: this one contractor or account is bad; report it and carry on.
- ``FatalError``: something that retrying will not fix (a bug, a corrupt state store).

Connectors translate driver errors into this hierarchy at their boundary, in one place, so
that the cycle never needs to know about pyodbc or psycopg exceptions.
"""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    """Process exit codes, as promised in spec section 4."""

    OK = 0
    RECORDS_FAILED = 1  # finished, but some records failed; or unhealthy
    CONFIG = 2
    REMOVALS_HELD = 3
    UNAVAILABLE = 4


class SyncdError(Exception):
    """Root of every error syncd raises deliberately."""

    exit_code: ExitCode = ExitCode.RECORDS_FAILED


class ConfigError(SyncdError):
    """The configuration is invalid. ``problems`` holds one line per error, path first."""

    exit_code = ExitCode.CONFIG

    def __init__(self, problems: list[str]) -> None:
        self.problems = list(problems)
        count = len(self.problems)
        summary = f"configuration is invalid ({count} error{'s' if count != 1 else ''})"
        super().__init__(summary + ":\n  " + "\n  ".join(self.problems))


class UnavailableError(SyncdError):
    """A dependency (ERP, portal, SMTP, state store, lock) cannot be reached; retry later."""

    exit_code = ExitCode.UNAVAILABLE


class SourceUnavailable(UnavailableError):
    """The ERP could not be read. A cycle that meets this plans nothing at all."""


class PortalUnavailable(UnavailableError):
    """The portal could not be reached or answered with a server error."""


class LockUnavailable(UnavailableError):
    """Another process holds the cycle lease and did not release it in time."""


class RecordError(SyncdError):
    """One record could not be applied; the rest of the cycle carries on."""

    def __init__(self, key: str, message: str) -> None:
        self.key = key
        super().__init__(message)


class LoginTaken(RecordError):
    """The portal already has an account with this login."""

    def __init__(self, key: str, login: str, owner_key: str | None) -> None:
        self.login = login
        self.owner_key = owner_key
        message = f"login {login!r} already exists in the portal"
        if owner_key:
            message += f" (account of contractor {owner_key})"
        super().__init__(key, message)


class AccountGone(RecordError):
    """The account a write was meant for is gone from the portal (deleted by hand). The
    cycle creates it again at once, as a full reconcile would (``syncd.apply``)."""


class UnknownContractor(SyncdError):
    """A command was given a contractor that neither the ERP nor syncd knows."""

    exit_code = ExitCode.CONFIG  # bad input on the command line, as argparse exits 2

    def __init__(self, ident: str, *, shared_by: tuple[str, ...] = ()) -> None:
        self.ident = ident
        self.shared_by = shared_by
        message = (
            f"neither the ERP nor syncd knows contractor {ident!r}: give a contractor id, its "
            "symbol or the login of its account (`syncd accounts find` searches)"
        )
        if shared_by:
            message = (
                f"the e-mail {ident!r} belongs to {len(shared_by)} contractors "
                f"({', '.join(shared_by)}; portal.login is symbol): give the contractor id "
                "or symbol instead"
            )
        super().__init__(message)


class FatalError(SyncdError):
    """Retrying will not help: a bug or a corrupt store. Stop and call a developer."""


class PasswordRejected(SyncdError):
    """A password typed by a person (``reset-password --password-stdin``) cannot be used.

    The message says what is wrong and what to type instead; it never contains the password.
    """


class MailTemplateError(ConfigError):
    """A mail template is missing or fails to render: fix the template files and restart."""


class TemporaryMailError(UnavailableError):
    """The SMTP server could not take a mail right now (4xx, timeout, refused or dropped
    connection, failed login); the mail stays queued and is retried with backoff.

    ``code`` is the server's reply code when there was one.
    """

    def __init__(self, message: str, *, code: int | None = None) -> None:
        self.code = code
        super().__init__(message)


class PermanentMailError(SyncdError):
    """The SMTP server refused this mail for good (5xx): mark it failed, keep the answer.

    ``code`` and ``text`` are the server's reply, shown by ``mail list`` and ``status``.
    """

    def __init__(self, code: int, text: str, *, recipient: str | None = None) -> None:
        self.code = code
        self.text = text
        self.recipient = recipient
        target = f" to {recipient}" if recipient else ""
        message = (
            f"the SMTP server refused the mail{target} with {code} {text}; it will not be "
            "retried: fix the address (or the sender) and resend it"
        )
        super().__init__(message)
