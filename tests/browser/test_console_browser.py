"""The support console in a real browser: headless Chromium against ``syncd web`` serving the
synced demo, the way a salesperson and an admin use it."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from syncd.demo import DEMO_PASSWORD
from tests.browser.conftest import ConsoleProcess, screenshot_dir
from tests.web_env import ADMIN, AGNIESZKA, KRAKBUD_KEY, MICHAL, NAMES, ZURAW_KEY

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

TYPED = "Żuraw-Hasło-2024!"  # what the salesperson types for the customer
WAIT_MS = 20_000  # generous: the page answers in milliseconds, CI machines are busy


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    """A fresh browser context (no cookies), Polish, in Warsaw."""
    context = browser.new_context(locale="pl-PL", timezone_id="Europe/Warsaw")
    context.set_default_timeout(WAIT_MS)
    try:
        yield context.new_page()
    finally:
        context.close()


def _sign_in(page: Page, console: ConsoleProcess, who: str) -> None:
    page.goto(console.url + "/")
    page.fill("input[name=who]", who)
    page.fill("input[name=password]", DEMO_PASSWORD)
    page.click("button[type=submit] >> text=Zaloguj")
    page.wait_for_selector("text=Zalogowano jako")


def _status(console: ConsoleProcess, key: str) -> list[tuple[object, ...]]:
    return console.portal(
        "SELECT status, block_reason FROM b2b_account WHERE contractor_key = :k", k=key
    )


def test_salesperson_finds_zuraw_as_she_types_and_blocks_it_with_a_reason(
    console: ConsoleProcess, page: Page, tmp_path: Path
) -> None:
    """Sign in, type ``*żuraw*`` (results appear without pressing Enter), open the card,
    block with a reason; the history names her and the portal shows the reason."""
    _sign_in(page, console, AGNIESZKA)
    page.goto(console.url + "/contractors")
    page.evaluate("window.stillTheSamePage = true")
    page.type("#q", "*żuraw*", delay=30)
    link = page.locator(f'#results a[href="/contractors/{ZURAW_KEY}"]').first
    link.wait_for()
    assert page.evaluate("window.stillTheSamePage") is True  # found as she typed, no submit
    link.click()
    page.wait_for_url(f"**/contractors/{ZURAW_KEY}")
    page.fill("#block input[name=reason]", "Zaległe płatności – proszę o kontakt")
    page.click("#block button")
    page.wait_for_selector(".notice.ok")
    actors = page.locator(".timeline .actor").all_inner_texts()
    assert NAMES[AGNIESZKA] in actors
    assert "Zaległe płatności – proszę o kontakt" in page.content()
    assert _status(console, ZURAW_KEY) == [("blocked", "Zaległe płatności – proszę o kontakt")]
    page.screenshot(path=str(screenshot_dir(tmp_path) / "console-card.png"), full_page=True)


def test_the_search_works_without_javascript(browser: Browser, console: ConsoleProcess) -> None:
    """With JavaScript off, the search is a plain form: Enter shows the same results."""
    context = browser.new_context(java_script_enabled=False, locale="pl-PL")
    context.set_default_timeout(WAIT_MS)
    try:
        page = context.new_page()
        _sign_in(page, console, ADMIN)
        page.goto(console.url + "/contractors")
        page.fill("#q", "PL 521-301-72-28")
        page.press("#q", "Enter")
        page.wait_for_url("**/contractors?q=*")
        assert page.locator(f'#results a[href="/contractors/{ZURAW_KEY}"]').count() >= 1
    finally:
        context.close()


def test_salesperson_cannot_see_nor_forge_a_block_of_another_salespersons_customer(
    console: ConsoleProcess, page: Page
) -> None:
    """Michał gets a 404 for Agnieszka's Żuraw; a form forged on his own customer's page
    to block Żuraw is refused (403 without the token, 404 with it) and changes nothing."""
    _sign_in(page, console, MICHAL)
    before = _status(console, ZURAW_KEY)
    answer = page.goto(f"{console.url}/contractors/{ZURAW_KEY}")
    assert answer is not None
    assert answer.status == 404
    assert "Żuraw" not in page.content()
    for token, expected in (("forged-token", 403), (None, 404)):
        page.goto(f"{console.url}/contractors/{KRAKBUD_KEY}")
        page.evaluate(
            """([key, token]) => {
                const form = document.querySelector('#block');
                form.action = '/contractors/' + key + '/block';
                if (token !== null) { form.querySelector('input[name=csrf]').value = token; }
            }""",
            [ZURAW_KEY, token],
        )
        page.fill("#block input[name=reason]", "forged")
        with page.expect_response(re.compile(rf"/contractors/{ZURAW_KEY}/block$")) as info:
            page.click("#block button")
        assert info.value.status == expected
    assert _status(console, ZURAW_KEY) == before
    history = console.state(
        "SELECT count(*) FROM syncd_audit WHERE contractor_key = :k AND actor = :a",
        k=ZURAW_KEY,
        a=NAMES[MICHAL],
    )
    assert history == [(0,)]


def test_a_typed_password_is_mailed_and_never_in_a_page_or_the_log(
    console: ConsoleProcess, page: Page
) -> None:
    """The password a salesperson types is in the customer's mail, and in no page the
    browser received nor any line ``syncd web`` wrote."""
    bodies: list[str] = []
    page.on(
        "response",
        lambda r: (
            bodies.append(r.text()) if "text/html" in r.headers.get("content-type", "") else None
        ),
    )
    _sign_in(page, console, AGNIESZKA)
    page.goto(f"{console.url}/contractors/{ZURAW_KEY}")
    page.check("#reset input[value=typed]")
    page.fill("#reset input[name=password]", TYPED)
    page.click("#reset button")
    page.wait_for_selector(".notice")
    assert "wiadomość wysłano" in page.inner_text(".notice")
    mails = [m for m in console.emails() if "zamowienia@zuraw.com.pl" in m and TYPED in m]
    assert len(mails) == 1
    assert bodies
    assert all(TYPED not in body for body in bodies)
    assert TYPED not in console.log_text()
    assert "web.action" in console.log_text()


def test_admin_dashboard_shows_conflicts_and_screenshots_of_the_main_pages(
    console: ConsoleProcess, page: Page, tmp_path: Path
) -> None:
    """The dashboard shows the demo's conflicts with their reasons and the cycle chart; the
    main pages render (screenshots for docs/console.md)."""
    shots = screenshot_dir(tmp_path)
    shots.mkdir(parents=True, exist_ok=True)
    page.set_viewport_size({"width": 1280, "height": 900})
    page.goto(console.url + "/login")
    page.screenshot(path=str(shots / "console-login.png"))
    _sign_in(page, console, ADMIN)
    assert page.locator("svg.chart rect").count() >= 1
    assert "shares e-mail info@tekstylia-lodz.pl" in page.content()
    page.screenshot(path=str(shots / "console-dashboard.png"), full_page=True)
    page.goto(console.url + "/contractors?q=*hurt*")
    page.screenshot(path=str(shots / "console-directory.png"), full_page=True)
    page.goto(console.url + "/mail")
    page.screenshot(path=str(shots / "console-mail.png"))
