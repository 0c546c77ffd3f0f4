"""SmtpTransport against a real SMTP server (aiosmtpd) on loopback: TLS, AUTH, errors, retry."""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import ipaddress
import socket
import ssl
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from syncd.errors import PermanentMailError, TemporaryMailError
from syncd.mail.render import MailRenderer, sample_context
from syncd.mail.transports import RetryPolicy, SmtpTransport, send_with_retry
from tests.smtp_server import SECRET, USER, Recorder, Server, free_port, running


@pytest.fixture(scope="session")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 (cert file, key file), made at test time."""
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
    directory = tmp_path_factory.mktemp("tls")
    cert_file, key_file = directory / "cert.pem", directory / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_file, key_file


def server_context(certificate: tuple[Path, Path]) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(*certificate)
    return context


def client_context(certificate: tuple[Path, Path]) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(certificate[0]))


def message(to: str, number: int = 1) -> EmailMessage:
    msg = EmailMessage(policy=email.policy.SMTP)
    msg["From"] = "B2B <b2b@example.com>"
    msg["To"] = to
    msg["Subject"] = f"Test {number}"
    msg.set_content(f"body {number}\n")
    return msg


def plain(server: Server, **kwargs: Any) -> SmtpTransport:
    options: dict[str, Any] = {"security": "none", "username": USER, "password": SECRET}
    return SmtpTransport("127.0.0.1", server.port, timeout=5, **options | kwargs)


# --------------------------------------------------------------------------- the tests


def test_batch_uses_one_connection(smtp: Server) -> None:
    """Five mails in one session travel over a single authenticated connection."""
    transport = plain(smtp)
    with transport.session() as session:
        for number in range(5):
            session.send(message(f"klient{number}@example.com", number))
    assert [rcpt for _, rcpt, _ in smtp.handler.accepted] == [
        [f"klient{n}@example.com"] for n in range(5)
    ]
    assert len(smtp.handler.peers) == 1


def test_rendered_mail_arrives_intact(smtp: Server) -> None:
    """A rendered activation mail arrives with its diacritic subject and both parts."""
    renderer = MailRenderer(
        "pl", None, sender="Hurtownia Żółć <b2b@example.com>", reply_to=None, portal_url=None
    )
    context = sample_context("activation") | {"name": "Școală Iași " * 6 + "Řeřicha Brno"}
    with plain(smtp).session() as session:
        session.send(renderer.render("activation", "jan@example.com", context))
    sender, recipients, raw = smtp.handler.accepted[0]
    assert (sender, recipients) == ("b2b@example.com", ["jan@example.com"])
    received = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(received, EmailMessage)
    assert received["Subject"] == "Dostęp do portalu B2B dla " + context["name"].strip()
    text = received.get_body(("plain",))
    assert text is not None
    assert context["password"] in text.get_content()


def test_session_reconnects_when_server_hung_up(smtp: Server) -> None:
    """A connection the server dropped during a pause between two mails is reopened."""
    with plain(smtp, probe_after=0).session() as session:
        session.send(message("a@example.com"))
        smtp.handler.drop_on_noop = True
        session.send(message("b@example.com"))
    assert len(smtp.handler.accepted) == 2
    assert len(smtp.handler.peers) == 2


def test_busy_session_sends_without_probing_each_message(smtp: Server) -> None:
    """Mails sent back to back skip the NOOP probe: a probe-only hang-up never happens."""
    with plain(smtp).session() as session:
        session.send(message("a@example.com"))
        smtp.handler.drop_on_noop = True
        session.send(message("b@example.com"))
    assert len(smtp.handler.accepted) == 2
    assert len(smtp.handler.peers) == 1
    assert smtp.handler.drop_on_noop  # never probed


def test_deferred_mail_is_retried_then_delivered_once(smtp: Server) -> None:
    """Two 451 answers are retried with backoff; the mail is then delivered exactly once."""
    smtp.handler.defer = 2
    pauses: list[float] = []
    with plain(smtp).session() as session:
        attempts = send_with_retry(session, message("a@example.com"), sleep=pauses.append)
    assert attempts == 3
    assert pauses == [2.0, 4.0]
    assert len(smtp.handler.accepted) == 1
    assert len(smtp.handler.peers) == 1


def test_backoff_doubles_up_to_the_maximum_then_gives_up(smtp: Server) -> None:
    """A server that keeps answering 451: pauses 1, 2, 4, 5, 5 and the 451 is raised."""
    smtp.handler.defer = 100
    pauses: list[float] = []
    policy = RetryPolicy(attempts=6, initial=1.0, maximum=5.0)
    with plain(smtp).session() as session, pytest.raises(TemporaryMailError) as info:
        send_with_retry(session, message("a@example.com"), policy=policy, sleep=pauses.append)
    assert pauses == [1.0, 2.0, 4.0, 5.0, 5.0]
    assert info.value.code == 451
    assert "451 4.3.0 Temporary local problem" in str(info.value)
    assert smtp.handler.accepted == []


def test_rejected_recipient_is_permanent_and_others_still_go(smtp: Server) -> None:
    """A 550 for one recipient fails that mail with the answer; the rest are delivered."""
    smtp.handler.reject = {"nobody@example.com"}
    failures: list[PermanentMailError] = []
    pauses: list[float] = []
    with plain(smtp).session() as session:
        for to in ("a@example.com", "nobody@example.com", "b@example.com"):
            try:
                send_with_retry(session, message(to), sleep=pauses.append)
            except PermanentMailError as error:
                failures.append(error)
    [failure] = failures
    assert failure.code == 550
    assert failure.text == "5.1.1 <nobody@example.com>: Recipient address rejected: User unknown"
    assert failure.recipient == "nobody@example.com"
    assert pauses == []  # never retried
    assert [rcpt for _, rcpt, _ in smtp.handler.accepted] == [["a@example.com"], ["b@example.com"]]
    assert len(smtp.handler.peers) == 1


def test_refused_connection_is_temporary() -> None:
    """Nothing listening on the port: a retriable error that names the server."""
    port = free_port()
    transport = SmtpTransport("127.0.0.1", port, security="none", timeout=5)
    with transport.session() as session, pytest.raises(TemporaryMailError) as info:
        session.send(message("a@example.com"))
    assert f"127.0.0.1:{port}: failed while connecting: connection refused" in str(info.value)


def test_silent_server_times_out_as_temporary() -> None:
    """A server that accepts the connection but never greets: a timeout, retriable."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        transport = SmtpTransport(
            "127.0.0.1", listener.getsockname()[1], security="none", timeout=0.2
        )
        with transport.session() as session, pytest.raises(TemporaryMailError, match="timed out"):
            session.send(message("a@example.com"))


