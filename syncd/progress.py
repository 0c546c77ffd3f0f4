"""How long work reports its progress: a small interface the cycle and the mailer call.

The core calls ``Progress`` and knows nothing of terminals; ``NO_PROGRESS`` (the default
everywhere) does nothing, so the daemon under systemd and every ``--json`` run print only
their log lines. ``for_terminal`` picks what ``syncd sync`` shows: bars drawn by ``rich``
(``syncd._progress_rich``, imported only then) when both stdout and stderr are a terminal
and no JSON was asked for, else ``NO_PROGRESS``.

A phase is one of ``PHASES``: ``read`` (ERP rows read; the total is the last good read's
count, an estimate), ``apply`` (plan items written) and ``mail`` (mails settled).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Protocol, TextIO

PHASES = ("read", "apply", "mail")


class Progress(Protocol):
    """Receives the counts of a long run's phases; never raises, never blocks for long."""

    def start(self, phase: str, total: int | None) -> None:
        """Phase ``phase`` begins; ``total`` is how many items are expected (None: unknown)."""

    def advance(self, phase: str, count: int = 1) -> None:
        """``count`` more items of ``phase`` are done."""

    def finish(self, phase: str) -> None:
        """Phase ``phase`` is over (its bar shows the final count)."""


class NoProgress:
    """Reports nothing: the daemon, tests, ``--json`` and any output that is no terminal."""

    def start(self, phase: str, total: int | None) -> None:
        return None

    def advance(self, phase: str, count: int = 1) -> None:
        return None

    def finish(self, phase: str) -> None:
        return None


NO_PROGRESS: Progress = NoProgress()


def interactive(stdout: TextIO, stderr: TextIO) -> bool:
    """Whether a person watches: stdout and stderr both a terminal, and not a dumb one.

    systemd, cron, pipes and files are no terminal, so they get log lines only."""
    if os.environ.get("TERM") == "dumb":
        return False
    return _isatty(stdout) and _isatty(stderr)


def _isatty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # a closed or fake stream is no terminal
        return False


@contextmanager
def for_terminal(*, as_json: bool, stdout: TextIO | None = None) -> Iterator[Progress]:
    """The progress display ``syncd sync`` uses, live for the duration of the block.

    Bars go to stderr, where the log lines go too (rich prints those above the bars);
    stdout keeps only the command's result. ``as_json`` always means no bars."""
    out = stdout if stdout is not None else sys.stdout
    if as_json or not interactive(out, sys.stderr):
        yield NO_PROGRESS
        return
    from syncd._progress_rich import RichProgress

    with RichProgress.on_stderr() as progress:
        yield progress
