"""The console's routes: one small handler per page or action, on Starlette.

Each handler checks who is asking (``_person``), what their role allows, and for a POST the
CSRF token first; then it hands the work to ``Console`` on a worker thread (the
connections are synchronous) and renders a template or redirects back with a notice
(POST, redirect, GET: a reload never repeats an action). A contractor a salesperson may
not see is a 404 whatever the method, so a forged request learns nothing and changes
nothing.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote

import structlog
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from syncd.config.base import secret_value
from syncd.errors import SyncdError, UnavailableError
from syncd.support_cli import MAIL_STATUSES
from syncd.web import pages
from syncd.web.console import Busy, Console, NotFound
from syncd.web.guard import CSRF_FIELD, SecurityHeaders, csrf_ok, new_session
from syncd.web.notices import Notice
from syncd.web.people import LoginLimiter, People, Person, limiter_keys

log = structlog.get_logger(__name__)
T = TypeVar("T")
SESSION_HOURS = 8  # a working day; then sign in again
STATIC = Path(__file__).parent / "static"


class App:
    """The routes, bound to one ``Console`` and one set of people."""

    def __init__(self, console: Console, *, limiter: LoginLimiter | None = None) -> None:
        config = console.config
        self.console = console
        self.people = People(config.web, default_language=config.mail.language.value)
        self.trusted_header = config.web.trusted_header
        self.limiter = limiter or LoginLimiter()

    # -- plumbing ------------------------------------------------------------------------

    def _person(self, request: Request) -> Person | None:
        if self.trusted_header:
            who = request.headers.get(self.trusted_header)
            return self.people.person(who) if who else None
        who = request.session.get("who")
        if not isinstance(who, str) or request.session.get("stamp") != self.people.stamp(who):
            return None
        return self.people.person(who)

    def _signed_in(self, request: Request) -> Person:
        person = self._person(request)
        if person is None:
            target = quote(request.url.path, safe="/")
            raise HTTPException(303, headers={"Location": f"/login?next={target}"})
        return person

    async def _form(self, request: Request) -> dict[str, str]:
        """The POSTed form, once its CSRF token is checked (403 otherwise)."""
        form = await request.form()
        values = {k: v for k, v in form.items() if isinstance(v, str)}
        if not csrf_ok(request.session, values.get(CSRF_FIELD)):
            raise HTTPException(403, "the form's security token does not match")
        return values

    async def _work(self, call: Callable[[], T]) -> T:
        """Run ``call`` with the console's connections, on a worker thread."""

        def locked() -> T:
            with self.console.use():
                return call()

        return await run_in_threadpool(locked)

    def _render(
        self, request: Request, person: Person | None, name: str, **context: Any
    ) -> Response:
        notices = request.session.pop("notices", [])
        chosen = request.session.get("lang")
        language = chosen or (person.language if person else self.people.default_language)
        timezone = person.timezone if person else self.console.config.web.timezone
        return pages.render(
            request,
            name,
            person=person,
            language=language,
            timezone=timezone,
            notices=notices,
            trusted=bool(self.trusted_header),
            **context,
        )

    @staticmethod
    def _back(request: Request, url: str, *notices: Notice) -> RedirectResponse:
        request.session.setdefault("notices", []).extend(n.as_json() for n in notices)
        return RedirectResponse(url, status_code=303)

    @staticmethod
    def _only(person: Person, *, admin: bool) -> None:
        if person.is_salesperson:
            raise NotFound  # they are not told the page exists
        if admin and not person.is_admin:
            raise HTTPException(403, "only an admin may do this")

    # -- signing in ----------------------------------------------------------------------

    async def login_page(self, request: Request) -> Response:
        if self._person(request) is not None:
            return RedirectResponse("/", status_code=303)
        return self._render(request, None, "login.html", next=_local(request.query_params))

    async def login(self, request: Request) -> Response:
        form = await self._form(request)
        if self.trusted_header:  # people sign in at the proxy; passwords are not taken here
            return self._render(request, None, "login.html", next="/", status_code=403)
        who, password = form.get("who", ""), form.get("password", "")
        keys = limiter_keys(request.client.host if request.client else "?", who)
        wait = self.limiter.wait(keys)
        if wait:
            log.warning("web.login_limited", wait_s=wait)
            return self._render(
                request, None, "login.html", next=_local(form), status_code=429, wait=wait
            )
        person = await run_in_threadpool(self.people.authenticate, who, password)
        if person is None:
            self.limiter.failed(keys)
            known = self.people.person(who)  # a password typed into the name field stays out
            log.info("web.login_failed", who=known.name if known else "(unknown name)")
            return self._render(
                request, None, "login.html", next=_local(form), status_code=401, failed=True
            )
        self.limiter.succeeded(keys[1])
        new_session(request.session, who=person.name, stamp=self.people.stamp(person.name))
        log.info("web.login", who=person.name, role=person.role.value)
        return RedirectResponse(_local(form), status_code=303)

    async def logout(self, request: Request) -> Response:
        await self._form(request)
        new_session(request.session)
        return RedirectResponse("/login", status_code=303)

    async def language(self, request: Request) -> Response:
        form = await self._form(request)
        if form.get("lang") in pages.LANGUAGES:
            request.session["lang"] = form["lang"]
        return RedirectResponse(_local(form), status_code=303)

    # -- pages ---------------------------------------------------------------------------

    async def dashboard(self, request: Request) -> Response:
        person = self._signed_in(request)
        if person.is_salesperson:
            return RedirectResponse("/contractors?q=*", status_code=303)
        doc = await self._work(self.console.dashboard)
        return self._render(request, person, "dashboard.html", status=doc)

    async def directory(self, request: Request) -> Response:
        person = self._signed_in(request)
        query = request.query_params.get("q", "").strip()
        found = await self._work(lambda: self.console.directory(person, query)) if query else None
        name = "_results.html" if request.query_params.get("partial") else "directory.html"
        return self._render(request, person, name, query=query, found=found)

    async def card(self, request: Request) -> Response:
        person = self._signed_in(request)
        ident = request.path_params["ident"]
        doc = await self._work(lambda: self.console.card(person, ident))
        return self._render(request, person, "card.html", doc=doc)

    async def mail(self, request: Request) -> Response:
        person = self._signed_in(request)
        self._only(person, admin=False)
        state = request.query_params.get("status") or None
        mails = await self._work(lambda: self.console.mail(state))
        return self._render(
            request, person, "mail.html", mails=mails, state=state, statuses=MAIL_STATUSES
        )

    async def removals_page(self, request: Request) -> Response:
        person = self._signed_in(request)
        self._only(person, admin=True)
        held, digest = await self._work(self.console.held_removals)
        return self._render(request, person, "removals.html", held=held, digest=digest)

    # -- actions -------------------------------------------------------------------------

    async def act(self, request: Request) -> Response:
        """A support action on one contractor: the same call, and so the same audit
        record, as ``syncd accounts ACTION K --actor NAME``."""
        form = await self._form(request)
        person = self._signed_in(request)
        ident, action = request.path_params["ident"], request.path_params["action"]
        try:
            notice = await self._work(lambda: self.console.act(person, ident, action, form))
        except SyncdError as error:  # said for the person, and never holding a password
            notice = Notice("error", "Not done.", detail=str(error))
        log.info("web.action", actor=person.name, action=action, contractor=ident, kind=notice.kind)
        return self._back(request, f"/contractors/{quote(ident, safe='')}", notice)

    async def sync_now(self, request: Request) -> Response:
        await self._form(request)
        person = self._signed_in(request)
        self._only(person, admin=True)
        notice = await self._work(lambda: self.console.sync_now(person))
        log.info("web.sync_now", actor=person.name, kind=notice.kind)
        return self._back(request, "/", notice)

    async def removals(self, request: Request) -> Response:
        form = await self._form(request)
        person = self._signed_in(request)
        self._only(person, admin=True)
        digest = form.get("digest", "")
        notice = await self._work(lambda: self.console.let_removals_through(person, digest))
        log.info("web.removals", actor=person.name, kind=notice.kind)
        return self._back(request, "/", notice)

    # -- errors --------------------------------------------------------------------------

    async def not_found(self, request: Request, error: Exception) -> Response:
        person = self._person(request)
        return self._render(request, person, "error.html", status_code=404, code=404)

    async def http_error(self, request: Request, error: Exception) -> Response:
        assert isinstance(error, HTTPException)
        if error.status_code == 404:
            return await self.not_found(request, error)
        if error.headers and "Location" in error.headers:
            return RedirectResponse(error.headers["Location"], status_code=error.status_code)
        person = self._person(request)
        return self._render(
            request, person, "error.html", status_code=error.status_code,
            code=error.status_code, detail=error.detail,
        )  # fmt: skip

    async def busy(self, request: Request, error: Exception) -> Response:
        """503: the connections are busy, or the state store, ERP or portal is down."""
        person = self._person(request)
        detail = str(error) if isinstance(error, UnavailableError) else None
        return self._render(request, person, "error.html", status_code=503, code=503, detail=detail)

    def routes(self) -> list[Route | Mount]:
        return [
            Route("/", self.dashboard),
            Route("/login", self.login_page),
            Route("/login", self.login, methods=["POST"]),
            Route("/logout", self.logout, methods=["POST"]),
            Route("/language", self.language, methods=["POST"]),
            Route("/contractors", self.directory),
            Route("/contractors/{ident}", self.card),
            Route("/contractors/{ident}/{action}", self.act, methods=["POST"]),
            Route("/mail", self.mail),
            Route("/sync", self.sync_now, methods=["POST"]),
            Route("/removals", self.removals_page),
            Route("/removals", self.removals, methods=["POST"]),
            Mount("/static", StaticFiles(directory=STATIC), name="static"),
        ]


def _local(values: Any) -> str:
    """The ``next`` page after a form: a path on this site only, never another site."""
    target = str(values.get("next") or "/")
    # "//host" and "/\\host" are other sites to a browser; only a plain path stays here.
    return target if target[:1] == "/" and target[1:2] not in ("/", "\\") else "/"


def create_app(console: Console, *, limiter: LoginLimiter | None = None) -> Starlette:
    """The ASGI application of the console."""
    web = console.config.web
    secret = secret_value(web.session_secret) or secrets.token_urlsafe(32)
    app = App(console, limiter=limiter)
    return Starlette(
        routes=app.routes(),
        middleware=[
            Middleware(SecurityHeaders),
            Middleware(
                SessionMiddleware,
                secret_key=secret,
                session_cookie="syncd_console",
                max_age=SESSION_HOURS * 3600,
                same_site="lax",
                https_only=web.secure_cookies,
            ),
        ],
        exception_handlers={
            NotFound: app.not_found,
            Busy: app.busy,
            UnavailableError: app.busy,
            HTTPException: app.http_error,
        },
    )
