"""The support console's pure parts: people and passwords, the login limit, the chart,
the translations and the ``web`` configuration section."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

import bcrypt
import jinja2
import pytest

from syncd.config import ConfigError, parse_config
from syncd.config.sections import Role, WebConfig
from syncd.store import RunRow
from syncd.web.chart import cycle_chart
from syncd.web.i18n import POLISH, formatter, translator
from syncd.web.people import LoginLimiter, People, hash_password

TEMPLATES = Path(__file__).resolve().parents[2] / "syncd/web/templates"
BASE = {
    "source": {"kind": "subiekt_gt", "url": "sqlite:///erp.db", "feature": "b2b"},
    "portal": {"kind": "sql", "url": "sqlite:///portal.db"},
    "mail": {"transport": "file", "directory": "outbox", "sender": "b2b@example.com"},
}


def _web(**values: object) -> WebConfig:
    return WebConfig.model_validate(values)


def test_people_sign_in_by_name_or_email_with_argon2_or_bcrypt() -> None:
    """Either hash scheme works; name and e-mail in any case; a wrong password is None."""
    people = People(
        _web(
            users=[
                {"name": "Ewa", "email": "Ewa <EWA@Example.com>", "role": "support",
                 "password_hash": hash_password("ewa-password-1")},
                {"name": "Jan", "email": "jan@example.com", "role": "salesperson",
                 "password_hash": bcrypt.hashpw(b"jan-password-1", bcrypt.gensalt(4)).decode()},
            ]
        ),
        default_language="pl",
    )  # fmt: skip
    ewa = people.authenticate("ewa@example.com", "ewa-password-1")
    assert ewa is not None
    assert (ewa.name, ewa.email, ewa.role, ewa.language) == (
        "Ewa",
        "ewa@example.com",
        Role.SUPPORT,
        "pl",
    )
    assert people.authenticate("JAN", "jan-password-1") is not None
    assert people.authenticate("Ewa", "jan-password-1") is None
    assert people.authenticate("nobody", "ewa-password-1") is None


def test_a_person_without_a_hash_cannot_sign_in_with_a_password() -> None:
    """Users for the trusted proxy header only have no password to guess."""
    people = People(
        _web(users=[{"name": "Ann", "email": "a@x.pl", "role": "admin"}]), default_language="en"
    )
    assert people.person("Ann") is not None
    assert people.authenticate("Ann", "") is None


def test_a_salesperson_sees_only_customers_with_their_email() -> None:
    """Matching ``owner_email`` without case or spaces; support and admin see everyone."""
    web = _web(
        users=[
            {"name": "S", "email": "s@x.pl", "role": "salesperson"},
            {"name": "T", "email": "t@x.pl", "role": "support"},
        ]
    )
    people = People(web, default_language="pl")
    seller, helper = people.person("S"), people.person("T")
    assert seller is not None
    assert helper is not None
    assert seller.sees(" S@X.PL ")
    assert not seller.sees("other@x.pl")
    assert not seller.sees(None)
    assert helper.sees(None)


def test_a_changed_hash_ends_the_sessions_made_before() -> None:
    """The session stamp follows the hash: a new password signs everyone out."""
    old = People(
        _web(
            users=[
                {
                    "name": "A",
                    "email": "a@x.pl",
                    "role": "admin",
                    "password_hash": hash_password("first-password"),
                }
            ]
        ),
        default_language="pl",
    )
    new = People(
        _web(
            users=[
                {
                    "name": "A",
                    "email": "a@x.pl",
                    "role": "admin",
                    "password_hash": hash_password("second-password"),
                }
            ]
        ),
        default_language="pl",
    )
    assert old.stamp("A") != new.stamp("A")
    assert len(old.stamp("A")) == 16


def test_the_login_limit_counts_failures_per_name_and_per_address() -> None:
    """Five failures lock the name for the window; a success clears the name only."""
    now = [0.0]
    limiter = LoginLimiter(per_user=5, per_address=8, window_s=900, clock=lambda: now[0])
    name = ("ip:10.0.0.1", "user:ewa")
    for _ in range(4):
        limiter.failed(name)
    assert limiter.wait(name) == 0
    limiter.failed(name)
    assert 0 < limiter.wait(name) <= 900
    assert limiter.wait(("ip:10.0.0.2", "user:jan")) == 0
    limiter.succeeded("user:ewa")
    assert limiter.wait(name) == 0
    for _ in range(3):
        limiter.failed(("ip:10.0.0.1", "user:jan"))
    assert limiter.wait(("ip:10.0.0.1", "user:ola")) > 0  # 8 from that address
    now[0] = 901.0
    assert limiter.wait(("ip:10.0.0.1", "user:ola")) == 0


def _run(number: int, changes: int, seconds: float, status: str = "ok") -> RunRow:
    at = datetime(2024, 5, 2, 12, number, tzinfo=UTC)
    summary = {"create": changes, "update": 0, "duration_s": seconds}
    return RunRow(f"r{number}", "sync", "schedule", at, at, status, summary, None)


def test_the_cycle_chart_scales_bars_and_line_oldest_first() -> None:
    """Newest-first runs become left-to-right bars; the tallest bar and slowest point top out."""
    chart = cycle_chart([_run(3, 10, 2.0, "failed"), _run(2, 0, 1.0), _run(1, 5, 0.5)])
    heights = [bar["height"] for bar in chart["bars"]]
    assert heights[0] == pytest.approx(heights[2] / 2)
    assert heights[1] == 0
    assert [bar["failed"] for bar in chart["bars"]] == [False, False, True]
    points = [tuple(map(float, p.split(","))) for p in chart["line"].split()]
    assert min(points, key=lambda p: p[1]) == points[2]  # the slowest is highest (smallest y)
    assert cycle_chart([])["bars"] == []


def test_every_template_text_has_its_polish_translation() -> None:
    """Each ``_("...")`` in the templates is in ``POLISH``, so no page is half English."""
    env = jinja2.Environment(extensions=["jinja2.ext.i18n"], autoescape=True)
    missing = set()
    for template in TEMPLATES.glob("*.html"):
        for _, _, message in env.extract_translations(template.read_text(encoding="utf-8")):
            if isinstance(message, str) and message not in POLISH:
                missing.add(message)
    assert missing == set()
    python = Path(__file__).resolve().parents[2] / "syncd/web"
    for module in ("notices.py",):
        for message in re.findall(r'Notice\(\s*"\w+",\s*"([^"]+)"', (python / module).read_text()):
            assert message in POLISH, message


def test_dates_are_shown_in_the_persons_time_zone() -> None:
    """An ISO time in UTC is shown as local time; Polish is the default language."""
    when = formatter("Europe/Warsaw")
    assert when("2024-07-01T10:00:00+00:00") == "2024-07-01 12:00"
    assert when(datetime(2024, 1, 1, 10, tzinfo=UTC)) == "2024-01-01 11:00"
    assert when(None) == ""
    assert translator("pl")("Sign in") == "Zaloguj"
    assert translator("en")("Sign in") == "Sign in"


def test_the_web_section_reports_each_mistake_at_its_path_without_the_hash() -> None:
    """Bad role, time zone, hash and duplicates are errors with their path; no hash shown."""
    with pytest.raises(ConfigError) as raised:
        parse_config(
            {**BASE, "web": {"timezone": "Mars/Olympus", "users": [
                {"name": "A", "email": "a@x.pl", "role": "boss"},
                {"name": "B", "email": "b@x.pl", "role": "admin", "password_hash": "hunter2-plain"},
            ]}}
        )  # fmt: skip
    text = str(raised.value)
    assert "web.users.0.role: must be one of admin, support, salesperson (got 'boss')" in text
    assert "web.timezone: must be a time zone name" in text
    assert "web.users.1.password_hash: must be a hash made by `syncd web hash-password`" in text
    assert "hunter2-plain" not in text
    with pytest.raises(ConfigError) as twice:
        parse_config(
            {**BASE, "web": {"listen": "127.0.0.1:8080", "users": [
                {"name": "A", "email": "a@x.pl", "role": "admin"},
                {"name": "a", "email": "b@x.pl", "role": "support"},
            ]}}
        )  # fmt: skip
    assert "web.users.1.name: is given twice (got 'a')" in str(twice.value)
    with pytest.raises(ConfigError) as nobody:
        parse_config({**BASE, "web": {"listen": "127.0.0.1:8080"}})
    assert "web.users: add at least one person when listen is set" in str(nobody.value)


def test_the_web_section_defaults_to_off_and_hides_its_secrets() -> None:
    """No ``web`` section: no listener; ``check-config --json`` shows secrets as ***."""
    from syncd.config import describe

    assert parse_config(BASE).web.listen is None
    secret, digest = "s3cr3t-value", hash_password("x" * 12)
    config = parse_config(
        {**BASE, "web": {"session_secret": secret, "users": [
            {"name": "A", "email": "a@x.pl", "role": "admin", "password_hash": digest},
        ]}}
    )  # fmt: skip
    described = describe(config)["web"]
    hidden = "***"
    assert described["session_secret"] == hidden
    assert described["users"][0]["password_hash"] == hidden
    assert secret not in repr(config)
    assert digest not in repr(config)


def test_after_a_form_only_a_path_of_this_site_is_followed() -> None:
    """``next`` never leads to another site: ``//host``, ``/\\host`` and URLs become ``/``."""
    from syncd.web.app import _local

    for target in ("//evil.example", "/\\evil.example", "https://evil.example/", "", None):
        assert _local({"next": target}) == "/"
    assert _local({"next": "/contractors?q=*"}) == "/contractors?q=*"
