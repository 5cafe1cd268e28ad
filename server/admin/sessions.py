"""Server-side state of the admin page, in this process's memory: login sessions and one-time downloads.

A session is a random 256-bit token in an HttpOnly cookie, mapped here to
the admin's e-mail and the session's CSRF token; it ends after
SESSION_IDLE_SECONDS without a request, SESSION_MAX_SECONDS after the login,
at logout, and when the process restarts (the admin logs in again). A
one-time download maps a random token to a device's new password for
DOWNLOAD_SECONDS, and is forgotten at its first use. With ``serve --workers
N`` each process keeps its own, so the admin page needs one worker or a proxy
that keeps a browser on one process.

Layer: server.
"""

from __future__ import annotations

import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass

SESSION_IDLE_SECONDS = 60 * 60
SESSION_MAX_SECONDS = 12 * 60 * 60
DOWNLOAD_SECONDS = 10 * 60
MAX_ENTRIES = 10_000  # per store; the oldest go first beyond it


def new_token() -> str:
    """A random token of 256 bits, URL- and cookie-safe."""
    return secrets.token_urlsafe(32)


@dataclass
class AdminSession:
    """One logged-in admin."""

    email: str
    csrf: str
    started: float
    last_seen: float


@dataclass(frozen=True)
class PendingProfile:
    """What a one-time download serves: a profile of this device's password."""

    email: str
    label: str
    password: str
    expires: float


class SessionStore:
    """Admin sessions by token."""

    def __init__(self, *, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._sessions: dict[str, AdminSession] = {}
        self._lock = threading.Lock()

    def start(self, email: str) -> tuple[str, AdminSession]:
        """A new session of ``email``: (cookie token, session)."""
        now = self._clock()
        token, session = new_token(), AdminSession(email=email, csrf=new_token(), started=now, last_seen=now)
        with self._lock:
            _make_room(self._sessions)
            self._sessions[token] = session
        return token, session

    def get(self, token: str | None) -> AdminSession | None:
        """The live session of ``token`` (its idle time restarts), or None."""
        if not token:
            return None
        now = self._clock()
        with self._lock:
            session = self._sessions.get(token)
            if session is None:
                return None
            if now - session.last_seen > SESSION_IDLE_SECONDS or now - session.started > SESSION_MAX_SECONDS:
                del self._sessions[token]
                return None
            session.last_seen = now
            return session

    def end(self, token: str | None) -> None:
        with self._lock:
            self._sessions.pop(token or "", None)


class DownloadStore:
    """One-time profile downloads by token."""

    def __init__(self, *, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._pending: dict[str, PendingProfile] = {}
        self._lock = threading.Lock()

    def offer(self, *, email: str, label: str, password: str) -> str:
        """A token that downloads this device's profile once within DOWNLOAD_SECONDS."""
        token = new_token()
        with self._lock:
            _make_room(self._pending)
            self._pending[token] = PendingProfile(email, label, password, self._clock() + DOWNLOAD_SECONDS)
        return token

    def take(self, token: str) -> PendingProfile | None:
        """The profile of ``token``, forgotten now; None when unknown, used or expired."""
        with self._lock:
            pending = self._pending.pop(token, None)
        if pending is None or pending.expires < self._clock():
            return None
        return pending


def _make_room(entries: dict) -> None:
    while len(entries) >= MAX_ENTRIES:
        del entries[next(iter(entries))]  # dicts keep insertion order: the oldest first
