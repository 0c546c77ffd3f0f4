"""The support console over HTTP: sign-in, sessions, CSRF, headers, pages and every action,
against a real uvicorn on loopback serving the synced demo."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
import structlog

from connectors import SOURCES
from syncd.demo import DEMO_PASSWORD
from tests.gt_env import run_main
from tests.web_env import (
    ADMIN,
    AGNIESZKA,
    NAMES,
    SUPPORT,
    ZURAW_KEY,
    Site,
    Visitor,
    console_site,
)

TYPED = "Zażółć-Gęślą-Jaźń-77"  # what a salesperson typed for the customer

pytestmark = pytest.mark.usefixtures("quick_bcrypt")


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    """The synced demo's console on a free loopback port."""
    with console_site(tmp_path / "demo") as running:
        yield running


def _notices(page: str) -> list[str]:
    return re.findall(r'class="notice (?:ok|warning|error)"[^>]*>(.*?)</div>', page, re.S)


def test_every_page_carries_the_security_headers(site: Site) -> None:
    """CSP without inline scripts, no framing, no sniffing, no referrer, on pages and 404s."""
    visitor = site.visitor(ADMIN)
    secret = site.config.web.session_secret
    assert secret is not None
    for path in ("/login", "/", "/contractors", f"/contractors/{ZURAW_KEY}", "/mail", "/nope"):
        answer = visitor.get(path)
        assert "$argon2" not in answer.text  # no hash, no secret on any page
        assert secret.get_secret_value() not in answer.text
        headers = answer.headers
        csp = headers["Content-Security-Policy"]
        assert "script-src 'self'" in csp, path
        assert "unsafe-inline" not in csp
        assert "frame-ancestors 'none'" in csp
        assert headers["X-Frame-Options"] == "DENY"
        assert headers["X-Content-Type-Options"] == "nosniff"
        assert headers["Referrer-Policy"] == "no-referrer"
        assert headers["Cache-Control"] == "no-store"
    page = visitor.get("/").text
    assert "<script>" not in page
    assert " on" + "click=" not in page
    assert '<script src="/static/search.js"' in page


def test_session_cookie_is_signed_httponly_and_samesite(site: Site) -> None:
    """The session cookie is HttpOnly and SameSite=Lax; a tampered one signs nobody in."""
    visitor = Visitor(site.url)
    answer = visitor.login(ADMIN)
    cookie = answer.history[0].headers["set-cookie"].lower()
    assert "httponly" in cookie
    assert "samesite=lax" in cookie
    assert "secure" not in cookie
    value = visitor.http.cookies["syncd_console"]
    visitor.http.cookies.set(
        "syncd_console", value[:-3] + ("AAA" if value[-3:] != "AAA" else "BBB")
    )
    assert visitor.get("/").url.endswith("/login?next=/")


def test_secure_cookies_setting_marks_the_cookie_secure(tmp_path: Path) -> None:
    """web.secure_cookies: the session cookie only travels over TLS."""
    with console_site(tmp_path / "demo", secure_cookies=True) as site:
        answer = Visitor(site.url).get("/login")  # the CSRF token's session starts here
        assert "; secure" in answer.headers["set-cookie"].lower()


def test_pages_need_signing_in_and_bad_passwords_are_refused(site: Site) -> None:
    """Signed out, every page leads to the sign-in; a wrong password or name is a 401."""
    visitor = Visitor(site.url)
    for path in ("/", "/contractors?q=*", f"/contractors/{ZURAW_KEY}", "/mail"):
        answer = visitor.get(path)
        assert answer.url.startswith(site.url + "/login?next="), path
        assert "Żuraw" not in answer.text
    assert visitor.login(ADMIN, "wrong password!").status_code == 401
    assert visitor.login("nobody@example.com").status_code == 401
    assert visitor.login(ADMIN.upper()).url == site.url + "/"


def test_sign_in_is_rate_limited_per_person(site: Site) -> None:
    """Five wrong passwords lock that name out, even with the right one; others still sign in."""
    visitor = Visitor(site.url)
    for _ in range(5):
        assert visitor.login(SUPPORT, "not the password").status_code == 401
    locked = visitor.login(SUPPORT, DEMO_PASSWORD)
    assert locked.status_code == 429
    assert "spróbuj ponownie" in locked.text
    assert Visitor(site.url).login(ADMIN).status_code == 200


