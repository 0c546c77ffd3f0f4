"""The REST portal against a real WordPress (Debian's package, ``php -S``, MariaDB), set up
by ``examples/portal-wordpress.yaml`` alone: what an admin would paste is what is tested."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from connectors.base import (
    CreateAccount,
    DeleteAccount,
    PortalOp,
    SetPassword,
    UpdateAccount,
)
from connectors.rest.portal import RestPortal
from syncd.errors import LoginTaken
from tests.contract.portal_rest import portal_for
from tests.contract.portals import desired
from tests.wordpress.site import Site, shared_site

pytestmark = pytest.mark.mariadb

PASSWORD = "Aktywacja-8Kq2-Zx"  # noqa: S105 - a planted test password


@pytest.fixture
def site(request: pytest.FixtureRequest) -> Site:
    """The session's WordPress site."""
    return shared_site(request)


@pytest.fixture
def portal(site: Site) -> Iterator[RestPortal]:
    """A ready portal on it, from the example's portal section."""
    built = portal_for(site.section())
    built.ensure_ready()
    yield built
    built.close()


def test_full_lifecycle_and_the_password_logs_in_through_wordpress(
    site: Site, portal: RestPortal
) -> None:
    """Create (pending), activate with a password that WordPress's own wp-login.php takes,
    update, block (the reason is shown at login, which then fails), delete."""
    account = desired("9001", login="k9001@example.com", email="k9001@example.com")
    (created,) = portal.apply([CreateAccount("9001", account.fields(), "pending")])
    assert created.ok, created.error
    account_id = str(created.account_id)
    found = portal.find_by_logins([account.login])[account.login]
    assert (found.id, found.status, found.contractor_key) == (account_id, "pending", "9001")
    assert found.fields == {k: v for k, v in account.fields().items() if k in portal.stored_fields}
    assert not site.logs_in(account.login, PASSWORD)

    activate: list[PortalOp] = [
        SetPassword("9001", account_id, PASSWORD),
        UpdateAccount("9001", account_id, {"status": "active"}),
    ]
    assert all(o.ok for o in portal.apply(activate))
    assert site.logs_in(account.login, PASSWORD)
    assert not site.logs_in(account.login, PASSWORD + "x")

    changes = {"price_level": "Dystrybutor", "name": "Firma Nowa", "discount": "7.00"}
    assert all(o.ok for o in portal.apply([UpdateAccount("9001", account_id, changes)]))
    listed = {a.id: a for a in portal.accounts()}[account_id]
    assert {k: listed.fields[k] for k in changes} == changes
    assert listed.fields["symbol"] == account.symbol

    reason = "Zaległe płatności: zadzwoń do działu księgowości"
    block = UpdateAccount("9001", account_id, {"status": "blocked", "block_reason": reason})
    assert all(o.ok for o in portal.apply([block]))
    got = portal.find_by_logins([account.login])[account.login]
    assert (got.status, got.block_reason) == ("blocked", reason)
    assert not site.logs_in(account.login, PASSWORD)
    assert "Zaległe płatności" in site.login_page(account.login, PASSWORD)

    assert all(o.ok for o in portal.apply([DeleteAccount("9001", account_id)]))
    assert portal.find_by_logins([account.login]) == {}
    assert portal.apply([DeleteAccount("9001", account_id)])[0].ok


def test_a_taken_login_is_login_taken_not_a_stopped_cycle(portal: RestPortal) -> None:
    """WordPress answers a taken username with a 500: syncd looks, sees the account, and
    reports LoginTaken for that record at once, instead of retrying until the budget ends."""
    account = desired("9002", login="k9002@example.com", email="k9002@example.com")
    (first,) = portal.apply([CreateAccount("9002", account.fields(), "pending")])
    assert first.ok, first.error
    (again,) = portal.apply([CreateAccount("9003", account.fields(), "pending")])
    assert isinstance(again.error, LoginTaken)
    assert again.error.owner_key == "9002"
    portal.apply([DeleteAccount("9002", str(first.account_id))])
