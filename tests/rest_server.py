"""A small JSON REST user store on loopback, for the REST portal's tests and benchmark.

A real ``http.server`` (threaded, 127.0.0.1, a free port) with switches a test flips:
``throttle(n, retry_after)`` answers the next n requests 429 with ``Retry-After``,
``fail(n, status)`` a burst of 5xx (or of 4xx that quote the request), ``delay`` slows
every answer (a real shop API takes about 90 ms). It counts every request, keeps a bearer
token, refuses a duplicate username with 409, and stores passwords as salted hashes that
``verify`` (or ``POST /login``) checks.

Run ``python -m tests.rest_server`` to measure 1,000 creates at 50 ms an answer (``make
bench``).
"""

from __future__ import annotations

import hashlib
import json
import secrets
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

TOKEN = "test-token-5f2c9a"  # noqa: S105 - the test server's own bearer token


@dataclass
class Store:
    """The server's state and switches; every field is guarded by ``lock``."""

    token: str = TOKEN
    delay: float = 0.0
    users: dict[int, dict[str, Any]] = field(default_factory=dict)
    hashes: dict[int, str] = field(default_factory=dict)
    next_id: int = 1
    throttled: int = 0
    retry_after: str = "2"
    failing: int = 0
    fail_status: int = 503
    requests: list[tuple[float, str, str]] = field(default_factory=list)
    bodies: list[bytes] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def throttle(self, count: int, retry_after: str = "2") -> None:
        """Answer the next ``count`` requests 429 with this ``Retry-After``."""
        with self.lock:
            self.throttled, self.retry_after = count, retry_after

    def fail(self, count: int, status: int = 503) -> None:
        """Answer the next ``count`` requests with ``status`` (a 5xx burst)."""
        with self.lock:
            self.failing, self.fail_status = count, status

    def count(self, method: str | None = None) -> int:
        """Requests received so far (of one method)."""
        with self.lock:
            return sum(1 for _, m, _ in self.requests if method in (None, m))

    def verify(self, login: str, password: str) -> bool:
        """Whether ``password`` is the one stored for ``login`` (as the portal's login would)."""
        with self.lock:
            for user_id, user in self.users.items():
                if user["username"].lower() == login.lower() and user_id in self.hashes:
                    salt, _, digest = self.hashes[user_id].partition("$")
                    return _hash(salt, password) == digest
        return False


def _hash(salt: str, password: str) -> str:
    return hashlib.sha256(f"{salt}:{password}".encode()).hexdigest()


