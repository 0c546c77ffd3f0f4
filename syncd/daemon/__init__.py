"""``syncd run``: the unattended daemon (spec sections 3, 4 and 7).

The main thread does nothing but wait for signals; APScheduler's ``BackgroundScheduler``
runs the jobs in two executors:

- ``work``, ONE thread: the light cycle, the full reconcile, the mail run, housekeeping,
  SIGUSR1's cycle and applying a reloaded configuration. Everything that uses the
  connections runs here, one job after the other, so no two cycles of this process can
  overlap and a reload never swaps the connections under a running job. (The state store's
  ``cycle`` lease keeps other processes out: ``syncd sync`` or a second daemon.)
- ``default``, two threads: the watchdog ping and the renewal of the ``daemon`` lease
  (``syncd.daemon.leadership``), which must keep going while a long cycle runs.

Job settings, chosen per job (``Jobs.schedule`` in ``syncd.daemon.jobs``):
``max_instances=1`` everywhere, so a job still running (or queued behind another on the
work thread) is not started a second time;
``coalesce=True``, so runs missed while the work thread was busy become one run, not a
burst; ``misfire_grace_time`` bounded to what is still worth doing late: one interval for
the light cycle and the mail run (later than that, the next regular run is as good), an
hour for the full reconcile (it runs once a day: a long cycle ahead of it must not cost a
day) and six hours for housekeeping.

Signals: SIGTERM (and SIGINT) sets the stop flag (the apply loop stops between batches,
a read gives up at its next 5,000-row heartbeat, the mailer's backoff wakes up) and exits
0 once the job in hand returns; SIGHUP re-reads the configuration and applies it only if
it is valid; SIGUSR1 runs a cycle now.
"""

from __future__ import annotations

import logging
import os
import queue
import signal
import threading
from collections.abc import Callable, Mapping
from contextlib import ExitStack
from datetime import datetime
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

import structlog
from apscheduler.executors.pool import ThreadPoolExecutor  # type: ignore[import-untyped]
from apscheduler.schedulers.background import BackgroundScheduler  # type: ignore[import-untyped]

from syncd.clock import utcnow
from syncd.config import Config, load_config
from syncd.daemon.http import HttpEndpoint
from syncd.daemon.jobs import DaemonContext, Jobs, cycle_lease_ttl
from syncd.daemon.leadership import Leadership, lease_ttl
from syncd.daemon.metrics import Metrics
from syncd.daemon.notify import Notifier
from syncd.daemon.outages import Overruns, not_an_overrun
from syncd.errors import ConfigError, SyncdError
from syncd.status import health
from syncd.wiring import Services, open_services

if TYPE_CHECKING:
    from syncd.web.server import BackgroundConsole

log = structlog.get_logger(__name__)

HANDLED_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGUSR1)


class _StdlibToStructlog(logging.Handler):
    """APScheduler logs through ``logging``; its warnings (a missed run, a job skipped
    because it is still running) belong in the same JSON stream as everything else."""

    def emit(self, record: logging.LogRecord) -> None:
        structlog.get_logger(record.name).log(record.levelno, record.getMessage())


