"""Radicale rights plugin: each user reaches only their own principal and calendar.

Layer: server.
"""

from __future__ import annotations

from radicale import config as radicale_config
from radicale.rights import BaseRights

from storage_plugin import paths
from storage_plugin.backend import CalendarBackend

# The principal and calendar home: read it, and write its properties (macOS PROPPATCHes
# its default alarms there; Apple clients stop setting up an account on a 403). "W" is
# what PROPPATCH of a plain collection needs; no lower-case "w", so nothing can be
# created in it. Deleting it stays refused (below), and overwriting it too:
# "o" refuses it when permit_overwrite_collection is on, no "O" when it is off.
HOME_RIGHTS = "RWo"
# With permit_delete_collection on (Radicale's default), a collection's "d" refuses its
# DELETE; with it off, the absence of "D" does. Radicale asks a plain collection (the
# home) for the upper-case letter either way (app/base.py Access.check), so the home's
# refusal there is "D", the calendar's "d" (SPEC 3.1: no client deletes a calendar).
HOME_DELETE_REFUSAL, CALENDAR_DELETE_REFUSAL = "D", "d"
# Any other path of the user's own namespace: nothing is there, so reading it is a 404
# (RFC 4918) rather than a 403 that suggests something hidden; nothing may be written.
OWN_EMPTY_PATH_RIGHTS = "r"


class Rights(BaseRights):
    """Owner-only rights; read-only calendars get "r" so clients show them read-only (SPEC 3.9).

    The principal cannot hold new collections (MKCALENDAR, MKCOL) nor be deleted;
    its own properties can be set. A stock Radicale loads it by module name
    (``[rights] type = server.rights``).
    """

    def __init__(self, configuration: radicale_config.Configuration, *,
                 backend: CalendarBackend | None = None) -> None:
        super().__init__(configuration)
        if backend is None:
            from storage_plugin.standalone import backend_from_configuration

            backend = backend_from_configuration(configuration, section="rights")
        self._backend = backend
        permit_delete = configuration.get("rights", "permit_delete_collection")
        self._home_rights = HOME_RIGHTS + (HOME_DELETE_REFUSAL if permit_delete else "")
        self._delete_refusal = CALENDAR_DELETE_REFUSAL if permit_delete else ""

    def authorization(self, user: str, user_groups: set[str], path: str) -> str:
        parts = paths.split(path)
        if not user:
            return ""
        if not parts:
            return "R"
        if parts[0] != user:
            return ""
        if len(parts) == 1:
            return self._home_rights
        if parts[1] != paths.CALENDAR_NAME:
            return OWN_EMPTY_PATH_RIGHTS
        owner = self._backend.calendar_user(user)
        if owner is None:
            return ""
        return ("r" if owner.read_only else "rw") + self._delete_refusal
