"""Progress bars on a terminal, drawn by ``rich`` (private to ``syncd.progress``).

``rich`` because it is maintained, draws several bars at once (one per phase), estimates
the time left from the rate so far, and prints other output above a live display without
tearing it; ``tqdm`` would need a second library for the log lines. Imported only when a
person watches a terminal, so ``syncd --help`` and the daemon never load it.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager

import structlog
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

LABELS = {"read": "read ERP", "apply": "apply", "mail": "send mail"}


class RichProgress:
    """One bar per phase: its label, the bar, done/total, time so far and time left."""

    def __init__(self, bars: Progress) -> None:
        self._bars = bars
        self._tasks: dict[str, TaskID] = {}

    @classmethod
    @contextmanager
    def on_stderr(cls) -> Iterator[RichProgress]:
        """Bars on stderr for the block; the log lines printed meanwhile go above them."""
        console = Console(stderr=True)
        bars = Progress(
            TextColumn("{task.description:<10}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn("left"),
            TimeRemainingColumn(),
            console=console,
            redirect_stdout=False,
            redirect_stderr=True,
        )
        saved = structlog.get_config()["logger_factory"]
        with bars:
            # structlog holds the stream it was given: point it at rich's stand-in for
            # stderr, which prints each log line above the bars instead of through them.
            structlog.configure(logger_factory=structlog.PrintLoggerFactory(sys.stderr))
            try:
                yield cls(bars)
            finally:
                structlog.configure(logger_factory=saved)

    def start(self, phase: str, total: int | None) -> None:
        label = LABELS.get(phase, phase)
        if phase in self._tasks:
            self._bars.reset(self._tasks[phase], total=total, description=label)
        else:
            self._tasks[phase] = self._bars.add_task(label, total=total)

    def advance(self, phase: str, count: int = 1) -> None:
        task = self._tasks.get(phase)
        if task is not None:
            self._bars.advance(task, count)

    def finish(self, phase: str) -> None:
        task = self._tasks.get(phase)
        if task is None:
            return
        done = next(t.completed for t in self._bars.tasks if t.id == task)
        self._bars.update(task, total=done, completed=done)
        self._bars.stop_task(task)
