"""The console's defences that every page shares: CSRF tokens and the security headers.

Sessions themselves are Starlette's ``SessionMiddleware`` (a cookie signed with
itsdangerous, ``HttpOnly``, ``SameSite=Lax``, ``Secure`` with ``web.secure_cookies``); it
holds only the person's name, a stamp of their hash, the CSRF token, the language and the
next page's notices, never a password or a hash.

Every form carries the session's CSRF token; a POST whose token is missing or different is
refused with 403 before anything is read or changed. ``SameSite=Lax`` already keeps other
sites' forms from carrying the cookie; the token also stops a form forged on a page of the
same site, or a request from a tool that has the cookie but not the page.
"""

from __future__ import annotations

import hmac
import secrets
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
HEADERS = (
    (b"content-security-policy", CSP.encode()),
    (b"x-frame-options", b"DENY"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"permissions-policy", b"camera=(), microphone=(), geolocation=()"),
    # Customers' data: no shared cache keeps it, the browser's back button refetches it.
    (b"cache-control", b"no-store"),
)
CSRF_FIELD = "csrf"


class SecurityHeaders:
    """ASGI middleware adding ``HEADERS`` to every response, errors included."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                present = {name for name, _ in message.get("headers", [])}
                extra = [(name, value) for name, value in HEADERS if name not in present]
                message["headers"] = [*message.get("headers", []), *extra]
            await send(message)

        await self.app(scope, receive, with_headers)


def csrf_token(session: dict[str, Any]) -> str:
    """The session's CSRF token, made on first use."""
    token = session.get(CSRF_FIELD)
    if not isinstance(token, str):
        token = secrets.token_urlsafe(32)
        session[CSRF_FIELD] = token
    return token


def csrf_ok(session: dict[str, Any], submitted: object) -> bool:
    """Whether a form's token is the session's (compared in constant time)."""
    expected = session.get(CSRF_FIELD)
    if not isinstance(expected, str) or not isinstance(submitted, str):
        return False
    return hmac.compare_digest(expected.encode(), submitted.encode())


def new_session(session: dict[str, Any], **values: Any) -> None:
    """Start over at sign-in or sign-out: a token seen before is worth nothing after."""
    session.clear()
    session.update(values)
    session[CSRF_FIELD] = secrets.token_urlsafe(32)
