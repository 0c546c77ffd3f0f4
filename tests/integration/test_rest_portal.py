"""The REST portal against a real HTTP server on loopback (``tests.rest_server``)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from structlog.testing import capture_logs

from connectors.base import CreateAccount, DeleteAccount, SetPassword, UpdateAccount
from connectors.rest.portal import RestPortal
from syncd.errors import LoginTaken, PortalUnavailable, RecordError
from tests.contract.portal_rest import portal_for, section
from tests.contract.portals import desired
from tests.rest_server import Server, running

PASSWORD = "Tajne-Haslo-7312"  # noqa: S105 - a planted test password


@pytest.fixture
def server() -> Iterator[Server]:
    """A fresh test server."""
    with running() as started:
        yield started


@pytest.fixture
def portal(server: Server) -> Iterator[RestPortal]:
    """A ready portal on the test server."""
    built = portal_for(section(server.url))
    built.ensure_ready()
    yield built
    built.close()


def _creates(*keys: str) -> list[CreateAccount]:
    return [CreateAccount(key, desired(key).fields(), "pending") for key in keys]


def test_a_429_with_retry_after_is_waited_for_not_hammered(
    server: Server, portal: RestPortal
) -> None:
    """After a 429 with Retry-After: 2 no request starts for 2 s, and only the refused one
    is sent again: one extra request in all."""
    server.store.throttle(1, retry_after="2")
    before = server.store.count()
    outcomes = portal.apply(_creates("1", "2", "3", "4"))
    assert [o.error for o in outcomes] == [None] * 4
    assert server.store.count() - before == 5
    times = [at for at, _, _ in server.store.requests]
    refused = times[before]
    later = [at - refused for at in times[before + 1 :] if at - refused > 0.2]
    assert later, "the refused request was sent again"
    assert min(later) >= 1.9


def test_a_5xx_burst_shorter_than_the_budget_is_invisible(
    server: Server, portal: RestPortal
) -> None:
    """Three 503s and then two 500s (a create's 500 is looked up before it is sent again):
    every op succeeds, and no account is created twice."""
    server.store.fail(3, status=503)
    assert all(o.ok for o in portal.apply(_creates("11", "12", "13")))
    server.store.fail(2, status=500)
    assert all(o.ok for o in portal.apply(_creates("14")))
    logins = sorted(a.login for a in portal.accounts())
    assert logins == [f"k{key}@example.com" for key in ("11", "12", "13", "14")]


def test_401_says_check_the_token_and_never_shows_it(server: Server) -> None:
    """A wrong token stops with "check the token"; neither the error nor a log line has it."""
    wrong = "wrong-token-9f8e7d6c"
    portal = portal_for(section(server.url, token=wrong))
    with capture_logs() as logs, pytest.raises(PortalUnavailable) as caught:
        portal.ensure_ready()
    portal.close()
    assert "check the token" in str(caught.value)
    assert wrong not in str(caught.value)
    assert wrong not in repr(logs)


def test_full_lifecycle(server: Server, portal: RestPortal) -> None:
    """Create, find, update, set the password, block, deactivate, delete, as the portal
    stores them."""
    account = desired("21")
    (created,) = portal.apply(_creates("21"))
    account_id = str(created.account_id)
    found = portal.find_by_logins([account.login.upper()])[account.login.upper()]
    assert (found.id, found.status, found.contractor_key) == (account_id, "pending", "21")
    assert found.fields == account.fields()
    changes: dict[str, Any] = {"price_level": "Dystrybutor", "status": "active"}
    outcomes = portal.apply(
        [UpdateAccount("21", account_id, changes), SetPassword("21", account_id, PASSWORD)]
    )
    assert all(o.ok for o in outcomes)
    assert server.store.verify(account.login, PASSWORD)
    stored = server.store.users[int(account_id)]
    assert (stored["b2b"]["price_level"], stored["b2b"]["symbol"]) == ("Dystrybutor", "S-21")
    reason = "Zaległe płatności"
    portal.apply([UpdateAccount("21", account_id, {"status": "blocked", "block_reason": reason})])
    (listed,) = [a for a in portal.accounts() if a.id == account_id]
    assert (listed.status, listed.block_reason) == ("blocked", reason)
    assert all(o.ok for o in portal.apply([DeleteAccount("21", account_id)]))
    assert portal.find_by_logins([account.login]) == {}
    again = portal.apply(
        [DeleteAccount("21", account_id), UpdateAccount("21", account_id, {"name": "X"})]
    )
    assert again[0].ok
    assert isinstance(again[1].error, RecordError)
    assert "gone from the portal" in str(again[1].error)


def test_a_taken_username_is_login_taken_with_its_owner(portal: RestPortal) -> None:
    """The server's 409 on a duplicate username becomes LoginTaken naming the owner."""
    portal.apply(_creates("31"))
    twin = CreateAccount("32", desired("31").fields(), "pending")
    (outcome,) = portal.apply([twin])
    assert isinstance(outcome.error, LoginTaken)
    assert outcome.error.owner_key == "31"


def test_a_password_the_portal_echoes_is_scrubbed(server: Server, portal: RestPortal) -> None:
    """A portal that quotes the request in its error: the password shows as ***, in the
    error and in the logs."""
    (created,) = portal.apply(_creates("41"))
    server.store.fail(1, status=422)
    with capture_logs() as logs:
        (outcome,) = portal.apply([SetPassword("41", str(created.account_id), PASSWORD)])
    assert isinstance(outcome.error, RecordError)
    assert "***" in str(outcome.error)
    assert PASSWORD not in str(outcome.error)
    assert PASSWORD not in repr(logs)


@pytest.mark.parametrize(
    "paging",
    [
        {"style": "page", "per_page": 2},
        {"style": "page", "per_page": 2, "total_pages_header": "X-Total-Pages"},
        {"style": "link", "per_page": 2},
        {"style": "cursor", "per_page": 2, "cursor_path": "next_cursor"},
    ],
    ids=["page", "page-total-header", "link", "cursor"],
)
def test_every_paging_style_lists_every_account(server: Server, paging: dict[str, Any]) -> None:
    """Five accounts listed two a page come back once each, whatever the paging style."""
    portal = portal_for(section(server.url, pagination=paging))
    portal.apply(_creates("51", "52", "53", "54", "55"))
    before = server.store.count()
    assert sorted(a.contractor_key or "" for a in portal.accounts()) == [
        "51",
        "52",
        "53",
        "54",
        "55",
    ]
    assert server.store.count() - before == 3
    portal.close()


def test_without_a_find_operation_the_listing_is_searched(server: Server) -> None:
    """A portal with no find call still finds accounts by login (in any case)."""
    values = section(server.url)
    values["operations"] = {k: v for k, v in values["operations"].items() if k != "find"}
    portal = portal_for(values)
    portal.apply(_creates("61", "62"))
    found = portal.find_by_logins(["K62@example.com", "nobody@example.com"])
    assert [a.contractor_key for a in found.values()] == ["62"]
    portal.close()


def test_concurrency_keeps_up_to_four_in_flight(server: Server, portal: RestPortal) -> None:
    """Twenty creates at 50 ms an answer take about five rounds, not twenty."""
    server.store.delay = 0.05
    started = time.monotonic()
    assert all(o.ok for o in portal.apply(_creates(*(str(n) for n in range(100, 120)))))
    assert time.monotonic() - started < 0.05 * 20 * 0.6


def test_deactivate_goes_through_its_own_operation(server: Server) -> None:
    """With operations.deactivate, status inactive is sent by it; other changes by update."""
    values = section(server.url)
    values["operations"]["deactivate"] = {
        "method": "PATCH",
        "path": "/users/{{ id }}",
        "body": '{"status": {{ status }}, "active": false}',
    }
    portal = portal_for(values)
    (created,) = portal.apply(_creates("71"))
    account_id = str(created.account_id)
    changes = {"status": "inactive", "price_level": "Detaliczna"}
    assert portal.apply([UpdateAccount("71", account_id, changes)])[0].ok
    stored = server.store.users[int(account_id)]
    assert (stored["status"], stored["active"], stored["b2b"]["price_level"]) == (
        "inactive",
        False,
        "Detaliczna",
    )
    assert server.store.count("PATCH") == 2
    portal.close()
