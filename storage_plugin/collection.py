"""The collections Radicale sees: the root, each user's principal, and their CRM calendar.

Layer: storage_plugin. Domain errors are translated to HTTP answers here, once.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from datetime import datetime, timezone
from email.utils import formatdate
from contextlib import contextmanager
from typing import Callable, Iterable, Iterator, Mapping

from radicale.item import Item
from radicale.item import filter as radicale_filter
from radicale.storage import BaseCollection
from sqlalchemy.orm import Session, sessionmaker

from crm_model.errors import ConflictError, NotFoundError, ReadOnlyCalendarError, StaleRevisionError
from crm_model.records import ActivityRecord, UserRecord
from crm_model.services import calendar as calendar_service
from crm_model.services import users as user_service
from storage_plugin import from_ical, paths, reports, request_state, rules
from storage_plugin.items import ActivityItem, RenderCache

SYNC_TOKEN_PREFIX = "http://crm-caldav.invalid/ns/sync/"
_TOKEN = re.compile(re.escape(SYNC_TOKEN_PREFIX) + r"(\d+)-(\d+)$")
READ_ONLY_MESSAGE = (
    "This CRM calendar is set to CRM-to-calendar only: change the activity in the CRM, "
    "or ask your CRM admin for two-way sync."
)
ONE_CALENDAR_MESSAGE = (
    "The CRM gives each user exactly one calendar; calendars cannot be created, "
    "deleted or moved here."
)
FIXED_PROPS = ("tag", "D:displayname", "C:supported-calendar-component-set")


@dataclass(frozen=True)
class PluginSettings:
    """What the plugin needs from the server's configuration."""

    recurrence: str = rules.RECURRENCE_REJECT
    render_cache_size: int = 4096


def session() -> Session:
    """The session of the transaction opened by Storage.acquire_lock."""
    current = request_state.current().session
    if current is None:
        raise RuntimeError("storage used outside acquire_lock")
    return current


def calendar_user(email: str, reader: Session | sessionmaker[Session]) -> UserRecord | None:
    """The enabled user owning ``email``'s calendar, read once per request.

    ``reader`` is the current session, or a factory used only on a memo miss.
    """
    memo = request_state.current().calendar_users
    if email not in memo:
        if isinstance(reader, Session):
            memo[email] = calendar_service.get_calendar_user(reader, email=email)
        else:
            with reader.begin() as db:
                memo[email] = calendar_service.get_calendar_user(db, email=email)
    found = memo[email]
    return found if isinstance(found, UserRecord) else None


@dataclass(frozen=True)
class CalendarServices:
    """What every calendar object shares: settings, the render cache, a way to read."""

    settings: PluginSettings
    cache: RenderCache
    read_sessions: sessionmaker[Session]
    on_sync: Callable[[int], None]

    @contextmanager
    def reading(self) -> Iterator[Session]:
        """The request's transaction, or a short read-only one.

        Radicale serialises a whole collection for getcontentlength after
        releasing the storage lock; that read gets its own transaction.
        """
        current = request_state.current().session
        if current is not None:
            yield current
            return
        with self.read_sessions.begin() as db:
            yield db


class RootCollection(BaseCollection):
    """"/": holds nothing but the principals."""

    @property
    def path(self) -> str:
        return ""

    def get_meta(self, key: str | None = None):  # type: ignore[override]
        return {} if key is None else None

    def get_all(self) -> Iterable[Item]:
        return ()

    def get_multi(self, hrefs: Iterable[str]):  # type: ignore[override]
        return ((href, None) for href in hrefs)

    @property
    def last_modified(self) -> str:
        return formatdate(usegmt=True)


class PrincipalCollection(RootCollection):
    """"/<login>/": the principal and the calendar home."""

    def __init__(self, user: UserRecord) -> None:
        self.user = user

    @property
    def path(self) -> str:
        return self.user.email

    def get_meta(self, key: str | None = None):  # type: ignore[override]
        meta = {"D:displayname": self.user.name or self.user.email}
        return meta if key is None else meta.get(key)

    def set_meta(self, props: Mapping[str, str]) -> None:
        # Clients PROPPATCH default alarms onto the home (macOS); accept and forget
        # them rather than answer 403, which stops Apple clients from syncing.
        return None