def test_a_forged_form_is_refused_and_changes_nothing(site: Site) -> None:
    """A POST without the session's CSRF token is a 403 for every action, and nothing moves."""
    admin = site.visitor(ADMIN)
    before = site.snapshot()
    for action in ("block", "unblock", "reset-password", "resend-activation", "resync"):
        for token in ("", "forged-token"):
            answer = admin.post(f"/contractors/{ZURAW_KEY}/{action}", {"reason": "x"}, csrf=token)
            assert answer.status_code == 403, action
    assert admin.post("/sync", {}, csrf="forged").status_code == 403
    assert admin.post("/logout", {}, csrf="").status_code == 403
    assert site.snapshot() == before
    stranger = Visitor(site.url)  # signed out, with a token of its own session
    stranger.get("/login")
    answer = stranger.post(f"/contractors/{ZURAW_KEY}/block", {"reason": "x"})
    assert answer.url.startswith(site.url + "/login")
    assert site.snapshot() == before


def test_dashboard_shows_the_demo_conflicts_with_reasons_and_the_cycle_chart(site: Site) -> None:
    """The demo's conflicts and their reasons, accounts by status, mail, a chart of cycles."""
    page = site.visitor(ADMIN).get("/").text
    conflicts = site.state("SELECT contractor_key, reason FROM syncd_conflict")
    assert len(conflicts) == 4
    for key, reason in conflicts:
        assert f'href="/contractors/{key}"' in page
        assert reason.replace("„", "&#34;") in page or reason in page or "shares e-mail" in page
    assert "shares e-mail info@tekstylia-lodz.pl" in page
    assert '<svg class="chart"' in page
    assert "<rect class=" in page
    assert "Synchronizuj teraz" in page


def test_directory_finds_like_accounts_find(site: Site) -> None:
    """Wildcards, any case, any accents, NIP in any format; contractors without an account
    listed with the kind and the reason the CLI gives: a conflict, and one out of scope."""
    visitor = site.visitor(SUPPORT)
    for query in ("*żuraw*", "*ZURAW*", "5213017228", "PL 521-301-72-28", "hurt-zur"):
        page = visitor.get("/contractors", q=query).text
        assert f'href="/contractors/{ZURAW_KEY}"' in page, query
    page = visitor.get("/contractors", q="*tekstylia*").text
    assert "Bez konta" in page
    assert "shares e-mail" in page
    assert "Konflikt" in page
    outside = visitor.get("/contractors", q="*przysmak*").text
    assert "Górskie Przysmaki Nowy Sącz" in outside
    assert "Poza zakresem" in outside
    assert "it does not carry the feature" in outside
    fragment = visitor.get("/contractors", q="*żuraw*", partial="1").text
    assert "<html" not in fragment
    assert f"/contractors/{ZURAW_KEY}" in fragment


def test_card_shows_what_explain_knows(site: Site) -> None:
    """ERP facts, scope, mapped fields, account, history and mail (with where it goes and
    why); a conflict's reason."""
    visitor = site.visitor(SUPPORT)
    page = visitor.get(f"/contractors/{ZURAW_KEY}").text
    for text in ("HURT-ZUR", "zamowienia@zuraw.com.pl", "Agnieszka Zielińska", "activation"):
        assert text in page
    assert "mail goes to zamowienia@zuraw.com.pl: it is the contractor&#39;s main e-mail" in page
    assert 'action="/contractors/101/block"' in page
    conflict = visitor.get("/contractors/107").text
    assert "shares e-mail info@tekstylia-lodz.pl" in conflict
    assert "Brak konta na portalu." in conflict
    assert visitor.get("/contractors/99999").status_code == 404


def _audit(site: Site, key: str, since: int) -> list[tuple[str, str, str, dict[str, object]]]:
    rows = site.state(
        "SELECT action, result, actor, detail_json FROM syncd_audit "
        "WHERE contractor_key = :key AND id > :since ORDER BY id",
        key=key,
        since=since,
    )
    return [(a, r, who, json.loads(d)) for a, r, who, d in rows]


def _last_audit_id(site: Site) -> int:
    return int(site.state("SELECT coalesce(max(id), 0) FROM syncd_audit")[0][0])


CLI_ACTIONS = [
    ("block", ["--reason", "Zaległe płatności"], {"reason": "Zaległe płatności"}),
    ("unblock", [], {}),
    ("reset-password", [], {"mode": "generated"}),
    ("resend-activation", [], {}),
]


