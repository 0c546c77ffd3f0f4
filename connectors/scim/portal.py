"""The portal connector for a SCIM 2.0 service provider (``portal.kind: scim``, RFC 7643/7644).

Accounts are the server's Users. ``ensure_ready`` reads the server's discovery endpoints:
whether it versions users (ETags, sent back as ``If-Match``) and whether it knows syncd's
extension schema; without it, only the core attributes are sent and compared, and
``check`` says what is lost. Requests go through one ``HttpClient`` with up to
``concurrency`` in flight; a password travels only inside a PATCH body, never in a log
line or an error.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Iterator, Sequence
from datetime import datetime
from typing import Any

import structlog

from connectors._http import HttpClient, auth_from
from connectors.base import OpOutcome, PortalAccount, PortalOp
from connectors.scim._discovery import ServerFacts, discover, json_body, resources
from connectors.scim._users import stored_fields, to_account
from connectors.scim._write import find_many, waves, write
from connectors.scim.config import DEFAULT_EXTENSION, ScimPortalConfig
from connectors.scim.schema import CORE_FIELDS
from syncd.clock import utcnow
from syncd.config.base import secret_value
from syncd.errors import PortalUnavailable, RecordError

log = structlog.get_logger(__name__)

SCIM_JSON = "application/scim+json"
LOGINS_PER_FILTER = 50  # logins looked up by one request: a URL of a few kilobytes


class ScimPortal:
    """``connectors.base.Portal`` over a SCIM server's ``/Users``."""

    stored_fields: frozenset[str]

    def __init__(
        self,
        url: str,
        *,
        token: str | None = None,
        username: str | None = None,
        password: str | None = None,
        extension: str = DEFAULT_EXTENSION,
        block_reason_attribute: str = "blockReason",
        page_size: int = 100,
        timeout: float = 30,
        concurrency: int = 4,
        retry_budget: float = 120,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._client = HttpClient(
            url,
            auth=auth_from(token, username, password),
            headers={"Accept": f"{SCIM_JSON}, application/json", "Content-Type": SCIM_JSON},
            timeout=timeout,
            concurrency=concurrency,
            retry_budget=retry_budget,
            what="the SCIM portal",
            secrets=(token, password),
            sleep=sleep,
        )
        self._url = url
        self._extension = extension
        self._block_reason_attribute = block_reason_attribute
        self._page_size = page_size
        self._facts: ServerFacts | None = None
        self._or_filters = True  # until the server refuses "userName eq .. or userName eq .."
        self.stored_fields = CORE_FIELDS  # until the server says it knows the extension

    @classmethod
    def from_config(
        cls, config: ScimPortalConfig, *, clock: Callable[[], datetime] = utcnow
    ) -> ScimPortal:
        """The portal that ``portal.kind: scim`` describes (``clock`` is not needed)."""
        del clock  # the SCIM server keeps its own timestamps
        return cls(
            config.url,
            token=secret_value(config.token),
            username=config.username,
            password=secret_value(config.password),
            extension=config.extension,
            block_reason_attribute=config.block_reason_attribute,
            page_size=config.page_size,
            timeout=config.timeout.total_seconds(),
            concurrency=config.concurrency,
            retry_budget=config.retry_budget.total_seconds(),
        )

    def __repr__(self) -> str:
        return f"ScimPortal({self._url!r})"

    def ensure_ready(self) -> None:
        """Start a cycle's retry budget and read what the server supports.

        Raises ``PortalUnavailable`` (unreachable, credentials refused).
        """
        self._client.new_cycle()
        before = self._facts.notes if self._facts else ()
        self._facts = discover(self._client, self._extension, self._block_reason_attribute)
        self.stored_fields = stored_fields(self._facts.layout)
        for note in self._facts.notes:
            if note not in before:  # once, not every cycle
                log.warning("portal.scim_note", note=note)

    def notes(self) -> list[str]:
        """What ``doctor`` should tell about this server: each note names the setting and
        what to do (an unknown extension, a missing attribute, no PATCH). Empty when all is
        well. Raises ``PortalUnavailable``."""
        return list(self._ready().notes)

    def find_by_logins(self, logins: Collection[str]) -> dict[str, PortalAccount]:
        """The users whose ``userName`` is in ``logins`` (case-insensitively), by the login
        as asked for: ``LOGINS_PER_FILTER`` logins a request (joined with ``or``), or one
        a request on a server that refuses such filters; ``concurrency`` at a time.

        Raises ``PortalUnavailable``, also when the server refuses the filter itself.
        """
        facts = self._ready()
        wanted = list(dict.fromkeys(logins))
        if self._or_filters and len(wanted) > 1:
            size = LOGINS_PER_FILTER
            chunks = [wanted[start : start + size] for start in range(0, len(wanted), size)]
            try:
                return self._find_chunks(facts, chunks)
            except RecordError:
                log.info("portal.scim_one_login_a_request", reason="the server refused an or")
                self._or_filters = False
        try:
            return self._find_chunks(facts, [[login] for login in wanted])
        except RecordError as error:
            message = (
                f"the SCIM portal refused to look users up by userName ({error}); "
                "check that its /Users endpoint supports filter=userName eq"
            )
            raise PortalUnavailable(message) from error

    def _find_chunks(self, facts: ServerFacts, chunks: list[list[str]]) -> dict[str, PortalAccount]:
        """Raises ``RecordError`` (a refused filter) or ``PortalUnavailable``."""
        results = self._client.run_all(lambda chunk: find_many(self._client, facts, chunk), chunks)
        found: dict[str, PortalAccount] = {}
        for result in results:
            if isinstance(result, BaseException):
                raise result
            found.update(result)
        return found

    def accounts(self) -> Iterator[PortalAccount]:
        """Stream every user, ``page_size`` at a time (``startIndex``/``count`` paging).

        Raises ``PortalUnavailable``, possibly after some accounts were yielded; also when
        the server ignores ``startIndex`` (it would list the same page forever).
        """
        facts = self._ready()
        stored = stored_fields(facts.layout)
        start = 1
        while True:
            params = {"startIndex": start, "count": self._page_size}
            body = json_body(self._client.request("GET", facts.endpoint, params=params))
            page = resources(body)
            echoed = body.get("startIndex", start) if isinstance(body, dict) else start
            if page and start > 1 and echoed != start:
                message = (
                    f"the SCIM portal ignores startIndex (asked for {start}, got {echoed}); "
                    "syncd cannot list its users page by page"
                )
                raise PortalUnavailable(message)
            for user in page:
                yield to_account(user, facts.layout, stored)
            start += len(page)
            total = body.get("totalResults") if isinstance(body, dict) else None
            if not page or (isinstance(total, int) and start > total):
                return

    def apply(self, ops: Sequence[PortalOp]) -> list[OpOutcome]:
        """Apply ``ops``, ``concurrency`` requests at a time; one outcome per op, in order
        (see ``Portal.apply``). Deletes go first, then updates, then creates.

        Raises ``PortalUnavailable`` when the portal fails before any op succeeded.
        """
        facts = self._ready()
        outcomes: list[OpOutcome | None] = [None] * len(ops)
        down: PortalUnavailable | None = None
        for wave in waves(ops):
            results = self._client.run_all(
                lambda index: write(self._client, facts, ops[index]), wave
            )
            for index, result in zip(wave, results, strict=True):
                outcomes[index] = _outcome(ops[index], result)
                if isinstance(result, PortalUnavailable):
                    down = result
            if down is not None:
                break
        if down is not None:
            if not any(o is not None and o.ok for o in outcomes):
                raise down
            log.warning("portal.unavailable", done=sum(o is not None for o in outcomes))
        return [
            o if o is not None else OpOutcome(op, error=down)
            for o, op in zip(outcomes, ops, strict=True)
        ]

    def close(self) -> None:
        """Close the HTTP session. Never raises."""
        self._client.close()

    def _ready(self) -> ServerFacts:
        if self._facts is None:
            self.ensure_ready()
        assert self._facts is not None
        return self._facts


def _outcome(op: PortalOp, result: Any) -> OpOutcome:
    if isinstance(result, PortalUnavailable | RecordError):
        return OpOutcome(op, error=result)
    if isinstance(result, BaseException):
        raise result  # a bug, not the record's fault nor the portal's
    return OpOutcome(op, account_id=str(result))
