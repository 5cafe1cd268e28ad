"""Where the admin page is mounted, and a stand-in that builds it on its first request.

The page's modules (Jinja2, segno, cryptography for its sessions) hold about
9.5 MiB of resident memory once imported (/proc VmRSS, measured import by
import); a CalDAV server process that never serves /admin/ never imports them.
The first admin request imports them (a few hundred milliseconds, once).

Layer: server.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from server.admin.settings import PageSettings
from server.throttle import LoginThrottle

ADMIN_PATH = "/admin"


def is_admin_path(path: str) -> bool:
    """The request is for the admin page (``/admin`` or below ``/admin/``)."""
    return path == ADMIN_PATH or path.startswith(ADMIN_PATH + "/")


class AdminApp:
    """WSGI application of the admin page (server.admin.app.AdminApp), built on its first request."""

    def __init__(self, *, write_sessions: sessionmaker[Session], read_sessions: sessionmaker[Session],
                 throttle: LoginThrottle, settings: PageSettings) -> None:
        self._arguments: dict[str, Any] = dict(write_sessions=write_sessions, read_sessions=read_sessions,
                                               throttle=throttle, settings=settings)
        self._app: Callable[[dict, Callable[..., Any]], Iterable[bytes]] | None = None
        self._lock = threading.Lock()

    def __call__(self, environ: dict, start_response: Callable[..., Any]) -> Iterable[bytes]:
        return self._built()(environ, start_response)

    def _built(self) -> Callable[[dict, Callable[..., Any]], Iterable[bytes]]:
        if self._app is None:
            with self._lock:  # two first requests at once build it once
                if self._app is None:
                    from server.admin.app import AdminApp as PageApp

                    self._app = PageApp(**self._arguments)
        return self._app
