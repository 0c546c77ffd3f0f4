"""The shared HTTP layer against a real HTTP server on loopback: retries, pacing, sorting."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from connectors._http import HttpClient, HttpConflict, auth_from
from syncd.errors import PortalUnavailable, RecordError

TOKEN = "tok-very-secret-1234"  # noqa: S105 - a planted test secret


class Script:
    """What the server answers, request by request: a list of (status, headers, body)."""

    def __init__(self) -> None:
        self.answers: list[tuple[int, dict[str, str], Any]] = []
        self.default: tuple[int, dict[str, str], Any] = (200, {}, {"ok": True})
        self.seen: list[tuple[float, str, str | None]] = []
        self.lock = threading.Lock()

    def next(self, path: str, auth: str | None) -> tuple[int, dict[str, str], Any]:
        with self.lock:
            self.seen.append((time.monotonic(), path, auth))
            return self.answers.pop(0) if self.answers else self.default


@pytest.fixture
def server() -> Iterator[tuple[str, Script]]:
    """A real HTTP server on a free loopback port answering from a ``Script``."""
    script = Script()

    class Handler(BaseHTTPRequestHandler):
        def _answer(self) -> None:
            status, headers, body = script.next(self.path, self.headers.get("Authorization"))
            data = json.dumps(body).encode()
            self.send_response(status)
            for name, value in {"Content-Type": "application/json", **headers}.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_PATCH = do_DELETE = _answer

        def log_message(self, *args: object) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/api", script
    httpd.shutdown()
    httpd.server_close()


def _client(url: str, **kw: Any) -> HttpClient:
    kw.setdefault("auth", auth_from(TOKEN, None, None))
    kw.setdefault("secrets", [TOKEN])
    return HttpClient(url, **kw)


def test_429_with_retry_after_is_waited_for_not_hammered(server: tuple[str, Script]) -> None:
    """After a 429 with Retry-After: 1 the next request comes a second later, not at once."""
    url, script = server
    script.answers = [(429, {"Retry-After": "1"}, {"message": "slow down"})]
    client = _client(url)
    assert client.request("GET", "users").json() == {"ok": True}
    (first, _, auth), (second, _, _) = script.seen
    assert len(script.seen) == 2
    assert second - first >= 0.95
    assert auth == f"Bearer {TOKEN}"
    client.close()


def test_a_5xx_burst_within_the_budget_is_invisible(server: tuple[str, Script]) -> None:
    """Three 503s then a 200: the caller just gets the 200."""
    url, script = server
    script.answers = [(503, {}, {})] * 3
    client = _client(url)
    assert client.request("POST", "users", json={"a": 1}).status_code == 200
    assert len(script.seen) == 4
    client.close()


def test_a_portal_down_past_the_budget_is_unavailable(server: tuple[str, Script]) -> None:
    """Endless 500s stop at the retry budget with PortalUnavailable, not after hours."""
    url, script = server
    script.default = (500, {}, {"detail": "database is down"})
    client = _client(url, retry_budget=1.0)
    started = time.monotonic()
    with pytest.raises(PortalUnavailable, match="HTTP 500: database is down"):
        client.request("GET", "users")
    assert time.monotonic() - started < 10
    client.close()


def test_refused_credentials_stop_with_check_the_token_and_no_secret(
    server: tuple[str, Script],
) -> None:
    """401 is PortalUnavailable saying to check the token; the token is never in the text."""
    url, script = server
    script.answers = [(401, {}, {"message": f"bad token {TOKEN}"})]
    client = _client(url)
    with pytest.raises(PortalUnavailable) as caught:
        client.request("GET", "users")
    assert "check the token" in str(caught.value)
    assert TOKEN not in str(caught.value)
    assert len(script.seen) == 1  # never retried
    client.close()


def test_409_and_other_4xx_are_record_errors_with_the_portals_message(
    server: tuple[str, Script],
) -> None:
    """409 is HttpConflict; a 422 is a RecordError quoting the portal; allowed ones return."""
    url, script = server
    script.answers = [
        (409, {}, {"detail": "userName exists"}),
        (422, {}, {"code": "x", "message": "Invalid e-mail"}),
        (404, {}, {}),
    ]
    client = _client(url)
    with pytest.raises(HttpConflict, match="userName exists"):
        client.request("POST", "users", key="K1")
    with pytest.raises(RecordError) as caught:
        client.request("POST", "users", key="K2")
    assert caught.value.key == "K2"
    assert "HTTP 422" in str(caught.value)
    assert "Invalid e-mail" in str(caught.value)
    assert client.request("DELETE", "users/9", allow={404}).status_code == 404
    client.close()


def test_run_all_keeps_order_and_a_429_holds_every_thread(server: tuple[str, Script]) -> None:
    """Results come in input order; one 429 pauses all four threads, not just its own."""
    url, script = server
    script.answers = [(429, {"Retry-After": "1"}, {})]
    client = _client(url, concurrency=4)
    started = time.monotonic()
    results = client.run_all(
        lambda n: (n, client.request("GET", f"users/{n}").status_code), range(8)
    )
    assert results == [(n, 200) for n in range(8)]
    after_429 = [at for at, _, _ in script.seen[1:] if at - started > 0.05]
    assert len(script.seen) == 9
    assert len(after_429) >= 4  # the others waited too
    client.close()


def test_run_all_stops_starting_work_once_the_portal_is_down(server: tuple[str, Script]) -> None:
    """After a PortalUnavailable the remaining items are not sent; they get that error."""
    url, script = server
    script.default = (401, {}, {})
    client = _client(url, concurrency=1)
    results = client.run_all(lambda n: client.request("GET", f"users/{n}"), list(range(5)))
    assert all(isinstance(r, PortalUnavailable) for r in results)
    assert len(script.seen) == 1
    client.close()
