"""GET/HEAD /health without login: 200 while this process runs and the database reads, else 503.

For load balancers and monitors. The check reads the first row of every table
(crm_model.services.monitoring.read_every_table) through the server's own
connection pool and time limits, so a full pool, a dropped or locked table, a
refused connection and a stopped database all answer 503, within
HEALTH_TIMEOUT_SECONDS on PostgreSQL (statement and lock waits) and the
engine's pool and lock timeouts otherwise (5 s each by default).

Layer: server.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import Any

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from crm_model.services import monitoring
from server import request_log
from storage_plugin.refusals import RETRY_AFTER_SECONDS, status_line

HEALTH_PATH = "/health"
HEALTH_TIMEOUT_SECONDS = 3.0
logger = logging.getLogger(__name__)


class Health:
    """The /health WSGI application over the server's read sessions."""

    def __init__(self, read_sessions: sessionmaker[Session]) -> None:
        self._read_sessions = read_sessions

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
        """None when the database answers a read of every table, else one line saying what failed."""
        try:
            with self._read_sessions() as session, session.begin():
                monitoring.read_every_table(session, timeout_seconds=HEALTH_TIMEOUT_SECONDS)
        except SQLAlchemyError as error:
            cause = getattr(error, "orig", None) or error
            first_line = (str(cause).strip().splitlines() or [""])[0]
            return f"database unavailable: {cause.__class__.__name__}: {first_line}"[:300]
        return None


def _answer(start_response: Callable[..., Any], status: int, body: bytes,
            headers: list[tuple[str, str]] | None = None, *, head: bool = False) -> list[bytes]:
    start_response(status_line(status), [("Content-Type", "text/plain; charset=utf-8"),
                                         ("Content-Length", str(len(body))), ("Cache-Control", "no-store"),
                                         *(headers or [])])
    return [] if head else [body]
