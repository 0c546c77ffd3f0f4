"""Logging, configured once: JSON lines when not on a terminal (journald), readable otherwise.

Every line of a cycle carries ``run_id``; lines about one record carry ``contractor`` and
``login`` (bound with structlog's context variables). Passwords never reach a log line:
nothing that holds one is ever passed to a logger.

structlog is set up the moment it is first imported, not before: with ``rich`` installed,
importing structlog costs as much as importing SQLAlchemy, and ``syncd status``,
``check-config`` or ``--help`` never log a line. Whatever imports structlog later (a
cycle, the mailer) finds it configured before its first line is written.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import importlib.util
import logging
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from types import ModuleType
from typing import TextIO


@dataclass(frozen=True, slots=True)
class _Settings:
    out: TextIO
    json: bool
    level: str


def configure(
    *, stream: TextIO | None = None, json: bool | None = None, level: str = "info"
) -> None:
    """Set up structlog for the process. ``json=None`` picks JSON unless ``stream`` is a TTY."""
    out = stream if stream is not None else sys.stderr
    settings = _Settings(out, not out.isatty() if json is None else json, level)
    for finder in [f for f in sys.meta_path if isinstance(f, _ConfigureOnImport)]:
        sys.meta_path.remove(finder)  # the newest set-up wins, as structlog.configure's does
    if "structlog" in sys.modules:
        _apply(settings)
    else:
        sys.meta_path.insert(0, _ConfigureOnImport(settings))


def _apply(settings: _Settings) -> None:
    import structlog

    renderer: structlog.types.Processor = (
        structlog.processors.JSONRenderer(ensure_ascii=False)
        if settings.json
        else structlog.dev.ConsoleRenderer(colors=settings.out.isatty())
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
            logging.getLevelNamesMapping()[settings.level.upper()]
        ),
        logger_factory=structlog.PrintLoggerFactory(settings.out),
        cache_logger_on_first_use=False,
    )


class _ConfigureOnImport(importlib.abc.MetaPathFinder):
    """Finds ``structlog`` with the ordinary finders and configures it once it is loaded."""

    def __init__(self, settings: _Settings) -> None:
        self.settings = settings

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname != "structlog":
            return None
        sys.meta_path.remove(self)  # once only, and so that the lookup below skips it
        spec = importlib.util.find_spec(fullname)
        if spec is not None and spec.loader is not None:
            spec.loader = _ThenConfigure(spec.loader, self.settings)
        return spec


class _ThenConfigure(importlib.abc.Loader):
    """structlog's own loader, followed by ``_apply`` once the package has run."""

    def __init__(self, loader: importlib.abc.Loader, settings: _Settings) -> None:
        self.loader = loader
        self.settings = settings

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType | None:
        return self.loader.create_module(spec)

    def exec_module(self, module: ModuleType) -> None:
        self.loader.exec_module(module)
        _apply(self.settings)
