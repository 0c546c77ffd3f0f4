"""The one clock and the one run-id maker; everything that needs either takes it passed in.

Tests pass their own (a fixed or stepping clock, predictable run ids) to the cycle, the
daemon, the mailer and the stores, so no behaviour depends on when a test happens to run.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime

Clock = Callable[[], datetime]


def utcnow() -> datetime:
    """Now, timezone-aware, in UTC: every timestamp syncd stores or compares is UTC."""
    return datetime.now(UTC)


def new_run_id() -> str:
    """A short random id naming one cycle in logs, the runs table and the audit trail."""
    return uuid.uuid4().hex[:12]