class Handler(BaseHTTPRequestHandler):
    """``/users`` (GET list, POST), ``/users/{id}`` (GET, PUT, PATCH, DELETE),
    ``/users/{id}/password`` (POST) and ``/login`` (POST, no token)."""

    server: Server
    protocol_version = "HTTP/1.1"

    def setup(self) -> None:
        """As real servers do: no Nagle delay between a response's headers and body."""
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the tests count requests instead."""

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")

    def do_PUT(self) -> None:
        self._handle("PUT")

    def do_PATCH(self) -> None:
        self._handle("PATCH")

    def do_DELETE(self) -> None:
        self._handle("DELETE")

    def _handle(self, method: str) -> None:
        store = self.server.store
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        url = urlsplit(self.path)
        with store.lock:
            store.requests.append((time.monotonic(), method, url.path))
            store.bodies.append(raw)
            delay = store.delay
            throttled, failing = store.throttled > 0, store.failing > 0
            store.throttled -= throttled
            store.failing -= failing and not throttled
        if delay:
            time.sleep(delay)
        if throttled:
            self._send(429, {"message": "slow down"}, {"Retry-After": store.retry_after})
        elif failing and store.fail_status >= 500:
            self._send(store.fail_status, {"message": "the database is restarting"})
        elif failing:  # a validation error quoting the request, as some APIs answer
            said = raw.decode(errors="replace")
            self._send(store.fail_status, {"message": f"cannot store {said}"})
        elif url.path == "/login" and method == "POST":
            body = json.loads(raw or b"{}")
            ok = store.verify(str(body.get("username")), str(body.get("password")))
            self._send(200 if ok else 401, {"ok": ok})
        elif self.headers.get("Authorization") != f"Bearer {store.token}":
            self._send(401, {"message": "invalid or expired token"})
        else:
            query = {k: v[-1] for k, v in parse_qs(url.query).items()}
            self._send(*_route(store, method, url.path.rstrip("/"), query, raw))

    def _send(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        data = b"" if body is None else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)


def _route(
    store: Store, method: str, path: str, query: dict[str, str], raw: bytes
) -> tuple[int, Any, dict[str, str]]:
    body = json.loads(raw) if raw else {}
    parts = path.strip("/").split("/")
    with store.lock:
        if parts == ["users"] and method == "GET":
            return _listing(store, query)
        if parts == ["users"] and method == "POST":
            username = str(body.get("username") or "")
            if not username:
                return 422, {"message": "username is required"}, {}
            if any(u["username"].lower() == username.lower() for u in store.users.values()):
                return 409, {"message": f"username {username} is taken"}, {}
            new = {**body, "id": store.next_id}
            password = new.pop("password", None)
            store.users[store.next_id] = new
            if password:
                _set_hash(store, store.next_id, str(password))
            store.next_id += 1
            return 201, new, {"Location": f"/users/{new['id']}"}
        if len(parts) >= 2 and parts[0] == "users" and parts[1].isdigit():
            user_id = int(parts[1])
            user = store.users.get(user_id)
            if user is None:
                return 404, {"message": f"no user {user_id}"}, {}
            if parts[2:] == ["password"] and method == "POST":
                _set_hash(store, user_id, str(body.get("password")))
                return 204, None, {}
            if parts[2:] == [] and method == "GET":
                return 200, user, {}
            if parts[2:] == [] and method in ("PUT", "PATCH"):
                if "password" in body:
                    _set_hash(store, user_id, str(body.pop("password")))
                _merge(user, {k: v for k, v in body.items() if k != "id"})
                return 200, user, {}
            if parts[2:] == [] and method == "DELETE":
                del store.users[user_id]
                store.hashes.pop(user_id, None)
                return 204, None, {}
        return 404, {"message": f"no route {method} {path}"}, {}


def _merge(target: dict[str, Any], changes: dict[str, Any]) -> None:
    """A JSON merge patch (RFC 7396) but for null, which is stored as a value."""
    for name, value in changes.items():
        if isinstance(value, dict) and isinstance(target.get(name), dict):
            _merge(target[name], value)
        else:
            target[name] = value


def _listing(store: Store, query: dict[str, str]) -> tuple[int, Any, dict[str, str]]:
    """``?login=`` finds one username; else pages by ``page``/``per_page`` or ``cursor``."""
    users = sorted(store.users.values(), key=lambda u: u["id"])
    if "login" in query:
        found = [u for u in users if u["username"].lower() == query["login"].lower()]
        return 200, {"data": found, "next_cursor": None}, {}
    per_page = int(query.get("per_page", "50"))
    if "cursor" in query:
        start = int(query["cursor"])
    else:
        start = (int(query.get("page", "1")) - 1) * per_page
    chunk = users[start : start + per_page]
    more = start + per_page < len(users)
    headers = {"X-Total-Pages": str(max(1, -(-len(users) // per_page)))}
    if more:
        page = start // per_page + 2
        headers["Link"] = f'</users?page={page}&per_page={per_page}>; rel="next"'
    return 200, {"data": chunk, "next_cursor": str(start + per_page) if more else None}, headers


def _set_hash(store: Store, user_id: int, password: str) -> None:
    salt = secrets.token_hex(8)
    store.hashes[user_id] = f"{salt}${_hash(salt, password)}"


class Server(ThreadingHTTPServer):
    """The server, with its ``store`` of users and switches."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.store = Store()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


@contextmanager
def running() -> Iterator[Server]:
    """A server on a free loopback port, shut down afterwards."""
    server = Server()
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def measure_creates(count: int = 1000, delay: float = 0.05) -> float:
    """Seconds for ``count`` creates through ``RestPortal`` at its default concurrency,
    against this server answering each request after ``delay`` seconds."""
    from connectors.base import CreateAccount
    from tests.contract.portal_rest import portal_for, section

    with running() as server:
        portal = portal_for(section(server.url))
        try:
            portal.ensure_ready()
            server.store.delay = delay
            ops = [
                CreateAccount(
                    str(n), {"login": f"k{n}@example.com", "name": f"Firma {n}"}, "pending"
                )
                for n in range(count)
            ]
            started = time.perf_counter()
            outcomes = portal.apply(ops)
            elapsed = time.perf_counter() - started
        finally:
            portal.close()
    failed = [o for o in outcomes if not o.ok]
    if failed:
        message = f"{len(failed)} of {count} creates failed: {failed[0].error}"
        raise RuntimeError(message)
    return elapsed


if __name__ == "__main__":
    seconds = measure_creates()
    print(f"rest.creates count=1000 answer_ms=50 concurrency=4 seconds={seconds:.2f}")