class ActivityCalendar(BaseCollection):
    """"/<login>/crm/": one user's CRM activities as a CalDAV calendar."""

    def __init__(self, user: UserRecord, services: CalendarServices) -> None:
        self.user = user
        self._services = services

    @property
    def path(self) -> str:
        return paths.calendar_path(self.user.email)

    # --- properties -------------------------------------------------------
    def get_meta(self, key: str | None = None):  # type: ignore[override]
        meta = dict(self.user.calendar_props)
        meta.update({
            "tag": "VCALENDAR",
            "D:displayname": self.user.email,
            "C:supported-calendar-component-set": "VEVENT",
        })
        return meta if key is None else meta.get(key)

    def set_meta(self, props: Mapping[str, str]) -> None:
        kept = {k: v for k, v in props.items() if k not in FIXED_PROPS}
        user_service.set_calendar_props(session(), user_id=self.user.id, props=kept)

    @property
    def etag(self) -> str:
        """The CTag: the calendar's change position; no item is read (SPEC 2)."""
        return f'"{self.user.window_pos}-{self.user.sync_pos}"'

    @property
    def last_modified(self) -> str:
        return formatdate(usegmt=True)

    # --- reading ----------------------------------------------------------
    def _item(self, record: ActivityRecord) -> ActivityItem:
        return ActivityItem(record, self, self._services.cache)

    def sync(self, old_token: str = "") -> tuple[str, Iterable[str]]:
        """The current token and the hrefs changed since ``old_token`` (all when empty).

        Radicale also calls this outside the storage lock, only for the token
        (PROPFIND sync-token), so the hrefs are read lazily, when a REPORT
        iterates them inside the lock.
        """
        token, position = self.sync_position(old_token)
        if position is None:
            return token, self._lazily(lambda db: calendar_service.list_offered_hrefs(db, user=self.user))
        return token, self._lazily(
            lambda db: calendar_service.changes_since(db, user=self.user, position=position).hrefs
        )

    def sync_position(self, old_token: str) -> tuple[str, int | None]:
        """The current token and the change position ``old_token`` stands for (None: a first sync).

        RFC 6578 3.2, DAV:valid-sync-token: a token of another window (re-enable,
        new synced types) or not issued here raises ValueError; Radicale maps it
        to 403 valid-sync-token and the client starts a full sync.
        """
        token = f"{SYNC_TOKEN_PREFIX}{self.user.window_pos}-{self.user.sync_pos}"
        if not old_token:
            return token, None
        match = _TOKEN.match(old_token)
        if not match or int(match[1]) != self.user.window_pos or int(match[2]) > self.user.sync_pos:
            raise ValueError(f"sync token {old_token!r} is not valid for this calendar")
        return token, int(match[2])

    def answer(self, request: reports.ReportRequest, *, href_prefix: str) -> reports.Answer:
        """A REPORT answered from SQL (storage_plugin.reports); ValueError for a bad sync token."""
        token, changed = "", ()
        if request.kind == "sync":
            token, position = self.sync_position(request.token)
            self._services.on_sync(self.user.id)
            changed = None if position is None else calendar_service.changes_since(
                session(), user=self.user, position=position).hrefs
        return reports.answer_report(
            session(), request, user=self.user, href_prefix=href_prefix, changed=changed, token=token)

    def _lazily(self, fetch: Callable[[Session], Iterable[str]]) -> Iterator[str]:
        self._services.on_sync(self.user.id)
        with self._services.reading() as db:
            hrefs = list(fetch(db))
        yield from hrefs

    def get_multi(self, hrefs: Iterable[str]) -> Iterator[tuple[str, Item | None]]:
        wanted = list(hrefs)
        found = {
            r.href: r for r in calendar_service.get_offered_by_hrefs(session(), user=self.user, hrefs=wanted)
        }
        for href in wanted:
            record = found.get(href)
            yield href, (self._item(record) if record else None)

    def get_all(self) -> Iterator[Item]:
        with self._services.reading() as db:
            records = calendar_service.list_offered_between(db, user=self.user, start=None, end=None)
        for record in records:
            yield self._item(record)

    def get_filtered(self, filters: Iterable[ET.Element]) -> Iterator[tuple[Item, bool]]:
        """Time-range filters become SQL; Radicale re-checks only what SQL cannot decide."""
        tag, start, end, simple = radicale_filter.simplify_prefilters(filters, "VCALENDAR")
        if tag not in (None, "VEVENT"):
            return
        lower = _from_timestamp(start, radicale_filter.TIMESTAMP_MIN)
        upper = _from_timestamp(end, radicale_filter.TIMESTAMP_MAX)
        records = calendar_service.list_offered_between(session(), user=self.user, start=lower, end=upper)
        for record in records:
            item = self._item(record)
            first, last = item.time_range
            # same "fully decided" test as Radicale's BaseCollection.get_filtered
            yield item, simple and (start <= first or last <= end)

    def has_uid(self, uid: str) -> bool:
        # The same UID at the very href being written is a concurrent create of
        # the same event, not a UID conflict: the upload's locked precondition
        # check answers it (412), so only other hrefs count here.
        return calendar_service.uid_taken(session(), uid=uid, except_href=request_state.current().target_href)

    # --- writing ----------------------------------------------------------
    def upload(self, href: str, item: Item) -> tuple[Item, Item | None]:
        state = request_state.current()
        text = state.raw_body if state.raw_body is not None else item.serialize()
        try:
            draft = from_ical.parse_event(
                text, default_timezone=self.user.timezone, recurrence=self._services.settings.recurrence
            )
            stored, old = calendar_service.apply_calendar_edit(
                session(), user=self.user, href=href, draft=draft, now=datetime.now(timezone.utc),
                precondition=_precondition(state),
            )
        except rules.RecurrenceRefusedError as error:
            request_state.refuse(403, str(error), dav_condition="C:supported-calendar-component")
            raise
        except from_ical.InvalidEventError as error:
            request_state.refuse(400, f"The event cannot be stored: {error}.")
            raise
        except ReadOnlyCalendarError as error:
            request_state.refuse(403, READ_ONLY_MESSAGE, dav_condition="D:need-privileges")
            raise ValueError(str(error)) from error
        except ConflictError as error:
            request_state.refuse(409, f"{error}.", dav_condition="C:no-uid-conflict")
            raise ValueError(str(error)) from error
        except StaleRevisionError as error:
            request_state.refuse(412, f"Precondition failed: {error}.")
            raise ValueError(str(error)) from error
        new_item = self._item(stored)
        served = new_item.serialize()
        # The client fetches this version next (RFC 4791 5.3.4): keep it rendered.
        calendar_service.store_renderings(
            session(), [(stored.id, stored.change_pos, reports.rendering_variant(self.user), served)])
        # RFC 4791 5.3.4: no strong ETag unless we store exactly what was sent,
        # so the client fetches the server's version (SPEC 3.7).
        state.content_changed = _normalise(served) != _normalise(text)
        return new_item, (self._item(old) if old else None)

    def delete(self, href: str | None = None) -> None:
        if href is None:
            request_state.refuse(403, ONE_CALENDAR_MESSAGE)
            raise PermissionError(ONE_CALENDAR_MESSAGE)
        try:
            calendar_service.delete_from_calendar(
                session(), user=self.user, href=href, precondition=_precondition(request_state.current())
            )
        except StaleRevisionError as error:
            request_state.refuse(412, f"Precondition failed: {error}.")
            raise ValueError(str(error)) from error
        except ReadOnlyCalendarError:
            request_state.refuse(403, READ_ONLY_MESSAGE, dav_condition="D:need-privileges")
            raise
        except NotFoundError:
            request_state.refuse(404, "No such event on this calendar.")
            raise


def _from_timestamp(value: int, unbounded: int) -> datetime | None:
    """A filter bound as a datetime; None for Radicale's "no bound" sentinels."""
    if value == unbounded:
        return None
    return datetime.fromtimestamp(value, timezone.utc)


def _precondition(state: request_state.RequestState) -> calendar_service.Precondition:
    """The client's If-Match / If-None-Match, re-checked under the calendar lock."""
    match = re.fullmatch(r'"(\d+)-(\d+)"', (state.if_match or "").strip())
    return calendar_service.Precondition(
        absent=state.if_none_match,
        change_pos=int(match[1]) if match else None,
    )


def _normalise(text: str) -> str:
    return text.replace("\r\n", "\n").strip()


