"""The Radicale storage plugin: discovery and transactions over the CRM database.

Layer: storage_plugin. Radicale brackets every handler's storage work in
``acquire_lock``; here that is one database transaction, so several server
processes can share one database (SPEC 7).
"""

from __future__ import annotations

import logging
import time
from datetime import datetime, timezone
from typing import Any, Callable, ContextManager, Iterable, Iterator, Mapping

from radicale import config as radicale_config
from radicale import types
from radicale.storage import BaseCollection, BaseStorage
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError, TimeoutError as PoolTimeoutError
from sqlalchemy.orm import Session, sessionmaker

from crm_model.records import UserRecord
from crm_model.services import calendar as calendar_service
from crm_model.services import users as user_service
from storage_plugin import paths, request_state
from storage_plugin.collection import (
    ONE_CALENDAR_MESSAGE,
    ActivityCalendar,
    CalendarServices,
    PluginSettings,
    PrincipalCollection,
    RootCollection,
    calendar_user,
    session,
)
from storage_plugin.items import RenderCache

logger = logging.getLogger(__name__)
SYNC_SEEN_INTERVAL = 60.0


class Storage(BaseStorage):
    """Radicale storage backed by crm_model; built by the server's composition root."""

    def __init__(
        self,
        configuration: radicale_config.Configuration,
        *,
        read_sessions: sessionmaker[Session],
        write_sessions: sessionmaker[Session],
        settings: PluginSettings | None = None,
    ) -> None:
        super().__init__(configuration)
        self._read_sessions = read_sessions
        self._write_sessions = write_sessions
        self._settings = settings or PluginSettings()
        self._services = CalendarServices(
            self._settings, RenderCache(self._settings.render_cache_size), read_sessions, self._note_sync
        )
        self._sync_seen: dict[int, float] = {}

    @types.contextmanager
    def acquire_lock(self, mode: str, user: str = "", *args: Any, **kwargs: Any) -> Iterator[None]:
        """One transaction per lock: commit on success, roll back on any error."""
        state = request_state.current()
        factory = self._write_sessions if mode == "w" else self._read_sessions
        outer = state.session
        try:
            with factory.begin() as db:
                state.session = db
                try:
                    yield
                finally:
                    state.session = outer
        except (OperationalError, PoolTimeoutError) as error:
            _database_unavailable(error)
            raise
        except DBAPIError as error:
            if error.connection_invalidated:
                _database_unavailable(error)
            raise

    def discover(
        self,
        path: str,
        depth: str = "0",
        child_context_manager: Callable[[str, str | None], ContextManager[None]] | None = None,
        user_groups: set[str] = set(),  # noqa: B006 - Radicale's signature
    ) -> Iterable[types.CollectionOrItem]:
        parts = paths.split(path)
        if not parts:
            return [RootCollection()]
        user = calendar_user(parts[0], session())
        if user is None or len(parts) > 3:
            return []
        principal = PrincipalCollection(user)
        calendar = ActivityCalendar(user, self._services)
        if len(parts) == 1:
            return [principal, calendar] if depth != "0" else [principal]
        if parts[1] != paths.CALENDAR_NAME:
            return []
        if len(parts) == 2:
            return [calendar, *calendar.get_all()] if depth != "0" else [calendar]
        return [item for _, item in calendar.get_multi([parts[2]]) if item is not None]

    def calendar(self, user: UserRecord) -> ActivityCalendar:
        """The calendar object of ``user`` (for the answers built outside Radicale)."""
        return ActivityCalendar(user, self._services)

    def keep_renderings(self, rendered: list[tuple[str, int, str, str]]) -> None:
        """Store event texts rendered for an answer, in their own short transaction.

        Best effort: a busy or failing database only means rendering again next time.
        """
        if not rendered:
            return
        try:
            with self._write_sessions.begin() as db:
                calendar_service.store_renderings(db, rendered)
        except (OperationalError, IntegrityError) as error:  # busy, down, or the activity just deleted
            logger.info("rendering cache not updated: %s", error.__class__.__name__)

    def _note_sync(self, user_id: int) -> None:
        """Record "last sync seen" (for `caldav status`) at most once a minute per user.

        Its own short write transaction: the sync itself runs in a read one.
        """
        now = time.monotonic()
        if now - self._sync_seen.get(user_id, -SYNC_SEEN_INTERVAL) < SYNC_SEEN_INTERVAL:
            return
        self._sync_seen[user_id] = now
        try:
            with self._write_sessions.begin() as db:
                user_service.record_sync_seen(db, user_id=user_id, now=datetime.now(timezone.utc))
        except OperationalError:  # busy or down: the sync itself matters more
            logger.warning("could not record the sync time of user %s", user_id)

    def move(self, item: Any, to_collection: BaseCollection, to_href: str) -> None:
        # Moving an event between calendars is a CRM reassignment, not a client action.
        request_state.refuse(403, ONE_CALENDAR_MESSAGE)
        raise PermissionError(ONE_CALENDAR_MESSAGE)

    def create_collection(
        self, href: str, items: Iterable[Any] | None = None, props: Mapping[str, str] | None = None
    ) -> Any:
        request_state.refuse(403, ONE_CALENDAR_MESSAGE)
        raise ValueError(ONE_CALENDAR_MESSAGE)

    def verify(self) -> bool:
        return True


def _database_unavailable(error: Exception) -> None:
    """A down, restarting or locked database: 503 + Retry-After, nothing written (SPEC 6)."""
    logger.error("database unavailable: %s", error.__class__.__name__)
    request_state.refuse_unavailable()
