"""sd_notify: tells systemd (``Type=notify``) that syncd is ready, how it is, and that it lives.

The protocol is one datagram of ``KEY=value`` lines sent to the AF_UNIX socket named by
``$NOTIFY_SOCKET`` (a leading ``@`` means the abstract namespace). Twenty lines of standard
library beat a dependency; without ``$NOTIFY_SOCKET`` (a terminal, a test) every call is a
no-op, so the daemon needs no "am I under systemd?" branches.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Mapping
from datetime import timedelta

import structlog

log = structlog.get_logger(__name__)


class Notifier:
    """Sends sd_notify messages; silent when ``NOTIFY_SOCKET`` is not set."""

    def __init__(self, environ: Mapping[str, str] = os.environ) -> None:
        address = environ.get("NOTIFY_SOCKET", "")
        if address.startswith("@"):
            address = "\0" + address[1:]
        self._address = address or None
        self._watchdog = _watchdog_interval(environ)

    @property
    def watchdog_interval(self) -> timedelta | None:
        """How often systemd wants WATCHDOG=1 (half of ``WatchdogSec=``), or None if never."""
        return self._watchdog

    def ready(self, status: str) -> None:
        """The service is up: systemd's ``start`` returns and dependants may start."""
        self.send(READY="1", STATUS=status)

    def status(self, text: str) -> None:
        """One line shown by ``systemctl status syncd``."""
        self.send(STATUS=text)

    def watchdog(self) -> None:
        """I am alive; without this within ``WatchdogSec=``, systemd restarts the service."""
        self.send(WATCHDOG="1")

    def stopping(self) -> None:
        """Shutdown has begun (SIGTERM): systemd shows "deactivating" instead of a failure."""
        self.send(STOPPING="1", STATUS="stopping: finishing the batch in hand")

    def reloading(self) -> None:
        """SIGHUP is being handled; ``ready()`` ends it (systemd wants the monotonic time)."""
        now_usec = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
        self.send(RELOADING="1", MONOTONIC_USEC=str(now_usec), STATUS="reloading the configuration")

    def send(self, **fields: str) -> None:
        """Send one datagram. A failure is logged, never raised: systemd going away must not
        take the daemon with it (the watchdog will notice if it matters)."""
        if self._address is None:
            return
        message = "\n".join(f"{key}={value}" for key, value in fields.items()).encode()
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
                sock.sendto(message, self._address)
        except OSError as error:
            log.warning("notify.failed", error=str(error), fields=sorted(fields))


def _watchdog_interval(environ: Mapping[str, str]) -> timedelta | None:
    """Half of ``$WATCHDOG_USEC`` when the watchdog is meant for this process."""
    usec = environ.get("WATCHDOG_USEC", "")
    pid = environ.get("WATCHDOG_PID", "")
    if not usec.isdigit() or int(usec) == 0:
        return None
    if pid and pid != str(os.getpid()):
        return None
    return timedelta(microseconds=int(usec) / 2)
