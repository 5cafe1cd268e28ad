"""GET/HEAD /health without login: 200 while this process runs and the database reads, else 503.

For load balancers and monitors. The check reads the first row of every table
(crm_model.services.monitoring.read_every_table) through the server's own
connection pool and time limits, so a full pool, a dropped or locked table, a
refused connection and a stopped database all answer 503, within
HEALTH_TIMEOUT_SECONDS on PostgreSQL (statement and lock waits) and the
engine's pool and lock timeouts otherwise (5 s each by default).

Anyone may ask, so requests that arrive while a check is under way share its
result instead of starting their own: a flood of /health uses at most one
database connection per process, never the pool that CalDAV requests need.
A request that joins gets the result of a check that began at most one
check's time before it arrived; nothing is kept once a check ends.

Layer: server.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import Future
from typing import Any, Generic, TypeVar

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from crm_model.services import monitoring
from server import request_log
from storage_plugin.refusals import RETRY_AFTER_SECONDS, status_line

HEALTH_PATH = "/health"
HEALTH_TIMEOUT_SECONDS = 3.0
# A request waiting for another's check gives up after this (the check's own limits end it sooner).
SHARED_CHECK_WAIT_SECONDS = 30.0
logger = logging.getLogger(__name__)
T = TypeVar("T")


class Health:
    """The /health WSGI application over the server's read sessions."""

    def __init__(self, read_sessions: sessionmaker[Session]) -> None:
        self._read_sessions = read_sessions
        self._shared: SharedCall[str | None] = SharedCall(
            self._check, late="database unavailable: the health check under way took too long")

    def __call__(self, environ: dict, start_response: Callable[..., Any]) -> Iterable[bytes]:
        method = environ.get("REQUEST_METHOD", "GET").upper()
        if method not in ("GET", "HEAD"):
            return _answer(start_response, 405, b"GET or HEAD only.\n", [("Allow", "GET, HEAD")])
        problem = self.problem()
        if problem is not None:
            request_log.note(environ, reason=problem)  # the cause goes to the log, not to anonymous clients
            return _answer(start_response, 503, b"database unavailable\n",
                           [("Retry-After", str(RETRY_AFTER_SECONDS))], head=method == "HEAD")
        return _answer(start_response, 200, b"ok\n", head=method == "HEAD")

    def problem(self) -> str | None:
        """None when the database answers a read of every table, else one line saying what failed.

        Joins the check under way when there is one (see the module's docstring).
        """
        return self._shared()

    def _check(self) -> str | None:
        try:
            with self._read_sessions() as session, session.begin():
                monitoring.read_every_table(session, timeout_seconds=HEALTH_TIMEOUT_SECONDS)
        except SQLAlchemyError as error:
            cause = getattr(error, "orig", None) or error
            first_line = (str(cause).strip().splitlines() or [""])[0]
            return f"database unavailable: {cause.__class__.__name__}: {first_line}"[:300]
        return None


class SharedCall(Generic[T]):
    """``function()`` for many threads: calls arriving while one runs wait for its result.

    For what anonymous clients may ask as often as they like (/health, the
    device gauge of /metrics): however many arrive together, one runs at a
    time. Nothing is kept once a call ends; a later call runs ``function``
    again. A waiter gives up after SHARED_CHECK_WAIT_SECONDS and gets ``late``.
    """

    def __init__(self, function: Callable[[], T], *, late: T) -> None:
        self._function = function
        self._late = late
        self._lock = threading.Lock()
        self._running: Future[T] | None = None  # the call under way, if any
        self.waiting = 0  # calls waiting for its result

    def __call__(self) -> T:
        with self._lock:
            running, starts = self._running, False
            if running is None:
                running = self._running = Future()
                starts = True
            else:
                self.waiting += 1
        if not starts:
            try:
                return running.result(timeout=SHARED_CHECK_WAIT_SECONDS)
            except TimeoutError:
                return self._late
            finally:
                with self._lock:
                    self.waiting -= 1
        try:
            result = self._function()
            running.set_result(result)
            return result
        except BaseException as error:
            running.set_exception(error)
            raise
        finally:
            with self._lock:
                self._running = None


def _answer(start_response: Callable[..., Any], status: int, body: bytes,
            headers: list[tuple[str, str]] | None = None, *, head: bool = False) -> list[bytes]:
    start_response(status_line(status), [("Content-Type", "text/plain; charset=utf-8"),
                                         ("Content-Length", str(len(body))), ("Cache-Control", "no-store"),
                                         *(headers or [])])
    return [] if head else [body]
