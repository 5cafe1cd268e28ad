"""GET /metrics: Prometheus text (prometheus_client), without login and without per-user data.

Series (no label names a user, a device or a path):

- ``crm_caldav_requests_total{method,status}``: answered requests (methods
  outside KNOWN_METHODS count as ``OTHER``);
- ``crm_caldav_request_duration_seconds{method}``: a histogram of the same
  requests' times, as in the request log line;
- ``crm_caldav_database_errors_total{error}``: errors the database driver
  raised (SQLAlchemy's ``handle_error`` event: a refused connection, a time
  limit, a lost connection), by exception class;
- ``crm_caldav_failed_logins_total``: CalDAV requests whose credentials did
  not hold (401);
- ``crm_caldav_active_devices``: devices not revoked that logged in within the
  last ACTIVE_DEVICE_HOURS hours, read from the devices table at scrape time
  (so every process and every host agrees).

With ``serve --workers N`` every process counts in its own memory, and a
scrape reaches one process only. ``share_between_processes`` switches
prometheus_client's multiprocess mode on (a temporary directory of per-process
files, set in ``PROMETHEUS_MULTIPROC_DIR`` before the processes fork; removed
when the server stops): any process's /metrics then adds up every process's
counts, those of replaced processes included. An operator may set
``PROMETHEUS_MULTIPROC_DIR`` to an empty directory instead (e.g. systemd's
RuntimeDirectory). prometheus_client is imported only once that decision is
made, since it reads the variable when first imported.

Layer: server.
"""

from __future__ import annotations

import atexit
import logging
import os
import shutil
import tempfile
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import click
from sqlalchemy import Engine, event
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from crm_model.services import monitoring
from server.health import SharedCall
from server.request_log import RequestNotes
from storage_plugin.refusals import status_line

if TYPE_CHECKING:
    from prometheus_client.core import Metric
    from prometheus_client.registry import CollectorRegistry

METRICS_PATH = "/metrics"
MULTIPROCESS_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"
ACTIVE_DEVICE_HOURS = 24
KNOWN_METHODS = frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS", "PROPFIND", "PROPPATCH", "REPORT",
                           "MKCALENDAR", "MKCOL", "MOVE", "COPY", "POST", "LOCK", "UNLOCK"})
