"""Radicale rights plugin: each user reaches only their own principal and calendar.

Layer: server.
"""

from __future__ import annotations

from radicale import config as radicale_config
from radicale.rights import BaseRights

from storage_plugin import paths
from storage_plugin.backend import CalendarBackend


class Rights(BaseRights):
    """Owner-only rights; read-only calendars get "r" so clients show them read-only (SPEC 3.9).

    The principal is "R": users cannot create collections (MKCALENDAR) in it.
    A stock Radicale loads it by module name (``[rights] type = server.rights``).
    """

    def __init__(self, configuration: radicale_config.Configuration, *,
                 backend: CalendarBackend | None = None) -> None:
        super().__init__(configuration)
        if backend is None:
            from storage_plugin.standalone import backend_from_configuration

            backend = backend_from_configuration(configuration, section="rights")
        self._backend = backend

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
        owner = self._backend.calendar_user(user)
        if owner is None:
            return ""
        return "r" if owner.read_only else "rw"
