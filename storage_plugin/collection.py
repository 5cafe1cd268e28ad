"""The collections Radicale sees, as a thin adapter over the calendar backend.

"/" holds the principals, "/<login>/" is a user's principal and calendar home,
"/<login>/crm/" their one CRM calendar. Every method is one explicit backend
call in its own transaction. Radicale's handlers understand only a few
exception types, so a ``Refusal`` leaves this adapter as ValueError (400 from
PUT, 403 valid-sync-token from sync) or PermissionError; the crm-caldav server
answers PUT, DELETE and GET itself and keeps the refusal's own message.

Layer: storage_plugin.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterable, Iterator, Mapping
from datetime import UTC, datetime
from email.utils import formatdate
from typing import Any, overload

from radicale.item import Item
from radicale.item import filter as radicale_filter
from radicale.storage import BaseCollection

from crm_model.records import UserRecord
from storage_plugin import paths, tokens
from storage_plugin.backend import CalendarBackend, Served
from storage_plugin.refusals import ONE_CALENDAR_MESSAGE, Refusal

FIXED_PROPS = ("tag", "C:supported-calendar-component-set")
# The home's own properties are kept in the user's row beside the calendar's, under this prefix.
HOME_PREFIX = "home/"


class RootCollection(BaseCollection):
    """"/": holds nothing but the principals."""

    @property
    def path(self) -> str:
        return ""

    @overload
    def get_meta(self, key: None = None) -> Mapping[str, str]: ...

    @overload
    def get_meta(self, key: str) -> str | None: ...

    def get_meta(self, key: str | None = None) -> Mapping[str, str] | str | None:
        return {} if key is None else None

    def get_all(self) -> Iterable[Item]:
        return ()

    def get_multi(self, hrefs: Iterable[str]) -> Iterable[tuple[str, Item | None]]:
        return ((href, None) for href in hrefs)

    @property
    def last_modified(self) -> str:
        return formatdate(usegmt=True)


class PrincipalCollection(RootCollection):
    """"/<login>/": the principal and the calendar home."""

    def __init__(self, user: UserRecord, backend: CalendarBackend) -> None:
        self.user = user
        self._backend = backend

    @property
    def path(self) -> str:
        return self.user.email

    def get_meta(self, key: str | None = None) -> Any:
        meta = {k.removeprefix(HOME_PREFIX): v for k, v in self.user.calendar_props if k.startswith(HOME_PREFIX)}
        meta["D:displayname"] = self.user.name or self.user.email
        return meta if key is None else meta.get(key)

    def set_meta(self, props: Mapping[str, str]) -> None:
        """Kept, as Radicale keeps them: macOS PROPPATCHes its default alarms onto the home."""
        kept = {k: v for k, v in self.user.calendar_props if not k.startswith(HOME_PREFIX)}
        kept.update({HOME_PREFIX + k: v for k, v in props.items() if k != "D:displayname"})
        self._backend.set_calendar_props(self.user, kept)


class ActivityCalendar(BaseCollection):
    """"/<login>/crm/": one user's CRM activities as a CalDAV calendar."""

    def __init__(self, user: UserRecord, backend: CalendarBackend) -> None:
        self.user = user
        self._backend = backend

    @property
    def path(self) -> str:
        return paths.calendar_path(self.user.email)

    def get_meta(self, key: str | None = None) -> Any:
        """The client's properties; the display name is the e-mail until the user renames the calendar."""
        meta = {"D:displayname": self.user.email}
        meta.update((k, v) for k, v in self.user.calendar_props if not k.startswith(HOME_PREFIX))
        meta.update({"tag": "VCALENDAR", "C:supported-calendar-component-set": "VEVENT"})
        return meta if key is None else meta.get(key)

    def set_meta(self, props: Mapping[str, str]) -> None:
        kept = {k: v for k, v in self.user.calendar_props if k.startswith(HOME_PREFIX)}
        kept.update((k, v) for k, v in props.items() if k not in FIXED_PROPS and not k.startswith(HOME_PREFIX))
        self._backend.set_calendar_props(self.user, kept)

    @property
    def etag(self) -> str:
        """The CTag: the calendar's change position; no item is read (SPEC 2)."""
        return tokens.ctag(self.user)

    @property
    def last_modified(self) -> str:
        return formatdate(usegmt=True)

    def sync(self, old_token: str = "") -> tuple[str, Iterable[str]]:
        """The current token and the hrefs changed since ``old_token`` (RFC 6578).

        ValueError for a token not valid here: Radicale answers 403 valid-sync-token.
        The hrefs are read only when iterated: a PROPFIND of the sync-token
        property (every home PROPFIND) asks for the token alone.
        """
        try:
            tokens.position_of(old_token, self.user)
        except Refusal as refusal:
            raise ValueError(refusal.message) from refusal
        return tokens.sync_token(self.user), self._changed_hrefs(old_token)

    def _changed_hrefs(self, old_token: str) -> Iterator[str]:
        _, hrefs = self._backend.changes(self.user, old_token)
        yield from hrefs

    def get_multi(self, hrefs: Iterable[str]) -> Iterator[tuple[str, Item | None]]:
        wanted = list(hrefs)
        found = self._backend.multiget(self.user, wanted)
        for href in wanted:
            event = found.get(href)
            yield href, (self._item(event) if event else None)

    def get_all(self) -> Iterator[Item]:
        return (self._item(event) for event in self._backend.query(self.user, None, None))

    def get_filtered(self, filters: Iterable[ET.Element]) -> Iterator[tuple[Item, bool]]:
        """Time-range filters become SQL; Radicale re-checks only what SQL cannot decide."""
        tag, start, end, simple = radicale_filter.simplify_prefilters(filters, "VCALENDAR")
        if tag not in (None, "VEVENT"):
            return
        lower = _from_timestamp(start, radicale_filter.TIMESTAMP_MIN)
        upper = _from_timestamp(end, radicale_filter.TIMESTAMP_MAX)
        for event in self._backend.query(self.user, lower, upper):
            first, last = event.time_range
            # the "fully decided" test of Radicale's BaseCollection.get_filtered
            yield self._item(event), simple and (start <= first or last <= end)

    def has_uid(self, uid: str) -> bool:
        return self._backend.uid_taken(self.user, uid, except_href=None)

    def upload(self, href: str, item: Item) -> tuple[Item, Item | None]:
        """A PUT through stock Radicale (the crm-caldav server answers PUT itself)."""
        try:
            result = self._backend.put(self.user, href, item.serialize().encode("utf-8"))
        except Refusal as refusal:
            raise ValueError(refusal.message) from refusal
        return self._item(result.served), None

    def delete(self, href: str | None = None) -> None:
        if href is None:
            raise PermissionError(ONE_CALENDAR_MESSAGE)
        try:
            self._backend.delete(self.user, href)
        except Refusal as refusal:
            raise ValueError(refusal.message) from refusal

    def _item(self, event: Served) -> Item:
        """A fully built Radicale item: Radicale never re-renders or calls back."""
        return Item(collection=self, href=event.href, text=event.text, etag=event.etag, uid=event.uid,
                    name="VCALENDAR", component_name="VEVENT", time_range=event.time_range,
                    last_modified=event.last_modified)


def _from_timestamp(value: int, unbounded: int) -> datetime | None:
    """A filter bound as a datetime; None for Radicale's "no bound" sentinels."""
    if value == unbounded:
        return None
    return datetime.fromtimestamp(value, UTC)
