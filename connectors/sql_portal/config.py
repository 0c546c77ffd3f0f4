"""``portal.kind: sql``: the keys a portal with syncd's own SQL schema takes."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator

from syncd.config.base import DatabaseUrl, PortalSection, Secret


def _only_bcrypt(value: str) -> str:
    if value != "bcrypt":
        raise ValueError("must be bcrypt, the only password scheme syncd supports for now")
    return value


class SqlPortalConfig(PortalSection):
    """Spec section 5's ``b2b_account`` and ``b2b_contact`` in any SQLAlchemy database."""

    kind: Literal["sql"] = "sql"
    url: DatabaseUrl
    password: Secret = None  # merged into url on connect
    password_scheme: Annotated[str, AfterValidator(_only_bcrypt)] = "bcrypt"  # noqa: S105 - a name
