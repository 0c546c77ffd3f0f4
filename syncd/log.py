"""Logging, configured once: JSON lines when not on a terminal (journald), readable otherwise.

Every line of a cycle carries ``run_id``; lines about one record carry ``contractor`` and
``login`` (bound with structlog's context variables). Passwords never reach a log line:
nothing that holds one is ever passed to a logger.
"""

from __future__ import annotations

import logging
import sys
from typing import TextIO

import structlog


def configure(
    *, stream: TextIO | None = None, json: bool | None = None, level: str = "info"
) -> None:
    """Set up structlog for the process. ``json=None`` picks JSON unless ``stream`` is a TTY."""
    out = stream if stream is not None else sys.stderr
    if json is None:
        json = not out.isatty()
    renderer: structlog.types.Processor = (
        structlog.processors.JSONRenderer(ensure_ascii=False)
        if json
        else structlog.dev.ConsoleRenderer(colors=out.isatty())
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(
            logging.getLevelNamesMapping()[level.upper()]
        ),
        logger_factory=structlog.PrintLoggerFactory(out),
        cache_logger_on_first_use=False,
    )