class Daemon:
    """One ``syncd run`` process. ``run()`` returns the exit code."""

    def __init__(
        self,
        config_path: str | Path | None,
        *,
        environ: Mapping[str, str] = os.environ,
        notifier: Notifier | None = None,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self._clock = clock
        self._path = config_path
        self._environ = environ
        self.notifier = notifier or Notifier(environ)
        self.metrics = Metrics()
        self.stop = threading.Event()
        self._signals: queue.SimpleQueue[int] = queue.SimpleQueue()
        self._stack = ExitStack()
        self._http: HttpEndpoint | None = None
        self._console: BackgroundConsole | None = None
        self.scheduler = BackgroundScheduler(
            executors={"work": ThreadPoolExecutor(1), "default": ThreadPoolExecutor(2)},
            job_defaults={"max_instances": 1, "coalesce": True},
        )

    # -- life cycle ---------------------------------------------------------------------

    def run(self) -> int:
        """Start, serve signals until SIGTERM, stop. Raises ConfigError (exit 2) or
        UnavailableError (exit 4) when it cannot start at all."""
        config = self._load()
        services = self._open(config)
        self.leadership = Leadership(services.store, lease_ttl(config.schedule.interval))
        self.context = DaemonContext(
            config, self.leadership, self.notifier, self.metrics, self.stop, self._clock
        )
        self.jobs = Jobs(self.context, services)
        self._route_stdlib_logs()
        overruns = Overruns()
        self.scheduler.add_listener(overruns, overruns.mask)
        for signum in HANDLED_SIGNALS:
            signal.signal(signum, self._on_signal)
        try:
            self._listen(config)
            self._serve_console(config)
            self.scheduler.start()
            self.jobs.schedule(self.scheduler, config, first=True)
            log.info("daemon.started", config=str(config.path), pid=os.getpid())
            self.notifier.ready("started; the first cycle is starting")
            self._serve_signals()
        finally:
            self._shutdown()
        return 0

    def _serve_signals(self) -> None:
        while True:
            try:
                signum = self._signals.get(timeout=1.0)
            except queue.Empty:
                continue
            if signum in (signal.SIGTERM, signal.SIGINT):
                log.info("daemon.signal", signal=signal.Signals(signum).name)
                return
            if signum == signal.SIGHUP:
                self._reload()
            elif signum == signal.SIGUSR1:
                self.jobs.cycle_now(self.scheduler)

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        self._signals.put(signum)  # SimpleQueue.put is safe in a signal handler

    def _shutdown(self) -> None:
        self.stop.set()
        self.notifier.stopping()
        log.info("daemon.stopping")
        if self.scheduler.running:
            self.scheduler.shutdown(wait=True)  # the job in hand returns at a batch boundary
        self.leadership.resign()
        if self._http is not None:
            self._http.close()
        if self._console is not None:
            self._console.close()
        self._stack.close()
        log.info("daemon.stopped")

    # -- configuration ------------------------------------------------------------------

    def _load(self) -> Config:
        config = self._validated()
        self.config = config
        return config

    def _validated(self) -> Config:
        """Read the file and run every check ``syncd check-config`` runs."""
        from syncd.mail.render import check_templates

        config = load_config(self._path, environ=self._environ)
        check_templates(config)
        return config

    def _open(self, config: Config) -> Services:
        stack = ExitStack()
        try:
            services = stack.enter_context(open_services(config, self._clock))
        except BaseException:
            stack.close()
            raise
        self._stack = stack
        self.services = services
        return services

    def _reload(self) -> None:
        """SIGHUP: validate in the main thread, apply on the work thread between jobs."""
        self.notifier.reloading()
        log.info("config.reloading", path=str(self.config.path))
        try:
            config = self._validated()
        except ConfigError as error:
            for problem in error.problems:
                log.error("config.invalid", problem=problem)
            log.error(
                "config.reload_rejected",
                errors=len(error.problems),
                detail="the running configuration stays in force; fix the file and reload",
            )
            self.notifier.ready(self.jobs.status_line)
            return
        self.scheduler.add_job(
            self._apply, args=[config], id="reload", executor="work", misfire_grace_time=None,
            replace_existing=True,
        )  # fmt: skip

    def _apply(self, config: Config) -> None:
        """Open the new connections first; only when that works, swap and close the old."""
        old_stack, old_config = self._stack, self.config
        try:
            services = self._open(config)
        except SyncdError as error:
            log.error("config.reload_failed", error=str(error), detail="keeping the old one")
            self.notifier.ready(self.jobs.status_line)
            return
        self.config = config
        self.context.config = config
        self.leadership.attach(services.store, lease_ttl(config.schedule.interval))
        self.jobs.services = services
        old_stack.close()
        self.jobs.schedule(self.scheduler, config, first=False)
        if config.observability.listen != old_config.observability.listen:
            if self._http is not None:
                self._http.close()
                self._http = None
            self._listen(config)
        self._serve_console(config)  # anew: it holds connections made from the old config
        log.info("config.reloaded", path=str(config.path))
        self.notifier.ready(self.jobs.status_line)

    # -- observability ------------------------------------------------------------------

    def _listen(self, config: Config) -> None:
        listen = config.observability.listen
        if listen is None:
            return
        try:
            self._http = HttpEndpoint(
                listen.host, listen.port, metrics=self.metrics.render, health=self.health
            )
        except OSError as error:
            # Monitoring matters, but not more than syncing: keep running, say so loudly.
            log.error("http.listen_failed", listen=str(listen), error=str(error))

    def _serve_console(self, config: Config) -> None:
        """``web.listen``: the support console, on its own thread and connections."""
        if self._console is not None:
            self._console.close()
            self._console = None
        if config.web.listen is None:
            return
        from syncd.web.server import BackgroundConsole

        try:
            self._console = BackgroundConsole(config)
        except (OSError, SyncdError) as error:  # like /metrics: syncing matters more
            log.error("web.listen_failed", listen=str(config.web.listen), error=str(error))

    def health(self) -> tuple[bool, str]:
        """/healthz: the same verdict as ``syncd status`` (``syncd.status.health``), and
        unhealthy while a job finds a service down that no run records (the SMTP server)."""
        runs = self.jobs.services.store.last_runs(10)
        healthy, why = health(runs, self.config.schedule.interval, self._clock())
        down = self.jobs.outages.describe()  # what the runs table cannot show: the SMTP server
        return (False, down) if healthy and down is not None else (healthy, why)

    @staticmethod
    def _route_stdlib_logs() -> None:
        scheduler_log = logging.getLogger("apscheduler")
        scheduler_log.setLevel(logging.WARNING)
        handler = _StdlibToStructlog()
        handler.addFilter(not_an_overrun)  # said once per overrun by ``Overruns`` instead
        scheduler_log.addHandler(handler)
        scheduler_log.propagate = False


def run_daemon(config_path: str | Path | None) -> int:
    """Entry point of ``syncd run``."""
    return Daemon(config_path).run()


__all__ = ["Daemon", "cycle_lease_ttl", "lease_ttl", "run_daemon"]
