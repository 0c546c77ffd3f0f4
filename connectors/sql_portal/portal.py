"""The portal connector for a B2B portal whose accounts live in SQL tables (``portal.kind: sql``).

``SqlPortal`` holds spec section 5's ``b2b_account`` and ``b2b_contact``, which
``ensure_ready`` creates with syncd's own migrations when missing. With ``portal.table``
the same kind writes an existing table instead: ``from_config`` then returns a
``MappedSqlPortal`` (``sql_portal/mapped.py``). Both read and write through ``SqlAccounts``.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from connectors.sql_portal._base import LOGINS_PER_QUERY, ROWS_PER_FETCH, SqlAccounts
from connectors.sql_portal._layout import OWN_LAYOUT, Layout
from connectors.sql_portal._migrate import migrate
from connectors.sql_portal.config import SqlPortalConfig
from syncd.clock import utcnow
from syncd.config.base import secret_value

__all__ = ["LOGINS_PER_QUERY", "ROWS_PER_FETCH", "SqlPortal"]


class SqlPortal(SqlAccounts):
    """``connectors.base.Portal`` on syncd's own schema: SQLite, PostgreSQL, MariaDB, SQL Server.

    Stores every synced field, contacts included.
    """

    stored_fields = OWN_LAYOUT.stored_fields

    @classmethod
    def from_config(
        cls, config: SqlPortalConfig, *, clock: Callable[[], datetime] = utcnow
    ) -> SqlAccounts:
        """The portal that ``portal.kind: sql`` describes: syncd's schema, or ``table``."""
        if config.table is not None:
            from connectors.sql_portal.mapped import MappedSqlPortal

            return MappedSqlPortal.from_config(config, clock=clock)
        return cls(
            config.url,
            password=secret_value(config.password),
            clock=clock,
            password_scheme=config.password_scheme,
            password_cost=config.password_cost,
        )

    def ensure_ready(self) -> None:
        """Connect and create or upgrade the portal tables. Raises ``PortalUnavailable``."""
        with self._translated():
            migrate(self._engine)

    def _layout(self) -> Layout:
        return OWN_LAYOUT
