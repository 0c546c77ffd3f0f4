"""``source.kind: subiekt_gt``: the keys a Subiekt GT source takes."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from syncd.config.base import SqlSourceSection, Text


class SubiektGtConfig(SqlSourceSection):
    """Subiekt GT: every table name is fixed by InsERT, so only the database and the
    feature are configured (``schema`` when GT's tables are not in the login's default).

    GT has no column for a contact person's roles, so each names a bit column of
    ``kh_Pracownik`` (null: nobody has the role). By default GT's main contact person
    (``pk_Podstaw``) is the one authorised to receive mail.
    """

    kind: Literal["subiekt_gt"] = "subiekt_gt"
    feature: Text
    # ``schema`` would shadow pydantic's BaseModel.schema; the YAML key is still ``schema``.
    db_schema: Text | None = Field(default=None, alias="schema")
    contact_receives_mail: Text | None = "pk_Podstaw"
    contact_represents: Text | None = None
