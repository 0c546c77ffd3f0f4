"""The support console (spec section 8): ``syncd web``, or ``syncd run`` with ``web.listen``.

Server-rendered pages for support and sales staff over the same support actions as the
command line (``syncd.accounts.Support``), the same ``explain`` and ``status`` documents
and the same cycle. The modules:

    cli.py       ``syncd web`` and ``syncd web hash-password`` (argparse only: cheap to import)
    people.py    who signs in: users from ``web.users``, argon2 hashes, the login rate limit
    guard.py     sessions, CSRF tokens and the security headers
    console.py   what the pages show and do, on one set of open connections
    notices.py   the one-line outcome of an action or a cycle, shown on the next page
    app.py       the Starlette routes: one small handler per page or action
    pages.py     the Jinja2 environment and what every template is given
    i18n.py      Polish and English, dates in the person's time zone
    chart.py     the dashboard's SVG chart of recent cycles (pure geometry)
    server.py    uvicorn, in the foreground (``syncd web``) or on a thread (``syncd run``)

Nothing here is imported by ``syncd --help``.
"""
