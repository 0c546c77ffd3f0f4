"""A real mail system on loopback for the bounce tests: Postfix bounces, Dovecot serves them.

Both come from Debian's packages (``postfix``, ``dovecot-imapd``) and run from standalone
configurations in a temporary directory, started and stopped by the test; nothing of the
machine's own mail set-up is used or changed. Postfix listens on a free 127.0.0.1 port;
``local_recipient_maps =`` makes it accept any address of its local domains and bounce an
unknown one *after* accepting it, as a real RFC 3464 report to the envelope sender. The
sender's domain is a virtual mailbox domain delivered into one Maildir (any local part:
``b2b@`` and VERP return paths like ``bounces+7@`` alike), which Dovecot serves over IMAP
on another free port, optionally with STARTTLS. Needs root (Postfix's master drops to its
own users) and the two packages.
"""

from __future__ import annotations

import contextlib
import imaplib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from subprocess import DEVNULL

MAILBOX_DOMAIN = "bounces.example.net"  # the sender's domain: delivered to the Maildir
SENDER = f"b2b@{MAILBOX_DOMAIN}"
IMAP_USER = "b2b"
IMAP_SECRET = "Imap-Secret-9q2"  # noqa: S105 - the test server's credential, nothing real
NOBODY = 65534  # the Maildir's owner: Postfix's virtual(8) refuses to deliver as root
POSTFIX_SERVICES = """\
pickup    unix  n - n 60   1 pickup
cleanup   unix  n - n -    0 cleanup
qmgr      unix  n - n 300  1 qmgr
rewrite   unix  - - n -    - trivial-rewrite
bounce    unix  - - n -    0 bounce
defer     unix  - - n -    0 bounce
trace     unix  - - n -    0 bounce
verify    unix  - - n -    1 verify
flush     unix  n - n 1000? 0 flush
proxymap  unix  - - n -    - proxymap
smtp      unix  - - n -    - smtp
relay     unix  - - n -    - smtp
showq     unix  n - n -    - showq
error     unix  - - n -    - error
retry     unix  - - n -    - error
discard   unix  - - n -    - discard
local     unix  - n n -    - local
virtual   unix  - n n -    - virtual
anvil     unix  - - n -    1 anvil
scache    unix  - - n -    1 scache
postlog   unix-dgram n - n - 1 postlogd
"""


class MtaUnavailable(RuntimeError):
    """Postfix or Dovecot is not installed, or cannot be started here."""


