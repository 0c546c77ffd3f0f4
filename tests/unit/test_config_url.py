"""The configuration's URL parser is SQLAlchemy's: same accepted texts, parts and rendering."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from hypothesis import given, settings
from hypothesis import strategies as st

from syncd.config._url import DatabaseUrl, UrlError, parse_database_url, render

# Characters that matter to the grammar, plus a few ordinary and non-ASCII ones.
_PIECE = st.text(alphabet=":/@?&=#[]%+._-aZ09 ąé", max_size=12)
_SCHEME = st.sampled_from(["sqlite", "postgresql+psycopg", "mssql+pyodbc", "my-sql", "", "a b"])
_URLS = st.one_of(
    st.builds(lambda s, rest: f"{s}://{rest}", _SCHEME, st.lists(_PIECE, max_size=5).map("".join)),
    st.text(max_size=40),
)


def _sqlalchemys(text: str) -> DatabaseUrl | type[Exception]:
    try:
        url = sa.make_url(text)
    except sa.exc.ArgumentError:
        return UrlError
    except ValueError:  # a port that is not a number
        return ValueError
    query = {k: v if isinstance(v, str) else tuple(v) for k, v in url.query.items()}
    return DatabaseUrl(
        url.drivername, url.username, url.password, url.host, url.port, url.database, query
    )


def _ours(text: str) -> DatabaseUrl | type[Exception]:
    try:
        return parse_database_url(text)
    except UrlError:
        return UrlError
    except ValueError:
        return ValueError


@settings(max_examples=1000, deadline=None)
@given(_URLS)
def test_any_text_parses_as_sqlalchemy_parses_it(text: str) -> None:
    """Accepted or refused alike, with the same parts; rendered alike, password hidden or not."""
    ours = _ours(text)
    assert ours == _sqlalchemys(text)
    if isinstance(ours, DatabaseUrl):
        url = sa.make_url(text)
        assert render(ours) == url.render_as_string(hide_password=True)
        assert render(ours, hide_password=False) == url.render_as_string(hide_password=False)
        assert ours.backend == url.get_backend_name()


@pytest.mark.parametrize(
    "text",
    [
        "postgresql+psycopg://syncd:p%40ss@db.example.com:5432/state?sslmode=require",
        "mysql+pymysql://root@[::1]:3306/syncd?charset=utf8mb4&x=1&x=2",
        "mssql+pyodbc:///?odbc_connect=DRIVER%3D%7BODBC%7D%3BPWD%3Dsecret",
        "sqlite:////var/lib/syncd/state.db",
        "sqlite://",
        "postgresql://db:/x",
        "not a url",
    ],
)
def test_real_urls_parse_as_sqlalchemy_parses_them(text: str) -> None:
    """The URLs admins write (and two broken ones) give SQLAlchemy's answer."""
    assert _ours(text) == _sqlalchemys(text)
