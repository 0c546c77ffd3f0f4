"""Roles in the support console: a salesperson sees and acts on their own customers only,
support may not sync everything or let removals through, and a reverse proxy's header
can sign people in instead of passwords."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.web_env import (
    ADMIN,
    AGNIESZKA,
    KRAKBUD_KEY,
    MICHAL,
    NAMES,
    SUPPORT,
    ZURAW_KEY,
    Site,
    Visitor,
    console_site,
)

pytestmark = pytest.mark.usefixtures("quick_bcrypt")


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    """The synced demo's console on a free loopback port."""
    with console_site(tmp_path / "demo") as running:
        yield running


def _owners(site: Site) -> dict[str, str | None]:
    rows = site.portal("SELECT contractor_key, owner_email FROM b2b_account")
    return dict(rows)


def test_a_salesperson_finds_only_their_own_customers(site: Site) -> None:
    """Michał's directory lists exactly the accounts whose salesperson he is."""
    michal = site.visitor(MICHAL)
    assert michal.get("/").url.endswith("/contractors?q=*")
    page = michal.get("/contractors", q="*").text
    owners = _owners(site)
    mine = sorted(k for k, email in owners.items() if email == MICHAL)
    assert mine
    assert KRAKBUD_KEY in mine
    for key in owners:
        assert (f'href="/contractors/{key}"' in page) == (key in mine), key
    assert "Bez konta" not in page  # conflicts have no salesperson to match
    assert (
        'href="/contractors/' + ZURAW_KEY + '"' not in michal.get("/contractors", q="*żuraw*").text
    )


def test_another_salespersons_customer_is_404_by_every_name(site: Site) -> None:
    """Żuraw is Agnieszka's: for Michał its card is a 404 by id, symbol and login, like
    the pages that are not for salespeople at all."""
    michal = site.visitor(MICHAL)
    for ident in (ZURAW_KEY, "HURT-ZUR", "zamowienia@zuraw.com.pl", "107"):
        answer = michal.get(f"/contractors/{ident}")
        assert answer.status_code == 404, ident
        assert "Żuraw" not in answer.text
    for path in ("/mail", "/removals"):
        assert michal.get(path).status_code == 404
    assert michal.get(f"/contractors/{KRAKBUD_KEY}").status_code == 200
    agnieszka = site.visitor(AGNIESZKA)
    assert agnieszka.get(f"/contractors/{ZURAW_KEY}").status_code == 200


def test_a_forged_request_for_another_salespersons_customer_changes_nothing(site: Site) -> None:
    """Michał, with a valid token of his own session, posts every action for Żuraw: each is
    a 404, and no account, binding, audit row, mail or file changes."""
    michal = site.visitor(MICHAL)
    michal.get(f"/contractors/{KRAKBUD_KEY}")  # a real page of his, for a real token
    before = site.snapshot()
    forms = {
        "block": {"reason": "forged"},
        "unblock": {},
        "reset-password": {"mode": "typed", "password": "Forged-Password-123"},
        "resend-activation": {},
        "resync": {},
    }
    for action, form in forms.items():
        for ident in (ZURAW_KEY, "HURT-ZUR", "zamowienia@zuraw.com.pl"):
            answer = michal.post(f"/contractors/{ident}/{action}", form)
            assert answer.status_code == 404, (action, ident)
    assert michal.post("/sync", {}).status_code == 404
    assert michal.post("/removals", {"digest": "x"}).status_code == 404
    assert site.snapshot() == before


def test_a_salesperson_blocks_and_unblocks_their_own_customer_as_themselves(site: Site) -> None:
    """Agnieszka blocks Żuraw with a reason; the portal shows it, the history names her."""
    agnieszka = site.visitor(AGNIESZKA)
    agnieszka.get(f"/contractors/{ZURAW_KEY}")
    page = agnieszka.post(f"/contractors/{ZURAW_KEY}/block", {"reason": "Zaległe płatności"}).text
    assert site.portal(
        "SELECT status, block_reason FROM b2b_account WHERE contractor_key = :k", k=ZURAW_KEY
    ) == [("blocked", "Zaległe płatności")]
    assert f'<span class="actor">{NAMES[AGNIESZKA]}</span>' in page
    agnieszka.post(f"/contractors/{ZURAW_KEY}/unblock", {})
    actions = site.state(
        "SELECT action, actor FROM syncd_audit "
        "WHERE contractor_key = :k AND action LIKE 'support%'",
        k=ZURAW_KEY,
    )
    assert actions == [("support_block", NAMES[AGNIESZKA]), ("support_unblock", NAMES[AGNIESZKA])]


def test_support_acts_on_everyone_but_may_not_sync_all(site: Site) -> None:
    """Support blocks anyone's customer; "sync now" and held removals are for admins."""
    support = site.visitor(SUPPORT)
    page = support.get("/").text
    assert "Synchronizuj teraz</button>" not in page.split("<h2>Następny cykl</h2>", 1)[1][:400]
    support.get(f"/contractors/{KRAKBUD_KEY}")
    support.post(f"/contractors/{KRAKBUD_KEY}/block", {"reason": "Do wyjaśnienia"})
    assert site.portal(
        "SELECT status FROM b2b_account WHERE contractor_key = :k", k=KRAKBUD_KEY
    ) == [("blocked",)]
    runs = site.state("SELECT count(*) FROM syncd_run")
    assert support.post("/sync", {}).status_code == 403
    assert site.state("SELECT count(*) FROM syncd_run") == runs


def test_a_trusted_proxy_header_signs_people_in(tmp_path: Path) -> None:
    """With web.trusted_header, the proxy's header names the person; no password form, and
    an unknown or missing name is not signed in."""
    with console_site(tmp_path / "demo", trusted_header="X-Remote-User") as site:
        http = requests.Session()
        page = http.get(site.url + "/", headers={"X-Remote-User": ADMIN}, timeout=30)
        assert page.status_code == 200
        assert NAMES[ADMIN] in page.text
        assert 'action="/logout"' not in page.text
        for headers in ({"X-Remote-User": "stranger@example.com"}, {}):
            answer = http.get(site.url + "/", headers=headers, timeout=30)
            assert answer.url.startswith(site.url + "/login")
            assert 'type="password"' not in answer.text
        michal = http.get(
            f"{site.url}/contractors/{ZURAW_KEY}", headers={"X-Remote-User": MICHAL}, timeout=30
        )
        assert michal.status_code == 404
        visitor = Visitor(site.url)
        assert visitor.login(ADMIN).url.startswith(site.url + "/login")