@dataclass(frozen=True, slots=True)
class Mta:
    """The running pair: where to send mail, where to read the mailbox, and their logs."""

    directory: Path
    smtp_port: int
    imap_port: int

    @property
    def maildir(self) -> Path:
        return self.directory / "mail" / "box"

    def imap(self) -> imaplib.IMAP4:
        """A logged-in plain IMAP connection to the mailbox, for the test's own checks."""
        conn = imaplib.IMAP4("127.0.0.1", self.imap_port, timeout=10)
        conn.login(IMAP_USER, IMAP_SECRET)
        return conn

    def postfix_log(self) -> str:
        path = self.directory / "postfix.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def wait_for_mail(self, predicate: Callable[[bytes], bool], timeout: float = 60) -> bytes:
        """The first message delivered to the Maildir that ``predicate`` accepts."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for folder in ("new", "cur"):
                for path in sorted((self.maildir / folder).glob("*")):
                    data = path.read_bytes()
                    if predicate(data):
                        return data
            time.sleep(0.2)
        message = f"no such mail arrived within {timeout} s; Postfix's log:\n{self.postfix_log()}"
        raise AssertionError(message)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _check_installed() -> None:
    missing = [name for name in ("postfix", "dovecot") if shutil.which(name) is None]
    if not missing and os.geteuid() != 0:
        missing = ["root (Postfix's master starts as root)"]
    if missing:
        packages = "apt-get install postfix dovecot-imapd"
        raise MtaUnavailable(f"missing: {', '.join(missing)} ({packages})")


@contextlib.contextmanager
def running_mta(
    local_domains: tuple[str, ...], *, tls: tuple[Path, Path] | None = None
) -> Iterator[Mta]:
    """Postfix and Dovecot on loopback; ``local_domains`` are where unknown users bounce.

    ``tls`` is (certificate, key) for Dovecot's STARTTLS; without it IMAP is plain text.
    Both are stopped and the directory removed on the way out.
    """
    _check_installed()
    directory = Path(tempfile.mkdtemp(prefix="syncd-mta-"))
    directory.chmod(0o755)  # Postfix's and Dovecot's own users must reach the Maildir
    mta = Mta(directory, free_port(), free_port())
    try:
        _write_postfix(mta, local_domains)
        _write_dovecot(mta, tls)
        _start(["postfix", "-c", str(directory / "postfix"), "start"], "Postfix", mta)
        try:
            _start(["dovecot", "-c", str(directory / "dovecot.conf")], "Dovecot", mta)
            try:
                _wait_listening(mta.smtp_port, "Postfix", mta)
                _wait_listening(mta.imap_port, "Dovecot", mta)
                yield mta
            finally:
                _stop(["dovecot", "-c", str(directory / "dovecot.conf"), "stop"], directory / "run")
        finally:
            _stop(["postfix", "-c", str(directory / "postfix"), "stop"], directory / "queue/pid")
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def _write_postfix(mta: Mta, local_domains: tuple[str, ...]) -> None:
    d = mta.directory
    for name in ("postfix", "queue", "data", "mail/box"):
        (d / name).mkdir(parents=True)
    shutil.chown(d / "data", "postfix")
    for path in (d / "mail", d / "mail/box"):
        os.chown(path, NOBODY, NOBODY)
    main = {
        "compatibility_level": "3.6",
        "config_directory": f"{d}/postfix",
        "queue_directory": f"{d}/queue",
        "data_directory": f"{d}/data",
        "maillog_file": f"{d}/postfix.log",
        "maillog_file_prefixes": str(d),
        "myhostname": "mx.syncd-test.example.net",
        "mydestination": ", ".join(("localhost", *local_domains)),
        "local_recipient_maps": "",  # accept any local address; bounce unknown users later
        "alias_maps": "",
        "alias_database": "",
        "inet_interfaces": "127.0.0.1",
        "inet_protocols": "ipv4",
        "mynetworks": "127.0.0.0/8",
        "smtpd_relay_restrictions": "permit_mynetworks, reject",
        "relayhost": "",
        "smtputf8_enable": "no",
        "biff": "no",
        "virtual_mailbox_domains": MAILBOX_DOMAIN,
        "virtual_mailbox_base": f"{d}/mail",
        "virtual_mailbox_maps": "static:box/",
        "virtual_uid_maps": f"static:{NOBODY}",
        "virtual_gid_maps": f"static:{NOBODY}",
    }
    text = "".join(f"{key} = {value}\n" for key, value in main.items())
    (d / "postfix/main.cf").write_text(text)
    smtpd = f"127.0.0.1:{mta.smtp_port} inet n - n - - smtpd\n"
    (d / "postfix/master.cf").write_text(smtpd + POSTFIX_SERVICES)


def _write_dovecot(mta: Mta, tls: tuple[Path, Path] | None) -> None:
    d = mta.directory
    ssl = f"ssl = yes\nssl_cert = <{tls[0]}\nssl_key = <{tls[1]}\n" if tls else "ssl = no\n"
    (d / "dovecot.conf").write_text(
        f"""\
base_dir = {d}/run
state_dir = {d}/state
log_path = {d}/dovecot.log
protocols = imap
listen = 127.0.0.1
{ssl}disable_plaintext_auth = {"yes" if tls else "no"}
auth_mechanisms = plain login
mail_location = maildir:{d}/mail/box
first_valid_uid = 1
passdb {{
  driver = static
  args = password={IMAP_SECRET}
}}
userdb {{
  driver = static
  args = uid={NOBODY} gid={NOBODY} home={d}/mail/box
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {mta.imap_port}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
"""
    )


def _start(command: list[str], what: str, mta: Mta) -> None:
    # Output to a file, not a pipe: the daemons keep what they inherit open for good.
    output = mta.directory / f"{what.lower()}.out"
    with output.open("wb") as sink:
        done = subprocess.run(  # noqa: S603 - fixed argv: postfix or dovecot, our config
            command, stdout=sink, stderr=sink, timeout=60, check=False
        )
    if done.returncode != 0:
        logs = mta.postfix_log() if what == "Postfix" else _read(mta.directory / "dovecot.log")
        message = f"{what} did not start: {_read(output).strip()} {logs}".strip()
        raise MtaUnavailable(message)


def _wait_listening(port: int, what: str, mta: Mta, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1):
            return
        time.sleep(0.1)
    logs = mta.postfix_log() + _read(mta.directory / "dovecot.log")
    raise MtaUnavailable(f"{what} does not listen on 127.0.0.1:{port}: {logs}")


def _stop(command: list[str], pid_directory: Path, timeout: float = 30) -> None:
    """Stop a daemon and wait until its master process is gone (killed if it lingers)."""
    pid_file = next(iter(sorted(pid_directory.glob("master.pid"))), None)
    pid = int(pid_file.read_text().split()[0]) if pid_file and pid_file.exists() else None
    subprocess.run(command, stdout=DEVNULL, stderr=DEVNULL, timeout=60, check=False)  # noqa: S603 - fixed argv
    if pid is None:
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.1)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)  # only the master we started ourselves


def _read(path: Path) -> str:
    return path.read_text(errors="replace") if path.exists() else ""


def self_signed(directory: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and its key, made at test time (cert file, key file)."""
    import datetime as dt
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = directory / "imap-cert.pem", directory / "imap-key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_file, key_file
