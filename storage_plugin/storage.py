"""The Radicale storage plugin: discovery over the calendar backend.

Radicale loads it by module name (``[storage] type = storage_plugin``) and
calls ``Storage(configuration)``; the crm-caldav server builds it with its own
backend instead. Every backend call is its own database transaction, so
``acquire_lock`` holds nothing: several server processes and hosts share one
database (SPEC 7), and a write's preconditions are checked under the
database's lock of the calendar.

Layer: storage_plugin.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import AbstractContextManager
from typing import Any

from radicale import config as radicale_config
from radicale import types
from radicale.storage import BaseCollection, BaseStorage

from storage_plugin import paths
from storage_plugin.backend import CalendarBackend
from storage_plugin.collection import ActivityCalendar, PrincipalCollection, RootCollection
from storage_plugin.refusals import ONE_CALENDAR_MESSAGE, Refusal


class Storage(BaseStorage):
    """Radicale storage backed by crm_model through ``CalendarBackend``."""

    def __init__(self, configuration: radicale_config.Configuration, *,
                 backend: CalendarBackend | None = None) -> None:
        super().__init__(configuration)
        if backend is None:
            from storage_plugin.standalone import backend_from_configuration

            backend = backend_from_configuration(configuration)
        self.backend = backend

    @types.contextmanager
    def acquire_lock(self, mode: str, user: str = "", *args: Any, **kwargs: Any) -> Iterator[None]:
        """Nothing to hold: each backend call is a database transaction of its own."""
        yield

    def discover(
        self,
        path: str,
        depth: str = "0",
        child_context_manager: Callable[[str, str | None], AbstractContextManager[None]] | None = None,
        user_groups: set[str] = set(),  # noqa: B006 - Radicale's signature
    ) -> Iterable[types.CollectionOrItem]:
        parts = paths.split(path)
        if not parts:
            return [RootCollection()]
        try:
            user = self.backend.calendar_user(parts[0])
        except Refusal as refusal:
            raise RuntimeError(refusal.message) from refusal
        if user is None or len(parts) > 3:
            return []
        principal = PrincipalCollection(user, self.backend)
        calendar = ActivityCalendar(user, self.backend)
        if len(parts) == 1:
            return [principal, calendar] if depth != "0" else [principal]
        if parts[1] != paths.CALENDAR_NAME:
            return []
        if len(parts) == 2:
            return [calendar, *calendar.get_all()] if depth != "0" else [calendar]
        return [item for _, item in calendar.get_multi([parts[2]]) if item is not None]

    def move(self, item: Any, to_collection: BaseCollection, to_href: str) -> None:
        # Moving an event between calendars is a CRM reassignment, not a client action.
        raise ValueError(ONE_CALENDAR_MESSAGE)

    def create_collection(self, href: str, items: Iterable[Any] | None = None,
                          props: Mapping[str, str] | None = None) -> Any:
        raise ValueError(ONE_CALENDAR_MESSAGE)

    def verify(self) -> bool:
        return True
