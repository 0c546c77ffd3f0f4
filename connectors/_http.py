"""The HTTP layer every web portal shares: one session, errors sorted in one place, retries.

Web portals are someone else's software, slow per request and sometimes overloaded, so
each HTTP portal kind (``scim``, ``rest``) talks through one ``HttpClient``:

- **One session**, with as many pooled connections as requests in flight: connection
  reuse, which is most of a request's cost over TLS.
- **Errors sorted once.** 429, 5xx, timeouts and dropped connections are retriable and
  retried here (tenacity), honouring ``Retry-After``; 401/403 stop the cycle with "check
  the token"; 409 is ``HttpConflict`` (the login exists); any other 4xx is a
  ``RecordError`` carrying the portal's own message. Statuses the caller expects (a 404 on
  delete) are handed back instead. No message carries a token or a password.
- **Bounded.** Waiting for one cycle's retries is capped by ``retry_budget``
  (``new_cycle`` resets it), so a portal that is down costs a cycle minutes, not hours.
- **Polite together.** ``run_all`` keeps up to ``concurrency`` requests in flight; a 429
  holds back every thread until its ``Retry-After`` has passed, so the portal sees one
  client slowing down, not four hammering.
"""

from __future__ import annotations

import email.utils
import json as jsonlib
import threading
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any, TypeVar
from urllib.parse import urljoin, urlsplit

import requests
import structlog
import tenacity
from requests.adapters import HTTPAdapter

from syncd.errors import PortalUnavailable, RecordError

log = structlog.get_logger(__name__)

T = TypeVar("T")
R = TypeVar("R")

MAX_ATTEMPTS = 8  # per request, within the cycle's retry budget
FIRST_WAIT_S = 0.5  # exponential backoff from here, doubled per attempt, with jitter
MAX_WAIT_S = 30.0
MESSAGE_CHARS = 300  # of a portal's own error text, quoted in a record's error


class HttpConflict(RecordError):
    """The portal answered 409: what was to be created exists already."""