def test_wrong_password_is_temporary_and_never_shown(smtp: Server) -> None:
    """A refused login keeps the mail queued; neither error nor repr reveals the password."""
    wrong = "Wrong-Secret-99"
    transport = plain(smtp, password=wrong)
    with transport.session() as session, pytest.raises(TemporaryMailError) as info:
        session.send(message("a@example.com"))
    assert info.value.code == 535
    assert "logging in as 'syncd'" in str(info.value)
    assert "mail.smtp.password" in str(info.value)
    for text in (str(info.value), repr(info.value), repr(transport), repr(info.value.__cause__)):
        assert wrong not in text
    assert SECRET not in repr(plain(smtp))


def test_rate_limit_spaces_sends(smtp: Server) -> None:
    """At 30 mails a minute, consecutive sends are spaced 2 s apart on the injected clock."""
    now = [100.0]
    pauses: list[float] = []

    def sleep(seconds: float) -> None:
        pauses.append(seconds)
        now[0] += seconds

    transport = plain(smtp, rate_limit=30, clock=lambda: now[0], sleep=sleep)
    with transport.session() as session:
        session.send(message("a@example.com"))
        now[0] += 0.5  # some work between the first two mails
        session.send(message("b@example.com"))
        session.send(message("c@example.com"))
    with transport.session() as session:  # a new session must not burst either
        session.send(message("d@example.com"))
    assert pauses == [1.5, 2.0, 2.0]
    assert len(smtp.handler.accepted) == 4


def test_starttls_with_auth(certificate: tuple[Path, Path]) -> None:
    """STARTTLS against a server that requires it, with a verified certificate and AUTH."""
    handler = Recorder()
    tls = server_context(certificate)
    with running(handler, tls_context=tls, require_starttls=True) as server:
        transport = SmtpTransport(
            "127.0.0.1",
            server.port,
            security="starttls",
            username=USER,
            password=SECRET,
            ssl_context=client_context(certificate),
            timeout=5,
        )
        transport.check()
        with transport.session() as session:
            session.send(message("a@example.com"))
    assert len(handler.accepted) == 1


def test_implicit_tls_with_auth(certificate: tuple[Path, Path]) -> None:
    """Implicit TLS (port 465 style) with a verified certificate and AUTH."""
    handler = Recorder()
    with running(handler, ssl_context=server_context(certificate)) as server:
        transport = SmtpTransport(
            "127.0.0.1",
            server.port,
            security="tls",
            username=USER,
            password=SECRET,
            ssl_context=client_context(certificate),
            timeout=5,
        )
        with transport.session() as session:
            session.send(message("a@example.com"))
    assert len(handler.accepted) == 1


def test_untrusted_certificate_is_reported(certificate: tuple[Path, Path]) -> None:
    """A certificate the client does not trust fails STARTTLS with a hint, mail kept."""
    with running(Recorder(), tls_context=server_context(certificate)) as server:
        transport = SmtpTransport("127.0.0.1", server.port, security="starttls", timeout=5)
        with pytest.raises(TemporaryMailError, match="failed while starting TLS") as info:
            transport.check()
        assert "mail.smtp.security" in str(info.value)
