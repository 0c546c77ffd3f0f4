"""The portal contract: every portal kind holds accounts the same way.

Parametrised over ``tests.contract.portals.FACTORIES``: syncd's own SQL schema on SQLite,
PostgreSQL and MariaDB, an existing shop's mapped table, SCIM (scim2-server) and REST (a
test server, WordPress). Fields are compared only where the portal declares it stores
them (``stored_fields``), exactly as the full reconcile compares them.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from connectors.base import (
    CreateAccount,
    DeleteAccount,
    OpOutcome,
    Portal,
    PortalAccount,
    SetPassword,
    UpdateAccount,
)
from syncd.config import load_config
from syncd.errors import ConfigError, LoginTaken, RecordError
from syncd.model import SYNCED_FIELDS, DesiredAccount
from tests.contract.portals import FACTORIES, Built, built, desired
from tests.support import write_config

PASSWORD = "Tajne-Haslo-4821"  # noqa: S105 - a planted test password


@pytest.fixture(params=[pytest.param(name, marks=marks) for name, (marks, _) in FACTORIES.items()])
def target(request: pytest.FixtureRequest, tmp_path: Path) -> Built:
    """A ready portal of one kind (its factory registers the clean-up); each test uses
    its own logins."""
    return built(FACTORIES[request.param][1](request, tmp_path))


def _ok(outcomes: list[OpOutcome]) -> list[str]:
    assert [o.error for o in outcomes] == [None] * len(outcomes)
    return [str(o.account_id) for o in outcomes]


def _create(portal: Portal, account: DesiredAccount, status: str = "pending") -> str:
    (account_id,) = _ok(portal.apply([CreateAccount(account.key, account.fields(), status)]))
    return account_id


def _find(portal: Portal, login: str) -> PortalAccount:
    found = portal.find_by_logins([login])
    assert login in found, f"{login} not found"
    return found[login]


def _stored(portal: Portal, fields: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in fields.items() if k in portal.stored_fields}


def test_stored_fields_are_synced_fields_and_include_the_login(target: Built) -> None:
    """A portal declares a subset of the synced fields, always with the login."""
    assert "login" in target.portal.stored_fields
    assert target.portal.stored_fields <= set(SYNCED_FIELDS)


def test_create_then_read_back_every_stored_field(target: Built) -> None:
    """What was created reads back equal, field by field, wherever the portal stores it."""
    portal, account = target.portal, desired("101")
    account_id = _create(portal, account)
    got = _find(portal, account.login)
    assert got.id == account_id
    assert got.contractor_key == "101"
    assert got.status == "pending"
    assert _stored(portal, got.fields) == _stored(portal, account.fields())


def test_update_one_field_changes_only_it(target: Built) -> None:
    """An update of the price level leaves every other stored field as it was."""
    portal, account = target.portal, desired("102")
    account_id = _create(portal, account, "active")
    _ok(portal.apply([UpdateAccount("102", account_id, {"price_level": "Dystrybutor"})]))
    expected = {**account.fields(), "price_level": "Dystrybutor"}
    assert _stored(portal, _find(portal, account.login).fields) == _stored(portal, expected)


def test_a_group_change_is_an_update_of_that_field_alone(target: Built) -> None:
    """Every kind stores ``customer_group``; moving the contractor to another group (or to
    none) changes it and nothing else, as a price level change does."""
    portal, account = target.portal, desired("117")
    assert "customer_group" in portal.stored_fields
    account_id = _create(portal, account, "active")
    for group in ("Detal", None):
        _ok(portal.apply([UpdateAccount("117", account_id, {"customer_group": group})]))
        expected = {**account.fields(), "customer_group": group}
        assert _stored(portal, _find(portal, account.login).fields) == _stored(portal, expected)


def test_accounts_may_share_an_email_when_their_logins_differ(
    target: Built, tmp_path: Path
) -> None:
    """With ``portal.login: symbol`` two accounts have one e-mail: the portal keeps both; a
    portal whose login IS its e-mail field cannot be configured with ``login: symbol``."""
    portal = target.portal
    fields = target.section.get("fields") or {}
    if fields.get("login") and fields.get("login") == fields.get("email"):
        # One portal field for both (WordPress's user_email): the configuration refuses it.
        with pytest.raises(ConfigError, match=r"portal\.login: symbol needs a login apart"):
            load_config(write_config(tmp_path, portal={**target.section, "login": "symbol"}).path)
        return
    first = desired("118", login="S-118", email="wspolny@example.com")
    second = desired("119", login="S-119", email="wspolny@example.com")
    _create(portal, first)
    _create(portal, second)
    found = portal.find_by_logins(["S-118", "S-119"])
    assert sorted(found) == ["S-118", "S-119"]
    if "email" in portal.stored_fields:
        assert {a.fields["email"] for a in found.values()} == {"wspolny@example.com"}


def test_contact_roles_read_back_and_change(target: Built) -> None:
    """A contact person's roles (receives mail, represents) are stored and updated like
    any other field, wherever the portal stores contacts."""
    portal, account = target.portal, desired("103")
    if "contacts" not in portal.stored_fields:
        assert "contacts" not in _stored(portal, account.fields())
        return
    account_id = _create(portal, account, "active")
    stored = _find(portal, account.login).fields["contacts"]
    assert [(c["receives_mail"], c["represents"]) for c in stored] == [(True, False), (False, True)]
    anna, piotr = account.contacts
    swapped = (replace(anna, receives_mail=False), replace(piotr, receives_mail=True))
    fields = {"contacts": [c.as_dict() for c in swapped]}
    _ok(portal.apply([UpdateAccount("103", account_id, fields)]))
    expected = {**account.fields(), **fields}
    assert _stored(portal, _find(portal, account.login).fields) == _stored(portal, expected)


def test_block_deactivate_reactivate(target: Built) -> None:
    """Block with a reason, unblock, deactivate and reactivate round-trip status and reason."""
    portal, account = target.portal, desired("103")
    account_id = _create(portal, account, "active")
    reason = "Zaległe płatności – zadzwoń do działu księgowości"
    _ok(
        portal.apply(
            [UpdateAccount("103", account_id, {"status": "blocked", "block_reason": reason})]
        )
    )
    got = _find(portal, account.login)
    assert (got.status, got.block_reason) == ("blocked", reason)
    _ok(
        portal.apply([UpdateAccount("103", account_id, {"status": "active", "block_reason": None})])
    )
    assert _find(portal, account.login).status == "active"
    _ok(portal.apply([UpdateAccount("103", account_id, {"status": "inactive"})]))
    assert _find(portal, account.login).status == "inactive"
    _ok(portal.apply([UpdateAccount("103", account_id, {"status": "active"})]))
    assert _find(portal, account.login).status == "active"


def test_delete_is_gone_and_deleting_again_is_harmless(target: Built) -> None:
    """A deleted account is not found; deleting it again is not an error."""
    portal, account = target.portal, desired("104")
    account_id = _create(portal, account)
    _ok(portal.apply([DeleteAccount("104", account_id)]))
    assert portal.find_by_logins([account.login]) == {}
    _ok(portal.apply([DeleteAccount("104", account_id)]))


def test_find_by_login_and_the_listing_show_every_account(target: Built) -> None:
    """find_by_logins finds the asked logins only; accounts() lists what was created."""
    portal = target.portal
    ids = {_create(portal, desired(key)) for key in ("105", "106", "107")}
    found = portal.find_by_logins(["k106@example.com", "nobody@example.com"])
    assert list(found) == ["k106@example.com"]
    assert found["k106@example.com"].contractor_key == "106"
    listed = {a.id for a in portal.accounts()}
    assert ids <= listed


def test_creating_an_existing_login_never_duplicates(target: Built) -> None:
    """A second create of the same login is LoginTaken (or the same account), never a twin."""
    portal, account = target.portal, desired("108")
    first = _create(portal, account)
    (again,) = portal.apply([CreateAccount("108", account.fields(), "pending")])
    if again.error is not None:
        assert isinstance(again.error, LoginTaken)
    else:
        assert str(again.account_id) == first
    assert [a.id for a in portal.accounts() if a.login == account.login] == [first]


def test_a_bad_record_fails_alone(target: Built) -> None:
    """An update of an account the portal does not have fails that op only."""
    portal, account = target.portal, desired("109")
    missing = _create(portal, desired("110"))
    _ok(portal.apply([DeleteAccount("110", missing)]))
    outcomes = portal.apply(
        [
            UpdateAccount("110", missing, {"price_level": "Detaliczna"}),
            CreateAccount("109", account.fields(), "pending"),
        ]
    )
    assert isinstance(outcomes[0].error, RecordError)
    assert outcomes[1].ok


def test_a_password_set_through_the_portal_logs_in(target: Built) -> None:
    """SetPassword makes the portal accept exactly that password (checked as it would)."""
    portal, account = target.portal, desired("111")
    account_id = _create(portal, account, "active")
    _ok(portal.apply([SetPassword("111", account_id, PASSWORD)]))
    if target.verify_password is None:
        pytest.fail("the factory gives no way to verify a password; every kind must")
    assert target.verify_password(account.login, PASSWORD)
    assert not target.verify_password(account.login, PASSWORD + "x")
    assert PASSWORD not in repr(SetPassword("111", account_id, PASSWORD))