# Seconds: a poll takes milliseconds, a first sync of thousands of events seconds.
LATENCY_BUCKETS = (0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
logger = logging.getLogger(__name__)


def share_between_processes(workers: int) -> str | None:
    """Before forking ``workers`` server processes: count metrics in files they all read.

    Call it in the parent before anything imports prometheus_client. Does
    nothing for one process or when PROMETHEUS_MULTIPROC_DIR is already set
    (the operator's directory, used as it is). Returns the directory in use.

    Raises:
        click.ClickException: PROMETHEUS_MULTIPROC_DIR names no directory this
            user can write (every process would fail at its first count).
    """
    given = os.environ.get(MULTIPROCESS_VARIABLE)
    if given and not (os.path.isdir(given) and os.access(given, os.W_OK | os.X_OK)):
        raise click.ClickException(f"{MULTIPROCESS_VARIABLE}: {given} is not a directory this user can write; "
                                   "create it (systemd: RuntimeDirectory=) or unset the variable")
    if workers <= 1 or given:
        return given or None
    directory = tempfile.mkdtemp(prefix="crm-caldav-metrics-")
    os.environ[MULTIPROCESS_VARIABLE] = directory
    parent = os.getpid()

    def remove() -> None:
        if os.getpid() == parent:  # forked processes end with os._exit; this is for the parent
            shutil.rmtree(directory, ignore_errors=True)

    atexit.register(remove)
    return directory


class Metrics:
    """This process's counters and the /metrics WSGI application."""

    def __init__(self, read_sessions: sessionmaker[Session]) -> None:
        from prometheus_client import CollectorRegistry, Counter, Histogram, values

        # Multiprocess mode (values in files, added up at scrape time) is what prometheus_client
        # chose when first imported; else the values live in this registry.
        multiprocess = values.ValueClass is not values.MutexValue
        if os.environ.get(MULTIPROCESS_VARIABLE) and not multiprocess:
            logger.warning("%s is set but prometheus_client was imported before it: this process counts alone",
                           MULTIPROCESS_VARIABLE)
        self._registry = None if multiprocess else CollectorRegistry()
        self.requests = Counter("crm_caldav_requests", "Answered HTTP requests, by method and status.",
                                ("method", "status"), registry=self._registry)
        self.latency = Histogram("crm_caldav_request_duration_seconds",
                                 "Time from a request reaching the application to its answer being sent.",
                                 ("method",), buckets=LATENCY_BUCKETS, registry=self._registry)
        self.database_errors = Counter("crm_caldav_database_errors",
                                       "Errors raised by the database driver, by exception class.",
                                       ("error",), registry=self._registry)
        self.failed_logins = Counter("crm_caldav_failed_logins",
                                     "CalDAV requests whose login and password did not hold.",
                                     registry=self._registry)
        self._devices = ActiveDevices(read_sessions)
        if self._registry is not None:
            self._registry.register(self._devices)

    def observe(self, method: str, status: int, seconds: float, notes: RequestNotes) -> None:
        """Count one answered request (server.request_log.RequestLog calls it)."""
        method = method if method in KNOWN_METHODS else "OTHER"
        self.requests.labels(method, str(status)).inc()
        self.latency.labels(method).observe(seconds)
        if notes.login == "failed":
            self.failed_logins.inc()

    def watch(self, engine: Engine) -> None:
        """Count the errors the database driver raises on ``engine`` (connects included)."""

        @event.listens_for(engine, "handle_error")
        def _count(context: Any) -> None:
            error = context.original_exception
            self.database_errors.labels(error.__class__.__name__).inc()

    def registry(self) -> CollectorRegistry:
        """What a scrape collects: this process's (or every process's) counts and the device gauge."""
        from prometheus_client import CollectorRegistry
        from prometheus_client.multiprocess import MultiProcessCollector

        if self._registry is not None:
            return self._registry
        scrape = CollectorRegistry()
        MultiProcessCollector(scrape)
        scrape.register(self._devices)
        return scrape

    def __call__(self, environ: dict, start_response: Callable[..., Any]) -> Iterable[bytes]:
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        if environ.get("REQUEST_METHOD", "GET").upper() not in ("GET", "HEAD"):
            start_response(status_line(405), [("Allow", "GET, HEAD"), ("Content-Length", "0")])
            return []
        body = generate_latest(self.registry())
        start_response(status_line(200), [("Content-Type", CONTENT_TYPE_LATEST),
                                          ("Content-Length", str(len(body))), ("Cache-Control", "no-store")])
        return [] if environ.get("REQUEST_METHOD", "GET").upper() == "HEAD" else [body]


class ActiveDevices:
    """A collector: the number of devices used recently, one COUNT query per scrape.

    When the database does not answer, the gauge is left out of that scrape
    (Prometheus then shows a gap) and the error is counted by ``Metrics.watch``.
    """

    def __init__(self, read_sessions: sessionmaker[Session]) -> None:
        self._read_sessions = read_sessions
        # /metrics needs no login: scrapes arriving together share one COUNT (see server.health).
        self._count: SharedCall[int | None] = SharedCall(self._read_count, late=None)

    def describe(self) -> list[Metric]:
        return []  # registering must not query the database

    def collect(self) -> Iterator[Metric]:
        from prometheus_client.core import GaugeMetricFamily

        count = self._count()
        if count is None:
            return
        yield GaugeMetricFamily("crm_caldav_active_devices",
                                f"Devices (app passwords not revoked) used in the last {ACTIVE_DEVICE_HOURS} hours.",
                                value=count)

    def _read_count(self) -> int | None:
        """Devices used in the last ACTIVE_DEVICE_HOURS; None (and a warning) when the database does not answer."""
        since = datetime.now(UTC) - timedelta(hours=ACTIVE_DEVICE_HOURS)
        try:
            with self._read_sessions() as session, session.begin():
                return monitoring.devices_used_since(session, since=since)
        except SQLAlchemyError as error:
            logger.warning("active devices not counted: %s", error.__class__.__name__)
            return None
