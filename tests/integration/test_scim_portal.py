"""The SCIM portal against a real scim2-server process on loopback.

The portal contract (tests/contract) covers what every portal does; this file covers what
only SCIM has: the extension schema and servers without it, PATCH bodies and ``If-Match``,
paging, filter quoting, and how HTTP failures reach ``apply``'s outcomes.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from scim2_tester import Status, check_server
from structlog.testing import capture_logs

from connectors.base import (
    CreateAccount,
    DeleteAccount,
    OpOutcome,
    PortalAccount,
    SetPassword,
    UpdateAccount,
)
from connectors.scim import _write
from connectors.scim.config import DEFAULT_EXTENSION, ScimPortalConfig
from connectors.scim.portal import ScimPortal
from connectors.scim.schema import CORE_FIELDS
from syncd.errors import LoginTaken, PortalUnavailable, RecordError
from syncd.model import SYNCED_FIELDS
from tests.contract.portals import desired
from tests.scim_server import TOKEN, ScimServer, running

PASSWORD = "Tajne-Haslo-4821"  # noqa: S105 - a planted test password
WRONG_TOKEN = "Wrong-Token-123456"  # noqa: S105 - a token the test server refuses
EXT = DEFAULT_EXTENSION


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ScimServer]:
    """One scim2-server with syncd's extension for the module; each test uses its own logins."""
    with running(tmp_path_factory.mktemp("scim")) as started:
        yield started


def connect(server: ScimServer, **options: Any) -> ScimPortal:
    """A ready portal on ``server`` that gives up quickly when the server is gone."""
    options = {"token": TOKEN, "retry_budget": 1.0, "sleep": lambda _: None, **options}
    portal = ScimPortal(server.url, **options)
    portal.ensure_ready()
    return portal


@pytest.fixture
def portal(server: ScimServer) -> Iterator[ScimPortal]:
    """A ready portal on the module's server, listing two users a page."""
    portal = connect(server, page_size=2)
    yield portal
    portal.close()


@pytest.fixture
def sent(portal: ScimPortal) -> list[requests.PreparedRequest]:
    """Every request the portal sends from now on, as it went over the wire."""
    seen: list[requests.PreparedRequest] = []
    session = portal._client._session  # the one session all of the portal's requests share
    session.hooks["response"].append(lambda response, **_: seen.append(response.request))
    return seen


def ok(outcomes: list[OpOutcome]) -> list[str]:
    assert [o.error for o in outcomes] == [None] * len(outcomes)
    return [str(o.account_id) for o in outcomes]


def create(portal: ScimPortal, key: str, status: str = "active", **changes: Any) -> str:
    account = desired(key, **changes)
    (account_id,) = ok(portal.apply([CreateAccount(key, account.fields(), status)]))
    return account_id


def find(portal: ScimPortal, login: str) -> PortalAccount:
    return portal.find_by_logins([login])[login]


def test_a_server_with_the_extension_stores_every_synced_field(portal: ScimPortal) -> None:
    """With syncd's schema loaded, every synced field is stored, and there is nothing to note."""
    assert portal.stored_fields == frozenset(SYNCED_FIELDS)
    assert portal.notes() == []


def test_create_writes_core_attributes_and_the_extension(
    portal: ScimPortal, server: ScimServer
) -> None:
    """A created user carries the login, names, e-mail, phone, key and the extension's fields."""
    account_id = create(portal, "201", "pending")
    user = server.get(f"Users/{account_id}")
    assert (user["userName"], user["externalId"], user["active"]) == (
        "k201@example.com",
        "201",
        False,
    )
    assert user["displayName"] == user["name"]["formatted"] == "Firma 201 Sp. z o.o. – Łódź"
    assert user["emails"] == [{"value": "k201@example.com", "type": "work", "primary": True}]
    assert user["phoneNumbers"][0]["value"] == "+48 22 123 45 67"
    extension = user[EXT]
    assert (extension["priceLevel"], extension["discount"], extension["status"]) == (
        "Hurtowa",
        "12.50",
        "pending",
    )
    assert extension["contacts"][0] == {
        "name": "Anna Nowak",
        "email": "anna@example.com",
        "phone": "600100200",
        "position": "Zakupy",
        "isPrimary": True,
        "receivesMail": True,
        "represents": False,
    }
    assert "password" not in user


