"""Server-side state of the admin page, in the database: login sessions and one-time downloads.

A session is a random 256-bit token in an HttpOnly cookie; the database keeps
its SHA-256 with the admin and the session's CSRF token
(crm_model.services.admin_sessions). It ends after an hour without a request,
twelve hours after the login, and at logout. A one-time download maps a
random token to a device's new password, encrypted with a key only the token
gives, for ten minutes, and is deleted at its first use. Every process of
``serve --workers N``, and every host on the same database, sees the same
sessions and downloads.

Each call is one short write transaction of its own.

Layer: server.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from sqlalchemy.orm import Session, sessionmaker

from crm_model.records import AdminSessionRecord, ProfileDownloadRecord
from crm_model.services import admin_sessions as service

AdminSession = AdminSessionRecord  # one logged-in admin: email, csrf, created_at, last_seen_at
PendingProfile = ProfileDownloadRecord  # what a one-time download serves: email, label, password
new_token = service.new_token


class SessionStore:
    """Admin sessions by their cookie's token."""

    def __init__(self, *, write_sessions: sessionmaker[Session], now: Callable[[], datetime]) -> None:
        self._write = write_sessions
        self._now = now

    def start(self, admin_id: int) -> tuple[str, AdminSession]:
        """A new session of admin ``admin_id``: (cookie token, session)."""
        with self._write.begin() as db:
            return service.start_session(db, admin_id=admin_id, now=self._now())

    def get(self, token: str | None) -> AdminSession | None:
        """The live session of ``token`` (its idle time restarts), or None."""
        if not token:
            return None
        with self._write.begin() as db:
            return service.get_session(db, token=token, now=self._now())

    def end(self, token: str | None) -> None:
        if not token:
            return
        with self._write.begin() as db:
            service.end_session(db, token=token)


class DownloadStore:
    """One-time profile downloads by token."""

    def __init__(self, *, write_sessions: sessionmaker[Session], now: Callable[[], datetime]) -> None:
        self._write = write_sessions
        self._now = now

    def offer(self, *, email: str, label: str, password: str) -> str:
        """A token that downloads this device's profile once within ten minutes."""
        with self._write.begin() as db:
            return service.offer_download(db, email=email, label=label, password=password, now=self._now())

    def take(self, token: str) -> PendingProfile | None:
        """The profile of ``token``, forgotten now; None when unknown, used or expired."""
        with self._write.begin() as db:
            return service.take_download(db, token=token, now=self._now())
