"""An existing portal's own user table (``portal.kind: sql`` with ``table:`` and ``columns:``).

For portals that cannot adopt spec section 5's schema, e.g. a PHP shop's ``users`` with a
``$2y$`` bcrypt column, a status column with its own values and NOT NULL columns of its
own. syncd never creates or alters such a table: ``ensure_ready`` reflects it and checks
that the table and every mapped column exist and that every other NOT NULL column without
a default gets a value from ``portal.constants``; anything missing is a ``ConfigError``
naming the YAML key. Contacts are not stored (``contacts`` is not in ``stored_fields``);
logins are matched case-insensitively (``lower()`` on both sides), since a shop's own
accounts may spell them in any case.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine.interfaces import ReflectedColumn

from connectors._sql import describe
from connectors.sql_portal._base import SqlAccounts
from connectors.sql_portal._layout import Layout
from connectors.sql_portal.config import SqlPortalConfig
from connectors.sql_portal.schema import STATUSES
from syncd.clock import utcnow
from syncd.config.base import secret_value
from syncd.errors import ConfigError
from syncd.model import SYNCED_FIELDS


class MappedSqlPortal(SqlAccounts):
    """``connectors.base.Portal`` on an existing table whose columns the YAML maps."""

    def __init__(
        self,
        url: str,
        *,
        table: str,
        columns: Mapping[str, str],
        status_values: Mapping[str, Any] | None = None,
        constants: Mapping[str, Any] | None = None,
        schema: str | None = None,
        **kw: Any,
    ) -> None:
        super().__init__(url, **kw)
        self._table_name = table
        self._schema = schema
        self._columns = dict(columns)
        self._status_values = dict(status_values or {s: s for s in STATUSES})
        self._constants = dict(constants or {})
        self._ready: Layout | None = None
        # The synced fields mapped in portal.columns (known without a connection).
        self.stored_fields = frozenset(self._columns) & frozenset(SYNCED_FIELDS)

    @classmethod
    def from_config(
        cls, config: SqlPortalConfig, *, clock: Callable[[], datetime] = utcnow
    ) -> MappedSqlPortal:
        """The portal that ``portal.kind: sql`` with ``portal.table`` describes."""
        assert config.table is not None
        return cls(
            config.url,
            table=config.table,
            columns=config.columns,
            status_values=config.status_values or None,
            constants=config.constants,
            schema=config.db_schema,
            password=secret_value(config.password),
            clock=clock,
            password_scheme=config.password_scheme,
            password_cost=config.password_cost,
        )

    def ensure_ready(self) -> None:
        """Check the table and its columns and read their types; never changes the table.

        Raises ``ConfigError`` naming the YAML key of each missing table or column, and
        ``PortalUnavailable`` when the database cannot be reached.
        """
        with self._translated(), self._engine.connect() as conn:
            problems = self._problems(sa.inspect(conn))
            if problems:
                raise ConfigError(problems)
            metadata = sa.MetaData(schema=self._schema)
            used = {*self._columns.values(), *self._constants}
            table = sa.Table(
                self._table_name, metadata, autoload_with=conn, include_columns=sorted(used)
            )
        if self._ready is not None and _shape(self._ready.table) == _shape(table):
            # The same table as last cycle: keep its Table. SQLAlchemy caches compiled
            # statements by the Table's identity, so a new one each cycle would compile
            # every statement again and leave the old entries in the engine's cache.
            return
        self._ready = Layout(
            table,
            self._columns,
            status_values=self._status_values,
            constants=self._constants,
            fold_case=True,
        )

    def _layout(self) -> Layout:
        if self._ready is None:
            self.ensure_ready()
        assert self._ready is not None
        return self._ready

    def _problems(self, inspector: sa.Inspector) -> list[str]:
        """What the YAML names that the table lacks, one line per problem."""
        name = self._table_name if self._schema is None else f"{self._schema}.{self._table_name}"
        if not inspector.has_table(self._table_name, schema=self._schema):
            where = describe(self._url)
            return [
                f"portal.table: table {name} does not exist in {where}; syncd never creates "
                f"an existing portal's table: check the name (and portal.schema)"
            ]
        found = inspector.get_columns(self._table_name, schema=self._schema)
        present = {column["name"] for column in found}
        listing = ", ".join(sorted(present))
        problems = []
        for key, column in self._columns.items():
            if column not in present:
                problems.append(
                    f"portal.columns.{key}: column {name}.{column} does not exist; "
                    f"the table has {listing}"
                )
        for column in self._constants:
            if column not in present:
                problems.append(
                    f"portal.constants.{column}: column {name}.{column} does not exist; "
                    f"the table has {listing}"
                )
        used = {*self._columns.values(), *self._constants}
        for info in found:
            if info["name"] not in used and _needs_value(info):
                problems.append(
                    f"portal.constants: column {name}.{info['name']} is NOT NULL without a "
                    f"default, so every create would fail: map it in portal.columns or give "
                    f"it a value in portal.constants"
                )
        return problems


def _shape(table: sa.Table) -> tuple[tuple[str, str, bool, bool], ...]:
    """What syncd's statements and checks read of a reflected table: each column's name,
    type (with its length), nullability and key."""
    return tuple((c.name, repr(c.type), bool(c.nullable), c.primary_key) for c in table.columns)


def _needs_value(info: ReflectedColumn) -> bool:
    """Whether an insert that leaves this column out fails: NOT NULL, nothing fills it."""
    if info["nullable"] or info.get("default") is not None:
        return False
    generated = info.get("computed") or info.get("identity")
    return not generated and info.get("autoincrement") is not True
