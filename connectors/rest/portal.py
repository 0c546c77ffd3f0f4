"""The portal connector for a JSON REST API described in YAML (``portal.kind: rest``).

Each account action is one configured call (``connectors.rest.templates``) sent through the
shared ``HttpClient``, up to ``portal.concurrency`` at a time, never two at once for one
account. What the portal answers is sorted here: a create it refuses because the login
exists is ``LoginTaken``, an update of an account it no longer has is a record error, a
delete of one is done. Passwords (the ones ``SetPassword`` carries and the throwaway one a
create may need) are scrubbed from every error; no request body is ever logged.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterator, Sequence
from datetime import datetime
from typing import Any

import structlog

from connectors._http import HttpClient, HttpConflict, auth_from
from connectors.base import (
    CreateAccount,
    DeleteAccount,
    OpOutcome,
    PortalAccount,
    PortalOp,
    SetPassword,
    UpdateAccount,
)
from connectors.rest._apply import hiding, waves
from connectors.rest.config import Operation, RestPortalConfig
from connectors.rest.listing import Mapper, dig, items_in, json_of, pages
from connectors.rest.templates import (
    Compiled,
    Request,
    TemplateProblem,
    create_context,
    update_context,
)
from syncd.clock import utcnow
from syncd.config.base import secret_value
from syncd.errors import AccountGone, LoginTaken, PortalUnavailable, RecordError, SyncdError

log = structlog.get_logger(__name__)

GONE = (404, 410)


class RestPortal:
    """``connectors.base.Portal`` over a REST API whose calls ``RestPortalConfig`` describes."""

    def __init__(self, config: RestPortalConfig, client: HttpClient) -> None:
        self._config = config
        self._client = client
        self._mapper = Mapper(config)
        self.stored_fields = self._mapper.stored
        ops = config.operations
        self._ops = {
            name: Compiled(op)
            for name in ("list", "find", "create", "update", "delete", "deactivate", "set_password")
            if isinstance(op := getattr(ops, name), Operation)
        }

    @classmethod
    def from_config(
        cls, config: RestPortalConfig, *, clock: Callable[[], datetime] = utcnow
    ) -> RestPortal:
        """The portal that ``portal.kind: rest`` describes (``clock`` is not needed)."""
        token, password = secret_value(config.token), secret_value(config.password)
        headers: dict[str, str] = {}
        auth = None
        if config.api_key_header and token is not None:
            headers[config.api_key_header] = token
        else:
            auth = auth_from(token, config.username, password)
        client = HttpClient(
            config.url,
            auth=auth,
            headers=headers,
            timeout=config.timeout.total_seconds(),
            concurrency=config.concurrency,
            retry_budget=config.retry_budget.total_seconds(),
            secrets=(token, password),
        )
        return cls(config, client)

    def __repr__(self) -> str:
        return f"RestPortal({self._config.url!r})"

    @property
    def client(self) -> HttpClient:
        """The HTTP client (its ``requests_sent`` counts what was sent)."""
        return self._client

    def ensure_ready(self) -> None:
        """Start a cycle (a fresh retry budget) and read one listing page: the portal
        answers and takes the credentials. Raises ``PortalUnavailable``."""
        self._client.new_cycle()
        first = self._render("list", {})
        params = dict(first.params)
        paging = self._config.pagination
        if paging.style != "none" and paging.per_page_param:
            params[paging.per_page_param] = "1"
        response = self._client.request(first.method, first.path, params=params)
        what = self._client.what
        items_in(json_of(response, what=what), self._config.items_path, what=what)

    def find_by_logins(self, logins: Collection[str]) -> dict[str, PortalAccount]:
        """The accounts whose login is in ``logins`` (any case), by the login as asked for:
        one ``find`` call per login, or one pass over the listing when there is no ``find``.
        Raises ``PortalUnavailable``."""
        wanted = list(dict.fromkeys(logins))
        if "find" not in self._ops:
            by_lower = {login.lower(): login for login in wanted}
            return {
                by_lower[a.login.lower()]: a for a in self.accounts() if a.login.lower() in by_lower
            }
        found: dict[str, PortalAccount] = {}
        for login, result in zip(wanted, self._client.run_all(self._find, wanted), strict=True):
            if isinstance(result, BaseException):
                raise result
            if result is not None:
                found[login] = result
        return found

    def accounts(self) -> Iterator[PortalAccount]:
        """Stream every account, page by page. Raises ``PortalUnavailable``."""
        for items in pages(self._client, self._render("list", {}), self._config):
            for item in items:
                account = self._mapper.account(item)
                if account is not None:
                    yield account

    def apply(self, ops: Sequence[PortalOp]) -> list[OpOutcome]:
        """Apply ``ops`` concurrently, in waves that hold at most one op per account, so an
        account's ops keep their order; one outcome per op (see ``Portal.apply``)."""
        outcomes: list[OpOutcome | None] = [None] * len(ops)
        down: PortalUnavailable | None = None
        for wave in waves(ops):
            if down is None:
                results = self._client.run_all(lambda i: self._apply_one(ops[i]), wave)
            else:
                results = [down] * len(wave)
            for index, result in zip(wave, results, strict=True):
                if isinstance(result, OpOutcome):
                    outcomes[index] = result
                    continue
                if not isinstance(result, SyncdError):
                    raise result  # a bug, not the portal's doing
                if isinstance(result, PortalUnavailable):
                    down = result
                outcomes[index] = OpOutcome(ops[index], error=result)
        done = [outcome for outcome in outcomes if outcome is not None]
        if down is not None:
            if not any(outcome.ok for outcome in done):
                raise down
            log.warning("portal.unavailable", done=sum(o.ok for o in done), ops=len(ops))
        return done

    def close(self) -> None:
        """Close the HTTP session. Never raises."""
        self._client.close()

    # -- one operation -------------------------------------------------------------------

    def _apply_one(self, op: PortalOp) -> OpOutcome:
        if isinstance(op, CreateAccount):
            return self._create(op)
        if isinstance(op, UpdateAccount):
            return self._update(op)
        if isinstance(op, DeleteAccount):
            request = self._render(
                "delete", {"id": op.account_id, "contractor_key": op.key}, op.key
            )
            self._send(request, op.key, allow=GONE)
            return OpOutcome(op, account_id=op.account_id)
        return self._set_password(op)

    def _create(self, op: CreateAccount) -> OpOutcome:
        status = self._config.portal_status(str(op.status))
        context = create_context(op.key, op.fields, status, op.block_reason)
        with hiding(context["password"]):
            request = self._render("create", context, op.key)
            login = str(op.fields.get("login", ""))
            try:
                # A create is not idempotent: after a 500 (WordPress's answer to a taken
                # username, too) look for the login before sending it again.
                response = self._send(request, op.key, allow=(500,))
                if response.status_code == 500:
                    self._raise_if_taken(op.key, login)
                    response = self._send(request, op.key)
            except HttpConflict:
                owner = self._lookup(login)
                raise LoginTaken(op.key, login, owner.contractor_key if owner else None) from None
            except LoginTaken:
                raise
            except RecordError:
                # Some portals say "exists" with a 400: look before calling the record bad.
                self._raise_if_taken(op.key, login)
                raise
        id_path = self._config.operations.create.id_path
        try:
            account_id = dig(response.json(), id_path) if response.content else None
        except ValueError:  # not JSON: the Location header may still name the new account
            account_id = None
        if account_id in (None, "") and response.headers.get("Location"):
            account_id = response.headers["Location"].rstrip("/").rsplit("/", 1)[-1]
        if account_id in (None, ""):
            message = (
                f"the portal created the account of contractor {op.key} but its answer has "
                f"no id at {id_path!r}: fix portal.operations.create.id_path; the next "
                "cycle finds the account by its login"
            )
            raise RecordError(op.key, message)
        return OpOutcome(op, account_id=str(account_id))

    def _update(self, op: UpdateAccount) -> OpOutcome:
        changes = {name: value for name, value in op.fields.items() if name != "password_hash"}
        if "status" in changes:
            changes["status"] = self._config.portal_status(str(changes["status"]))
        deactivate = "deactivate" in self._ops and op.fields.get("status") == "inactive"
        if deactivate:
            changes.pop("status")
        if set(changes) & self._ops["update"].uses:
            self._send_to(op, "update", update_context(op.account_id, op.key, changes))
        if deactivate:
            inactive = {"status": self._config.portal_status("inactive")}
            self._send_to(op, "deactivate", update_context(op.account_id, op.key, inactive))
        return OpOutcome(op, account_id=op.account_id)

    def _set_password(self, op: SetPassword) -> OpOutcome:
        with hiding(op.password):
            if "set_password" in self._ops:
                context = {"id": op.account_id, "contractor_key": op.key, "password": op.password}
                self._send_to(op, "set_password", context)
            else:
                changes = {"password": op.password}
                self._send_to(op, "update", update_context(op.account_id, op.key, changes))
        return OpOutcome(op, account_id=op.account_id)

    def _send_to(self, op: UpdateAccount | SetPassword, name: str, context: dict[str, Any]) -> None:
        response = self._send(self._render(name, context, op.key), op.key, allow=GONE)
        if response.status_code in GONE:
            message = (
                f"account {op.account_id} of contractor {op.key} is gone from the portal; the "
                "cycle that updates it, or a full reconcile (`syncd sync --full`), creates it again"
            )
            raise AccountGone(op.key, message)

    def _send(self, request: Request, key: str, allow: Collection[int] = ()) -> Any:
        return self._client.request(
            request.method,
            request.path,
            key=key,
            json=request.body,
            params=request.params,
            allow=allow,
        )

    def _find(self, login: str) -> PortalAccount | None:
        request = self._render("find", {"login": login})
        response = self._client.request(
            request.method, request.path, params=request.params, allow=GONE
        )
        if response.status_code in GONE:
            return None
        path = self._config.operations.find.items_path if self._config.operations.find else None
        document = json_of(response, what=self._client.what)
        for item in items_in(
            document, self._config.items_path if path is None else path, what=self._client.what
        ):
            account = self._mapper.account(item)
            if account is not None and account.login.lower() == login.lower():
                return account
        return None

    def _raise_if_taken(self, key: str, login: str) -> None:
        """Raise ``LoginTaken`` when the portal holds ``login``."""
        owner = self._lookup(login)
        if owner is not None:
            raise LoginTaken(key, login, owner.contractor_key) from None

    def _lookup(self, login: str) -> PortalAccount | None:
        """The account of ``login``, if the portal can say right now."""
        try:
            return self.find_by_logins([login]).get(login) if login else None
        except PortalUnavailable:
            return None

    def _render(self, name: str, context: dict[str, Any], key: str | None = None) -> Request:
        try:
            return self._ops[name].render(context)
        except TemplateProblem as problem:
            message = f"portal.operations.{name}.{problem}: fix the template in the configuration"
            if key is None:
                raise PortalUnavailable(message) from None
            raise RecordError(key, f"contractor {key}: {message}") from None