def test_every_cli_support_action_has_its_button_with_the_same_audit_record(site: Site) -> None:
    """Each ``syncd accounts`` action, done in the console by Ewa on one contractor and on
    the command line with ``--actor`` on another, leaves the same audit entries."""
    visitor = site.visitor(SUPPORT)
    actor = NAMES[SUPPORT]
    config = str(site.directory / "config.yaml")
    for action, cli_args, form in CLI_ACTIONS:
        page = visitor.get("/contractors/103").text
        assert f'action="/contractors/103/{action}"' in page, action
        mark = _last_audit_id(site)
        answer = visitor.post(f"/contractors/103/{action}", form)
        assert answer.status_code == 200
        assert answer.url.endswith("/contractors/103")
        assert all("Nie wykonano" not in n for n in _notices(answer.text)), answer.text
        web = _audit(site, "103", mark)
        mark = _last_audit_id(site)
        code = run_main(
            ["--config", config, "accounts", action, "108", *cli_args, "--actor", actor]
        )
        assert code == 0, action
        cli = _audit(site, "108", mark)
        assert [(a, r, who) for a, r, who, _ in web] == [(a, r, who) for a, r, who, _ in cli]
        assert [sorted(d) for *_, d in web] == [sorted(d) for *_, d in cli]
        assert web
        assert all(who == actor for _, _, who, _ in web)


def test_a_typed_password_is_mailed_and_never_shown_or_logged(site: Site) -> None:
    """The password typed in the form reaches the customer's mail and no page or log line."""
    visitor = site.visitor(AGNIESZKA)
    visitor.get(f"/contractors/{ZURAW_KEY}")
    with structlog.testing.capture_logs() as logs:
        short = visitor.post(
            f"/contractors/{ZURAW_KEY}/reset-password", {"mode": "typed", "password": "short"}
        )
        done = visitor.post(
            f"/contractors/{ZURAW_KEY}/reset-password", {"mode": "typed", "password": TYPED}
        )
    assert any("this password cannot be used" in n for n in _notices(short.text))
    assert any("wiadomość wysłano" in n for n in _notices(done.text)), _notices(done.text)
    mails = [m for m in site.emails() if "zamowienia@zuraw.com.pl" in m and TYPED in m]
    assert len(mails) == 1
    assert all(TYPED not in page for page in visitor.pages)
    assert [e["action"] for e in logs if e["event"] == "web.action"] == ["reset-password"] * 2
    assert TYPED not in repr(logs)
    assert site.state(
        "SELECT count(*) FROM syncd_outbox WHERE context_json LIKE :p", p=f"%{TYPED}%"
    ) == [(0,)]


def test_sync_now_and_resync_are_cycles_run_by_the_person(site: Site) -> None:
    """Admin's "sync now" and a resync of one contractor are cycles with trigger web."""
    admin = site.visitor(ADMIN)
    admin.get("/")
    answer = admin.post("/sync", {})
    assert any("Cykl" in n for n in _notices(answer.text))
    admin.get(f"/contractors/{ZURAW_KEY}")
    admin.post(f"/contractors/{ZURAW_KEY}/resync", {})
    assert site.state("SELECT count(*) FROM syncd_run WHERE trigger = 'web'") == [(2,)]


def test_held_removals_are_named_and_let_through_by_an_admin(tmp_path: Path) -> None:
    """The confirmation lists the held accounts; confirming removes exactly those, audited
    with the admin's name; support is not allowed to."""
    with console_site(tmp_path / "demo") as site:
        config = str(site.directory / "config.yaml")
        erp = SOURCES["subiekt_gt"].load_fake()(f"sqlite:///{site.directory / 'erp.db'}")
        try:
            for key in (110, 111, 112, 113):
                erp.delete(key)
        finally:
            erp.close()
        assert run_main(["--config", config, "sync"]) == 3  # 4 of 26 is over 10%: held
        admin = site.visitor(ADMIN)
        assert "Przejrzyj wstrzymane usunięcia" in admin.get("/").text
        page = admin.get("/removals").text
        for key in ("110", "111", "112", "113"):
            assert f'href="/contractors/{key}"' in page
        support = site.visitor(SUPPORT)
        assert support.get("/removals").status_code == 403
        assert support.post("/removals", {"digest": "x"}).status_code == 403
        admin.get("/removals")
        stale = admin.post("/removals", {"digest": "not-what-was-shown"})
        assert any("zmieniły się" in n for n in _notices(stale.text))
        admin.get("/removals")
        admin.post("/removals", {"digest": re.search(r'name="digest" value="(\w+)"', page)[1]})  # type: ignore[index]
        removed = site.state(
            "SELECT contractor_key, actor FROM syncd_audit WHERE action = 'remove'"
        )
        assert sorted(removed) == [(k, NAMES[ADMIN]) for k in ("110", "111", "112", "113")]