def test_an_update_patches_only_the_changed_attribute_with_if_match(
    portal: ScimPortal, sent: list[requests.PreparedRequest]
) -> None:
    """Changing the discount sends one PatchOp replacing only it, guarded by the ETag."""
    account_id = create(portal, "202")
    sent.clear()
    ok(portal.apply([UpdateAccount("202", account_id, {"discount": "7.25"})]))
    (patch,) = [r for r in sent if r.method == "PATCH"]
    body = json.loads(patch.body or b"{}")
    assert body["Operations"] == [{"op": "replace", "path": f"{EXT}:discount", "value": "7.25"}]
    assert patch.headers["If-Match"].startswith('W/"')
    assert find(portal, "k202@example.com").fields["discount"] == "7.25"


def test_block_reason_is_stored_and_lifted_with_active_false(
    portal: ScimPortal, server: ScimServer
) -> None:
    """A block sets active=false and the reason; unblocking clears the reason."""
    account_id = create(portal, "203")
    reason = "Zaległe płatności – zadzwoń do działu księgowości"
    ok(
        portal.apply(
            [UpdateAccount("203", account_id, {"status": "blocked", "block_reason": reason})]
        )
    )
    user = server.get(f"Users/{account_id}")
    assert (user["active"], user[EXT]["blockReason"]) == (False, reason)
    assert (
        find(portal, "k203@example.com").status,
        find(portal, "k203@example.com").block_reason,
    ) == (
        "blocked",
        reason,
    )
    ok(portal.apply([UpdateAccount("203", account_id, {"status": "active", "block_reason": None})]))
    user = server.get(f"Users/{account_id}")
    assert user["active"] is True
    assert "blockReason" not in user[EXT]


def test_active_flipped_by_hand_reads_as_what_active_says(
    portal: ScimPortal, server: ScimServer
) -> None:
    """A user deactivated in the portal by hand reads inactive, so the reconcile sees drift."""
    account_id = create(portal, "204")
    response = requests.patch(
        f"{server.url}/Users/{account_id}",
        json={
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [{"op": "replace", "path": "active", "value": False}],
        },
        headers={"Authorization": f"Bearer {TOKEN}"},
        timeout=10,
    )
    response.raise_for_status()
    assert find(portal, "k204@example.com").status == "inactive"


def test_the_listing_pages_with_start_index_and_count(
    tmp_path: Path,
) -> None:
    """Five users listed two at a time: three pages, every user once."""
    with running(tmp_path) as fresh:
        portal = connect(fresh, page_size=2)
        try:
            ids = [create(portal, str(key)) for key in range(301, 306)]
            pages: list[str] = []
            portal._client._session.hooks["response"].append(
                lambda response, **_: pages.append(response.request.url or "")
            )
            listed = [account.id for account in portal.accounts()]
        finally:
            portal.close()
    assert sorted(listed) == sorted(ids)
    assert len(pages) == 3
    assert all("count=2" in url for url in pages)


def test_find_by_logins_is_case_insensitive_and_quotes_the_filter(portal: ScimPortal) -> None:
    """Logins are found whatever their case, and a quote or backslash cannot break the filter."""
    odd = 'o"brien\\x@example.com'
    create(portal, "205", login=odd, email=odd)
    create(portal, "206")
    found = portal.find_by_logins(["K206@Example.COM", odd, 'o"brien@example.com', "x@y.pl"])
    assert sorted(found) == sorted(["K206@Example.COM", odd])
    assert found[odd].contractor_key == "205"


def test_logins_are_looked_up_fifty_a_request_or_one_by_one(
    portal: ScimPortal, sent: list[requests.PreparedRequest]
) -> None:
    """120 logins take three "or" filters; a server refusing "or" is asked one login at a time."""
    create(portal, "215")
    sent.clear()
    logins = [f"nobody{n}@example.com" for n in range(119)] + ["k215@example.com"]
    assert list(portal.find_by_logins(logins)) == ["k215@example.com"]
    assert len(sent) == 3

    def refuse_or(response: requests.Response, **_: Any) -> None:
        if "+or+" in (response.request.url or ""):
            assert response.content  # read the real answer, so its connection is released
            response.status_code = 400
            response._content = b'{"detail": "or is not supported", "status": "400"}'

    portal._client._session.hooks["response"].insert(0, refuse_or)
    sent.clear()
    assert list(portal.find_by_logins(logins[-3:])) == ["k215@example.com"]
    assert len(sent) == 1 + 3


