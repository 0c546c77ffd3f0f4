"""Renders the console's pages: one Jinja2 environment, autoescaped, templates in the package.

Every page gets the same helpers: ``_`` (the person's language, ``syncd.web.i18n``),
``when`` (a time in the person's time zone), ``csrf`` (the token every form carries) and
the notices left by the last action. Templates hold no script: the only JavaScript is
``static/search.js``, loaded from the site itself as the CSP requires.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jinja2
from starlette.requests import Request
from starlette.responses import HTMLResponse

from syncd.web.guard import CSRF_FIELD, csrf_token
from syncd.web.i18n import LANGUAGES, formatter, translator

__all__ = ["LANGUAGES", "render"]

_ENV = jinja2.Environment(
    loader=jinja2.FileSystemLoader(Path(__file__).parent / "templates"),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)


def render(
    request: Request,
    name: str,
    *,
    person: Any,
    language: str,
    timezone: str,
    notices: list[dict[str, Any]],
    status_code: int = 200,
    **context: Any,
) -> HTMLResponse:
    """The page ``name`` for ``person`` (None on the sign-in page) as an HTML response."""
    gettext = translator(language)
    shown = [
        {
            "kind": notice["kind"],
            "text": gettext(notice["text"]).format(
                **{k: gettext(v) if isinstance(v, str) else v for k, v in notice["values"].items()}
            ),
            "detail": notice.get("detail"),
        }
        for notice in notices
    ]
    html = _ENV.get_template(name).render(
        _=gettext,
        when=formatter(timezone),
        csrf=csrf_token(request.session),
        csrf_field=CSRF_FIELD,
        person=person,
        language=language,
        languages=LANGUAGES,
        timezone=timezone,
        path=request.url.path,
        notices=shown,
        **context,
    )
    return HTMLResponse(html, status_code=status_code)