def test_mail_page_filters_by_status(site: Site) -> None:
    """The outbox page lists mail, and a status filter shows only that status."""
    visitor = site.visitor(SUPPORT)
    assert visitor.get("/mail").text.count("<tr class=") == 25
    assert visitor.get("/mail", status="sent").text.count('<tr class="sent"') == 25
    assert "<tr class=" not in visitor.get("/mail", status="failed").text


def test_language_and_time_zone_follow_the_person(tmp_path: Path) -> None:
    """Polish by default (mail.language), English when switched; times in Europe/Warsaw."""
    with console_site(tmp_path / "demo", timezone="Asia/Tokyo") as site:
        visitor = site.visitor(ADMIN)
        assert "Konta według statusu" in visitor.get("/").text
        visitor.post("/language", {"lang": "en", "next": "/"})
        page = visitor.get("/").text
        assert "Accounts by status" in page
        assert "Konta według statusu" not in page
        [(finished,)] = site.state("SELECT finished_at FROM syncd_run ORDER BY id DESC LIMIT 1")
        from datetime import datetime
        from zoneinfo import ZoneInfo

        at = datetime.fromisoformat(str(finished))
        at = at if at.tzinfo else at.replace(tzinfo=ZoneInfo("UTC"))
        assert at.astimezone(ZoneInfo("Asia/Tokyo")).strftime("%Y-%m-%d %H:%M") in page


def test_syncd_run_serves_the_console_when_web_listen_is_set(tmp_path: Path) -> None:
    """``syncd run`` with ``web.listen``: the console answers on loopback, and stops with it."""
    from tests.daemon_support import DaemonProcess
    from tests.web_env import build_synced_demo

    config = build_synced_demo(tmp_path / "demo")
    listen = re.search(r"listen: (127\.0\.0\.1:\d+)", config.read_text())[1]  # type: ignore[index]
    daemon = DaemonProcess(config, tmp_path / "daemon.log")
    try:
        [event] = daemon.wait_for("web.listening", timeout=30)
        assert event["url"] == f"http://{listen}/"
        visitor = Visitor(f"http://{listen}")
        assert visitor.login(ADMIN).status_code == 200
        assert "Konta według statusu" in visitor.get("/").text
        assert daemon.stop() == 0
    finally:
        daemon.kill()


def test_hash_password_prints_a_hash_the_console_accepts(tmp_path: Path) -> None:
    """``syncd web hash-password`` reads stdin and prints an argon2 hash (never the
    password); a short password is refused."""
    import subprocess
    import sys

    from syncd.config.sections import WebConfig
    from syncd.web.people import People

    command = [sys.executable, "-m", "syncd", "web", "hash-password"]
    done = subprocess.run(  # noqa: S603 - this interpreter, fixed argv
        command,
        input="Długie-hasło-konsoli\n",
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    digest = done.stdout.strip()
    assert digest.startswith("$argon2id$")
    assert "Długie-hasło-konsoli" not in done.stdout + done.stderr
    web = WebConfig.model_validate(
        {"users": [{"name": "A", "email": "a@x.pl", "role": "admin", "password_hash": digest}]}
    )
    assert People(web, default_language="pl").authenticate("A", "Długie-hasło-konsoli")
    short = subprocess.run(  # noqa: S603 - this interpreter, fixed argv
        command, input="short\n", capture_output=True, text=True, timeout=60, check=False
    )
    assert short.returncode != 0
    assert "at least 12" in short.stderr


def test_syncd_web_without_people_is_a_configuration_error(tmp_path: Path) -> None:
    """Nobody could sign in: ``syncd web`` says how to add a person and exits 2."""
    from tests.support import write_config

    config = write_config(tmp_path)
    assert run_main(["--config", str(config.path), "web"]) == 2


def test_a_busy_address_is_a_clear_error(tmp_path: Path) -> None:
    """``syncd web`` on an address in use exits 4 and says what to do, before serving."""
    import socket

    from tests.web_env import build_synced_demo

    config = build_synced_demo(tmp_path / "demo")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        code = run_main(["--config", str(config), "web", "--listen", f"127.0.0.1:{port}"])
    assert code == 4
