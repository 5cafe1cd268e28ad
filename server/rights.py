"""Radicale rights plugin: each user reaches only their own principal and calendar.

Layer: server.
"""

from __future__ import annotations

from radicale import config as radicale_config
from radicale.rights import BaseRights
from sqlalchemy.orm import Session, sessionmaker

from crm_model.services import calendar as calendar_service
from storage_plugin import paths


class Rights(BaseRights):
    """Owner-only rights; read-only calendars get "r" so clients show them read-only (SPEC 3.9).

    The principal is "R": users cannot create collections (MKCALENDAR) in it.
    """

    def __init__(self, configuration: radicale_config.Configuration, *, sessions: sessionmaker[Session]) -> None:
        super().__init__(configuration)
        self._sessions = sessions

    def authorization(self, user: str, user_groups: set[str], path: str) -> str:
        parts = paths.split(path)
        if not user:
            return ""
        if not parts:
            return "R"
        if parts[0] != user:
            return ""
        if len(parts) == 1:
            return "R"
        if parts[1] != paths.CALENDAR_NAME:
            return ""
        with self._sessions.begin() as session:
            calendar_user = calendar_service.get_calendar_user(session, email=user)
        if calendar_user is None:
            return ""
        return "r" if calendar_user.read_only else "rw"