class _Retriable(Exception):
    """One attempt failed in a way a later attempt may not; ``wait`` is what the portal
    asked for (``Retry-After``), if it said."""

    def __init__(self, reason: str, wait: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.wait = wait


def auth_from(
    token: str | None, username: str | None, password: str | None
) -> requests.auth.AuthBase | None:
    """Bearer auth for a token, else basic auth for a username and password, else none."""
    if token is not None:
        return _Bearer(token)
    if username is not None and password is not None:
        return requests.auth.HTTPBasicAuth(username, password)
    return None


class _Bearer(requests.auth.AuthBase):
    def __init__(self, token: str) -> None:
        self._token = token

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers["Authorization"] = f"Bearer {self._token}"
        return request

    def __repr__(self) -> str:
        return "_Bearer(***)"


class HttpClient:
    """Requests to one portal; safe to share between the threads of ``run_all``."""

    def __init__(
        self,
        base_url: str,
        *,
        auth: requests.auth.AuthBase | None = None,
        headers: Mapping[str, str] | None = None,
        timeout: float = 30,
        concurrency: int = 4,
        retry_budget: float = 120,
        what: str = "the portal",
        secrets: Sequence[str | None] = (),
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.base_url = base_url.rstrip("/") + "/"
        self.concurrency = concurrency
        self.what = f"{what} ({urlsplit(base_url).netloc})"
        self._timeout = timeout
        self._budget = retry_budget
        self._secrets = [s for s in secrets if s and len(s) >= 4]
        self._sleep = sleep
        self._clock = clock
        self._lock = threading.Lock()
        self._trouble_since: float | None = None  # the cycle's first retriable failure
        self._resume_at = 0.0  # no request starts before this (a 429's Retry-After)
        self.requests_sent = 0
        self._session = requests.Session()
        self._session.auth = auth
        self._session.headers.update({"Accept": "application/json", **(headers or {})})
        adapter = HTTPAdapter(pool_connections=1, pool_maxsize=max(concurrency, 1))
        self._session.mount("http://", adapter)
        self._session.mount("https://", adapter)

    def new_cycle(self) -> None:
        """A new cycle gets the whole retry budget again."""
        with self._lock:
            self._trouble_since = None

    def close(self) -> None:
        """Close the session's connections. Never raises."""
        try:
            self._session.close()
        except Exception:  # close() must never raise
            log.warning("http.close_failed", portal=self.what)

    # -- one request ---------------------------------------------------------------------

    def request(
        self,
        method: str,
        path: str,
        *,
        key: str | None = None,
        json: Any = None,
        params: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        allow: Collection[int] = (),
    ) -> requests.Response:
        """Send one request, retrying what may pass later; the response of a 2xx or of a
        status in ``allow``. ``key`` names the contractor in a record's error.

        Raises ``PortalUnavailable`` (unreachable, overloaded past the budget, credentials
        refused), ``HttpConflict`` (409) or ``RecordError`` (any other 4xx).
        """
        url = urljoin(self.base_url, path.lstrip("/")) if "://" not in path else path
        retrying = tenacity.Retrying(
            retry=tenacity.retry_if_exception_type(_Retriable),
            stop=tenacity.stop_after_attempt(MAX_ATTEMPTS) | _Stop(self._out_of_budget),
            wait=self._wait,
            sleep=self._sleep,
            reraise=True,
        )
        try:
            for attempt in retrying:
                with attempt:
                    return self._once(
                        method, url, key=key, json=json, params=params, headers=headers, allow=allow
                    )
        except _Retriable as error:
            message = (
                f"{self.what} is not answering as it should: {self._scrub(error.reason)}; "
                "syncd tries again on the next cycle"
            )
            raise PortalUnavailable(message) from None
        raise AssertionError("unreachable: tenacity either returns or raises")

    def _once(
        self,
        method: str,
        url: str,
        *,
        key: str | None,
        json: Any,
        params: Mapping[str, Any] | None,
        headers: Mapping[str, str] | None,
        allow: Collection[int],
    ) -> requests.Response:
        self._wait_for_pace()
        with self._lock:
            self.requests_sent += 1
        where = f"{method} {urlsplit(url).path}"
        try:
            response = self._session.request(
                method, url, json=json, params=params, headers=headers, timeout=self._timeout
            )
        except requests.Timeout:
            raise _Retriable(f"{where} timed out after {self._timeout:g} s") from None
        except requests.RequestException as error:
            raise _Retriable(f"{where} failed: {type(error).__name__}") from None
        status = response.status_code
        if 200 <= status < 300 or status in allow:
            return response
        said = self._portal_message(response)
        if status == 429:
            wait = _retry_after(response.headers.get("Retry-After"))
            if wait is not None:
                with self._lock:
                    self._resume_at = max(self._resume_at, self._clock() + wait)
            log.warning("http.slow_down", portal=self.what, request=where, retry_after=wait)
            raise _Retriable(f"{where} answered 429 Too Many Requests", wait)
        if status >= 500:
            log.warning("http.server_error", portal=self.what, request=where, status=status)
            raise _Retriable(f"{where} answered HTTP {status}: {said}")
        if status in (401, 403):
            message = (
                f"{self.what} refused syncd's credentials (HTTP {status} on {where}): check "
                f"the token (or username and password) in the portal section: {said}"
            )
            raise PortalUnavailable(message)
        record = key or "?"
        if status == 409:
            raise HttpConflict(record, f"{self.what} answered 409 Conflict on {where}: {said}")
        message = f"{self.what} refused it (HTTP {status} on {where}): {said}"
        raise RecordError(record, message)

    # -- pacing and the budget -----------------------------------------------------------

    def _wait_for_pace(self) -> None:
        while True:
            with self._lock:
                pause = self._resume_at - self._clock()
            if pause <= 0:
                return
            self._sleep(pause)

    def _wait(self, state: tenacity.RetryCallState) -> float:
        error = state.outcome.exception() if state.outcome else None
        if isinstance(error, _Retriable) and error.wait is not None:
            return 0.0  # the pace holds every thread until Retry-After has passed
        backoff = FIRST_WAIT_S * 2 ** (state.attempt_number - 1)
        jitter = tenacity.wait_random(0, FIRST_WAIT_S)(state)
        return float(min(backoff + jitter, MAX_WAIT_S))

    def _out_of_budget(self, state: tenacity.RetryCallState) -> bool:
        """The budget is wall time since the cycle's first trouble, whichever thread met it,
        so four threads waiting together spend it once, not four times."""
        with self._lock:
            now = self._clock()
            if self._trouble_since is None:
                self._trouble_since = now
            pending = max(self._resume_at - now, 0.0)
            return now - self._trouble_since + pending >= self._budget

    # -- many requests -------------------------------------------------------------------

    def run_all(self, fn: Callable[[T], R], items: Sequence[T]) -> list[R | BaseException]:
        """``fn`` over ``items`` with up to ``concurrency`` in flight; results (or the
        exception each raised) in input order. Once one raises ``PortalUnavailable`` no
        new item starts: the rest get that error, and the applied ones keep their result."""
        if not items:
            return []
        down: list[PortalUnavailable] = []

        def guarded(item: T) -> R | BaseException:
            if down:
                return down[0]
            try:
                return fn(item)
            except PortalUnavailable as error:
                down.append(error)
                return error
            except Exception as error:  # one record's failure is that record's outcome
                return error

        if self.concurrency == 1 or len(items) == 1:
            return [guarded(item) for item in items]
        with ThreadPoolExecutor(max_workers=self.concurrency) as pool:
            return list(pool.map(guarded, items))

    # -- messages ------------------------------------------------------------------------

    def _portal_message(self, response: requests.Response) -> str:
        """What the portal said about the failure, short, with every secret scrubbed."""
        text = response.text or ""
        try:
            body = jsonlib.loads(text)
        except ValueError:
            body = None
        said = _message_in(body) if body is not None else None
        return self._scrub((said or text or response.reason or "no details")[:MESSAGE_CHARS])

    def _scrub(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return " ".join(text.split())


class _Stop(tenacity.stop.stop_base):
    """A tenacity stop condition from a plain predicate (so it combines with ``|``)."""

    def __init__(self, predicate: Callable[[tenacity.RetryCallState], bool]) -> None:
        self._predicate = predicate

    def __call__(self, retry_state: tenacity.RetryCallState) -> bool:
        return self._predicate(retry_state)


def _message_in(body: Any) -> str | None:
    """The human part of a JSON error body, in the shapes APIs use (SCIM's ``detail``,
    WordPress's ``message``, OAuth's ``error_description``, lists of ``errors``)."""
    if isinstance(body, Mapping):
        for name in ("detail", "message", "error_description", "title", "error"):
            value = body.get(name)
            if isinstance(value, str) and value.strip():
                return value
            if isinstance(value, Mapping | list):
                found = _message_in(value)
                if found:
                    return found
        errors = body.get("errors")
        if errors is not None:
            return _message_in(errors)
    if isinstance(body, list):
        parts = [found for item in body if (found := _message_in(item))]
        return "; ".join(parts) or None
    if isinstance(body, str):
        return body
    return None


def _retry_after(value: str | None) -> float | None:
    """``Retry-After`` in seconds: a number, or an HTTP date (RFC 9110 section 10.2.3)."""
    if not value:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max((when - datetime.now(UTC)).total_seconds(), 0.0)