def test_re_creating_never_duplicates(portal: ScimPortal, server: ScimServer) -> None:
    """Our own user is returned again; another contractor's or an unmanaged one is LoginTaken."""
    first = create(portal, "207")
    account = desired("207")
    (again,) = portal.apply([CreateAccount("207", account.fields(), "pending")])
    assert again.account_id == first
    (other,) = portal.apply([CreateAccount("208", account.fields(), "pending")])
    assert isinstance(other.error, LoginTaken)
    assert other.error.owner_key == "207"
    requests.post(
        f"{server.url}/Users",
        json={"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "hand@x.pl"},
        headers={"Authorization": f"Bearer {TOKEN}"},
        timeout=10,
    ).raise_for_status()
    fields = desired("209", login="hand@x.pl").fields()
    (unmanaged,) = portal.apply([CreateAccount("209", fields, "pending")])
    assert isinstance(unmanaged.error, LoginTaken)
    assert unmanaged.error.owner_key is None
    assert len(server.get("Users", filter='userName eq "k207@example.com"')["Resources"]) == 1


def test_a_409_on_create_is_login_taken(
    portal: ScimPortal, monkeypatch: pytest.MonkeyPatch
) -> None:
    """When the look-up misses but the server says 409, the login is taken (owner unknown)."""
    create(portal, "210")
    monkeypatch.setattr(_write, "find", lambda *args, **kwargs: None)
    fields = desired("211", login="k210@example.com").fields()
    (outcome,) = portal.apply([CreateAccount("211", fields, "pending")])
    assert isinstance(outcome.error, LoginTaken)
    assert (outcome.error.login, outcome.error.owner_key) == ("k210@example.com", None)


def test_updating_a_deleted_user_says_it_is_gone(portal: ScimPortal) -> None:
    """Deleting twice is fine; an update of the deleted user is that record's error."""
    account_id = create(portal, "212")
    ok(portal.apply([DeleteAccount("212", account_id), DeleteAccount("212", account_id)]))
    outcomes = portal.apply(
        [
            UpdateAccount("212", account_id, {"price_level": "Detaliczna"}),
            SetPassword("212", account_id, PASSWORD),
        ]
    )
    for outcome in outcomes:
        assert isinstance(outcome.error, RecordError)
        assert "gone from the portal" in str(outcome.error)
        assert "sync --full" in str(outcome.error)
    assert portal.find_by_logins(["k212@example.com"]) == {}


def test_a_password_is_set_and_never_logged(portal: ScimPortal, server: ScimServer) -> None:
    """SetPassword PATCHes the password: the server accepts it, no log line carries it."""
    account_id = create(portal, "213")
    with capture_logs() as logs:
        ok(portal.apply([SetPassword("213", account_id, PASSWORD)]))
    assert server.verify_password("k213@example.com", PASSWORD)
    assert PASSWORD not in repr(logs)
    assert "password" not in server.get(f"Users/{account_id}")


def test_a_plain_server_still_gets_its_users(tmp_path: Path) -> None:
    """Without the extension only core attributes are sent and compared, and check says so."""
    with running(tmp_path, extension=None) as plain:
        portal = connect(plain)
        try:
            assert portal.stored_fields == CORE_FIELDS
            (note,) = portal.notes()
            assert note.startswith(f"portal.extension: the SCIM server does not know schema {EXT}")
            assert "load the schema on the server" in note
            account = desired("401")
            account_id = create(portal, "401")
            user = plain.get(f"Users/{account_id}")
            assert EXT not in user
            assert user["schemas"] == ["urn:ietf:params:scim:schemas:core:2.0:User"]
            got = find(portal, account.login)
            assert got.contractor_key == "401"
            assert got.fields == {k: v for k, v in account.fields().items() if k in CORE_FIELDS}
            ok(
                portal.apply(
                    [UpdateAccount("401", account_id, {"status": "blocked", "block_reason": "x"})]
                )
            )
            assert plain.get(f"Users/{account_id}")["active"] is False
        finally:
            portal.close()


def test_a_wrong_token_stops_with_check_the_token(server: ScimServer) -> None:
    """A refused token is PortalUnavailable saying to check the token, without the token."""
    portal = ScimPortal(server.url, token=WRONG_TOKEN)
    try:
        with pytest.raises(PortalUnavailable) as caught:
            portal.ensure_ready()
    finally:
        portal.close()
    assert "check the token" in str(caught.value)
    assert WRONG_TOKEN not in str(caught.value)


def test_a_server_killed_mid_apply_keeps_what_was_applied(tmp_path: Path) -> None:
    """The creates answered before the server died keep their ids; the rest are unavailable."""
    with running(tmp_path) as doomed:
        portal = connect(doomed, concurrency=1)
        created: list[str] = []

        def kill_after_two(response: requests.Response, **_: Any) -> None:
            if response.request.method == "POST":
                created.append(response.json()["id"])
                if len(created) == 2:
                    doomed.stop()

        portal._client._session.hooks["response"].append(kill_after_two)
        ops = [CreateAccount(str(k), desired(str(k)).fields(), "pending") for k in range(501, 506)]
        try:
            outcomes = portal.apply(ops)
            with pytest.raises(PortalUnavailable):
                portal.apply(ops[2:])
        finally:
            portal.close()
    assert [o.account_id for o in outcomes[:2]] == created
    assert all(isinstance(o.error, PortalUnavailable) for o in outcomes[2:])
    assert TOKEN not in str(outcomes[2].error)


def test_basic_auth_is_sent_and_its_password_never_shown(server: ScimServer) -> None:
    """username/password go as HTTP basic auth; a refusal names the fix, not the password."""
    config = ScimPortalConfig.model_validate(
        {"kind": "scim", "url": server.url, "username": "syncd", "password": WRONG_TOKEN}
    )
    portal = ScimPortal.from_config(config)
    seen: list[str] = []
    portal._client._session.hooks["response"].append(
        lambda response, **_: seen.append(response.request.headers["Authorization"])
    )
    try:
        with pytest.raises(PortalUnavailable) as caught:
            portal.find_by_logins(["k1@example.com"])
    finally:
        portal.close()
    assert seen
    assert all(header.startswith("Basic ") for header in seen)
    assert "check the token (or username and password)" in str(caught.value)
    assert WRONG_TOKEN not in str(caught.value)


def test_scim2_tester_passes_the_operations_syncd_uses(server: ScimServer) -> None:
    """scim2-tester's discovery, create, read, PATCH replace/remove and delete checks of
    Users pass on a server serving syncd's extension schema (PUT and PATCH add are not
    used by syncd and not checked)."""
    client = server.scim_client()
    try:
        results = check_server(
            client,
            include_tags={"discovery", "crud:create", "crud:read", "crud:delete"}
            | {"patch:replace", "patch:remove"},
            resource_types=["User"],
        )
    finally:
        client.session.close()
    failed = [(r.title, r.reason) for r in results if r.status in (Status.ERROR, Status.CRITICAL)]
    assert failed == []
    assert sum(r.status == Status.SUCCESS for r in results) > 50


def test_users_written_by_syncd_are_valid_for_the_servers_schemas(
    portal: ScimPortal, server: ScimServer
) -> None:
    """scim2-client, validating against what the server publishes, reads syncd's users as
    Users with the B2BAccount extension, values intact."""
    account_id = create(portal, "214", "pending")
    client = server.scim_client()
    try:
        client.discover()
        model = client.get_resource_model("User")
        assert model is not None
        user = client.query(model, account_id)
    finally:
        client.session.close()
    assert isinstance(user, model)
    dumped = user.model_dump()
    assert dumped["userName"] == "k214@example.com"
    assert dumped[EXT]["discount"] == "12.50"
    assert dumped[EXT]["contacts"][0]["isPrimary"] is True


def test_the_extension_and_its_attribute_are_checked_in_the_config() -> None:
    """A non-URN extension or an odd attribute name is refused with what to write instead."""
    with pytest.raises(ValueError, match="must be a schema URN like urn:") as caught:
        ScimPortalConfig.model_validate(
            {"kind": "scim", "url": "https://x.example/scim/v2", "token": "t" * 8}
            | {"extension": "B2BAccount", "block_reason_attribute": "block reason"}
        )
    assert "must be a plain SCIM attribute name like blockReason" in str(caught.value)
