"""What the daemon's jobs found down right now: said once in the log, and kept for /healthz.

A daemon retries an outage every interval; logging the same error every 2 seconds (or every
5 minutes for a night) buries the one line that matters. So the first failure of a service
is an error line (``cycle.unavailable``, ``mail.unavailable``), the repeats are debug lines
(``*.still_unavailable``, invisible at the default level) and the return is one info line
(``*.recovered``, with how long it lasted). While anything is down, /healthz says so.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass

import structlog
from apscheduler.events import (  # type: ignore[import-untyped]
    EVENT_JOB_ERROR,
    EVENT_JOB_EXECUTED,
    EVENT_JOB_MAX_INSTANCES,
    JobEvent,
)

log = structlog.get_logger(__name__)

OVERRUN = "maximum number of running instances reached"


@dataclass(slots=True)
class _Outage:
    error: str
    since: float
    repeats: int = 0


class Outages:
    """The services found down, by name (``cycle``: the ERP, the portal or the state store
    a cycle needs; ``mail``: the SMTP server). Thread-safe: /healthz reads it."""

    def __init__(self) -> None:
        self._down: dict[str, _Outage] = {}
        self._lock = threading.Lock()

    def failed(self, service: str, error: str) -> None:
        """Another failure of ``service``: an error line the first time, debug after."""
        with self._lock:
            outage = self._down.get(service)
            if outage is None:
                self._down[service] = _Outage(error, time.monotonic())
            else:
                outage.error, outage.repeats = error, outage.repeats + 1
        if outage is None:
            log.error(f"{service}.unavailable", error=error)
        else:
            log.debug(f"{service}.still_unavailable", error=error, repeats=outage.repeats)

    def recovered(self, service: str) -> None:
        """``service`` worked again: one info line, if it was down."""
        with self._lock:
            outage = self._down.pop(service, None)
        if outage is not None:
            log.info(
                f"{service}.recovered",
                was=outage.error,
                retries=outage.repeats,
                down_s=round(time.monotonic() - outage.since, 1),
            )

    def describe(self) -> str | None:
        """What is down, for /healthz; None when nothing is."""
        with self._lock:
            down = sorted(self._down.items())
        if not down:
            return None
        return "; ".join(f"{service} unavailable: {outage.error}" for service, outage in down)


class Overruns:
    """An APScheduler listener: a job still running at its next run time (a locked state
    store, a slow server) is said once, ``job.overrun``, and ``job.caught_up`` when it ends;
    APScheduler's own warning would come at every tick in between (``OVERRUN`` filters it)."""

    mask = EVENT_JOB_MAX_INSTANCES | EVENT_JOB_EXECUTED | EVENT_JOB_ERROR

    def __init__(self) -> None:
        self._late: set[str] = set()
        self._lock = threading.Lock()

    def __call__(self, event: JobEvent) -> None:
        with self._lock:
            first = event.job_id not in self._late
            if event.code == EVENT_JOB_MAX_INSTANCES:
                self._late.add(event.job_id)
            else:
                self._late.discard(event.job_id)
        if event.code == EVENT_JOB_MAX_INSTANCES and first:
            detail = "still running at its next run time; the runs until it ends are skipped"
            log.warning("job.overrun", job=event.job_id, detail=detail)
        elif event.code != EVENT_JOB_MAX_INSTANCES and not first:
            log.info("job.caught_up", job=event.job_id)


def not_an_overrun(record: logging.LogRecord) -> bool:
    """A logging filter: drops APScheduler's per-tick "skipped" warning (``Overruns``)."""
    return OVERRUN not in record.getMessage()
