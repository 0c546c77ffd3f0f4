"""Daily housekeeping: keeps the state store from growing forever (``retention`` config).

The state store keeps an audit row per action, a row per mail and a row per cycle. At a
cycle every five minutes that is 105,000 run rows a year, and the audit trail grows with
every change in the ERP. The daemon runs this once a day; each kind of row is deleted with
one statement, so it costs a few index range scans, not a walk over the table.
"""

from __future__ import annotations

from datetime import datetime

import structlog

from syncd.config import RetentionConfig
from syncd.store import StateStore

log = structlog.get_logger(__name__)


def housekeep(store: StateStore, retention: RetentionConfig, now: datetime) -> dict[str, int]:
    """Delete what is older than ``retention`` allows; returns (and logs) the counts."""
    deleted = store.purge(
        audit_before=now - retention.audit,
        mail_before=now - retention.mail,
        runs_before=now - retention.runs,
    )
    log.info("housekeeping.finished", **{f"deleted_{kind}": n for kind, n in deleted.items()})
    return deleted
