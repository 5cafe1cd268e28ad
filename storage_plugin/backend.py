"""The calendar backend: every read and write of a user's CRM calendar, with explicit contracts.

After sabre/dav's CalDAV ``BackendInterface`` (createCalendarObject returns the
ETag, or null when the stored data differs from what was sent) and Xandikos'
store (``import_one(name, data, replace_etag)``). The HTTP handler and the
Radicale adapter (storage_plugin.collection) both call this class with
explicit arguments; each call runs in its own database transaction; refusals
are raised as ``Refusal`` and nothing travels beside the call.

Layer: storage_plugin. Imports crm_model's public services and records only.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from email.utils import format_datetime

from sqlalchemy import Connection, Engine
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from sqlalchemy.orm import Session

from crm_model.db import make_session_factory
from crm_model.errors import ConflictError, NotFoundError, ReadOnlyCalendarError, StaleRevisionError
from crm_model.records import ActivityRecord, OfferedEntry, UserRecord
from crm_model.services import calendar as calendar_service
from crm_model.services import renderings as rendering_service
from crm_model.services import users as user_service
from storage_plugin import from_ical, ical_lines, limits, reports, rules, tokens
from storage_plugin.outages import database_errors
from storage_plugin.refusals import (
    NO_SUCH_EVENT_MESSAGE,
    READ_ONLY_MESSAGE,
    Refusal,
)
from storage_plugin.rendering import RENDERER_NAME, RENDERING_VARIANT, Rendering, cache_row, served_text
from storage_plugin.to_ical import RENDER_VERSION

logger = logging.getLogger(__name__)
SYNC_SEEN_INTERVAL = 60.0


@dataclass(frozen=True)
class PluginSettings:
    """What the backend needs from the server's configuration."""

    recurrence: str = rules.RECURRENCE_REJECT
    max_attendees: int = 1000  # ATTENDEE properties in one event
    max_alarms: int = 20  # VALARM components in one event
    outage_passes_radicale: bool = False  # raise outages.Unavailable (the crm-caldav handler answers 503)


@dataclass(frozen=True)
class Served:
    """One calendar object resource as served: the text and the ETag of exactly that text."""

    href: str
    uid: str
    etag: str
    text: str
    last_modified: str  # an HTTP date
    time_range: tuple[int, int]  # Unix seconds [start, end), for Radicale's filters


@dataclass(frozen=True)
class PutResult:
    """What a PUT stored.

    ``etag`` is the strong ETag when the server serves the very bytes the client
    sent; None when it stored something else, so that the client fetches the
    server's version (RFC 4791 5.3.4, SPEC 3.7).
    """

    served: Served
    created: bool
    etag: str | None


class CalendarBackend:
    """Reads and writes of one CRM calendar per enabled user (SPEC 3, 4)."""

    def __init__(self, engine: Engine, *, settings: PluginSettings | None = None,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self._engine = engine
        self._read_sessions = make_session_factory(engine, write=False)
        self._write_sessions = make_session_factory(engine, write=True)
        self._settings = settings or PluginSettings()
        self._clock = clock
        self._sync_seen: dict[int, float] = {}

    # --- transactions -------------------------------------------------------
    @contextmanager
    def reading(self) -> Iterator[Session]:
        """A read transaction; a down or locked database raises Refusal 503."""
        with database_errors(passes_radicale=self._settings.outage_passes_radicale), \
                self._read_sessions.begin() as session:
            yield session

    @contextmanager
    def reading_rows(self) -> Iterator[Connection]:
        """A read transaction on a plain connection, for the hot reads (polls, sync, multiget).

        The ORM Session's own bookkeeping (its transaction states, the
        connection it looks up per statement) costs more than SQLite takes to
        answer a poll (measured: 62 against 29 us per empty transaction).
        Refusal 503 as for reading().
        """
        with database_errors(passes_radicale=self._settings.outage_passes_radicale), \
                self._engine.connect() as connection, connection.begin():
            yield connection

    @contextmanager
    def writing(self) -> Iterator[Session]:
        """A write transaction (BEGIN IMMEDIATE on SQLite); Refusal 503 as above."""
        with database_errors(passes_radicale=self._settings.outage_passes_radicale), \
                self._write_sessions.begin() as session:
            yield session

    # --- reading ------------------------------------------------------------
    def calendar_user(self, email: str, *, login: tuple[int, int] | None = None) -> UserRecord | None:
        """The enabled user whose calendar is ``/<email>/crm/``, read fresh; None otherwise.

        With ``login`` (user id, credentials version, as a password check vouched
        for), also None when the row no longer shows them.
        """
        with self.reading_rows() as connection:
            return _current_user(connection, email, login)

    def get(self, user: UserRecord, href: str) -> Served | None:
        """The event at ``href`` on ``user``'s calendar, or None when it is not there."""
        return self.multiget(user, [href]).get(href)

    def multiget(self, user: UserRecord, hrefs: Iterable[str]) -> dict[str, Served]:
        """The events among ``hrefs`` that the calendar offers, by href (calendar-multiget)."""
        wanted = list(hrefs)
        with self.reading() as session:
            records = calendar_service.get_offered_by_hrefs(session, user=user, hrefs=wanted)
            entries = calendar_service.list_offered_entries(
                session, user=user, hrefs=wanted, variant=RENDERING_VARIANT)
        return {event.href: event for event in self._served(records, entries)}

    def query(self, user: UserRecord, start: datetime | None, end: datetime | None) -> list[Served]:
        """Events overlapping [start, end) (None: unbounded), by start (calendar-query, RFC 4791 9.9)."""
        with self.reading() as session:
            records = calendar_service.list_offered_between(session, user=user, start=start, end=end)
            entries = calendar_service.list_offered_entries(
                session, user=user, start=start, end=end, variant=RENDERING_VARIANT)
        return self._served(records, entries)

    def _served(self, records: list[ActivityRecord], entries: list[OfferedEntry]) -> list[Served]:
        """``records`` served with their cached texts; the others rendered now and kept."""
        cached = {(e.activity_id, e.change_pos): e.body for e in entries if e.body is not None}
        events, rendered = [], []
        for record in records:
            text = cached.get((record.id, record.change_pos))
            event = served(record, text)
            if text is None:
                rendered.append(cache_row(record, event.text))
            events.append(event)
        self.keep_renderings(rendered)
        return events

    def changes(self, user: UserRecord, token: str) -> tuple[str, tuple[str, ...]]:
        """(the current sync token, hrefs changed or deleted since ``token``; all for "").

        Raises:
            Refusal: 403 DAV:valid-sync-token for a token not valid here (RFC 6578 3.2).
        """
        position = tokens.position_of(token, user)
        self.note_sync(user.id)
        with self.reading_rows() as connection:
            if position is None:
                hrefs = tuple(calendar_service.list_offered_hrefs(connection, user=user))
            else:
                hrefs = calendar_service.changes_since(connection, user=user, position=position).hrefs
        return tokens.sync_token(user), hrefs

    def report(self, email: str, request: reports.ReportRequest, *, href_prefix: str,
               login: tuple[int, int]) -> reports.Answer | None:
        """A sync-collection, multiget or calendar-query answered from SQL (storage_plugin.reports).

        The calendar user's row is read in the same transaction as the answer:
        ``login`` is the (user id, credentials version) that the caller's
        password check vouched for, and a row that no longer shows them (CalDAV
        disabled, a new password) gives None, so that a disable acts at once.

        Raises:
            Refusal: 403 DAV:valid-sync-token for a sync token not valid here.
        """
        with self.reading_rows() as connection:
            user = _current_user(connection, email, login)
            if user is None:
                return None
            if request.kind != "sync":
                return reports.answer_report(connection, request, user=user, href_prefix=href_prefix)
            position = tokens.position_of(request.token, user)
            token = tokens.sync_token(user)
            if position == user.sync_pos:  # the usual poll: nothing to look up
                answer = reports.answer_unchanged_sync(request, href_prefix=href_prefix, token=token)
            else:
                changed = None if position is None else calendar_service.changes_since(
                    connection, user=user, position=position).hrefs
                answer = reports.answer_report(connection, request, user=user, href_prefix=href_prefix,
                                               changed=changed, token=token)
        self.note_sync(user.id)  # after the read transaction: it never holds two connections
        return answer

    def uid_taken(self, user: UserRecord, uid: str, *, except_href: str | None) -> bool:
        """True when another event of ``user``'s calendar uses ``uid`` (RFC 4791 5.3.2.1 no-uid-conflict)."""
        with self.reading() as session:
            return calendar_service.uid_taken(session, uid=uid, owner_id=user.id, except_href=except_href)

    # --- writing ------------------------------------------------------------
    def put(self, user: UserRecord, href: str, body: bytes, *,
            if_match: str | None = None, if_none_match: bool = False) -> PutResult:
        """Create or replace the event at ``href`` from a client's body (RFC 4791 5.3.2).

        Preconditions (If-Match, If-None-Match: *) are checked under the calendar's
        write lock, so of two concurrent writers the second gets 412.

        Raises:
            Refusal: 400 (not UTF-8 once unfolded, not one storable event, over an input limit of
                storage_plugin.limits), 403 (recurring event refused, read-only
                calendar), 409 (UID used by another event), 412 (precondition
                failed), 503 (database unavailable).
        """
        decoded, reading = self._read_body(user, href, body)
        text = decoded.text
        if user.read_only:
            raise Refusal(403, READ_ONLY_MESSAGE, "D:need-privileges")
        precondition = _precondition(if_match, if_none_match)
        try:
            with self.writing() as session:
                stored, old = calendar_service.apply_calendar_edit(
                    session, user=user, href=href, draft=reading.draft, now=self._clock(),
                    precondition=precondition)
                if old is not None and stored.change_pos == old.change_pos:
                    # Nothing the CRM tracks changed (say, only DTSTAMP): the served text and
                    # its ETag stay; the ETag is the client's only if it sent those very bytes.
                    verbatim = text if stored.verbatim_text == text else None
                    result = served(stored)
                else:
                    verbatim = text if _kept_whole(reading, stored, user) else None
                    rendering_service.keep_client_text(
                        session, activity_id=stored.id, change_pos=stored.change_pos, text=verbatim)
                    result = served(_with_text(stored, verbatim))
                # The client fetches this version next: keep it rendered.
                rendering_service.store_renderings(session, [cache_row(stored, result.text)])
        except ReadOnlyCalendarError as error:
            raise Refusal(403, READ_ONLY_MESSAGE, "D:need-privileges") from error
        except ConflictError as error:
            raise Refusal(409, f"{error}.", "C:no-uid-conflict") from error
        except StaleRevisionError as error:
            raise Refusal(412, f"Precondition failed: {error}.") from error
        # A strong ETag only names the very bytes sent: not a text whose folds were moved.
        strong = verbatim is not None and decoded.exact
        return PutResult(result, created=old is None, etag=result.etag if strong else None)

    def _read_body(self, user: UserRecord, href: str, body: bytes
                   ) -> tuple[ical_lines.DecodedBody, from_ical.EventReading]:
        """The client's text (unfolded as octets before decoding, ical_lines.decode_body) and its
        reading, made and checked against the input limits (storage_plugin.limits) before any
        transaction opens."""
        try:
            decoded = ical_lines.decode_body(body)
        except UnicodeDecodeError as error:
            raise Refusal(400, "The event is not UTF-8 text.") from error
        text = decoded.text
        limit = limits.Limits(max_attendees=self._settings.max_attendees, max_alarms=self._settings.max_alarms)
        try:
            limits.check_href(href)
            return decoded, from_ical.read_event(text, default_timezone=user.timezone,
                                                 recurrence=self._settings.recurrence, limit=limit)
        except limits.LimitError as error:
            raise Refusal(error.status, f"The event cannot be stored: {error}.", error.condition) from error
        except rules.RecurrenceRefusedError as error:
            raise Refusal(403, str(error), "C:supported-calendar-component") from error
        except from_ical.InvalidEventError as error:
            raise Refusal(400, f"The event cannot be stored: {error}.", "C:valid-calendar-data") from error
        except Exception as error:  # noqa: BLE001 - untrusted input: a parser fault is still the body's
            logger.info("unreadable event: %s: %s", error.__class__.__name__, error)
            raise Refusal(400, "The event cannot be stored: it is not valid iCalendar.",
                          "C:valid-calendar-data") from error

    def delete(self, user: UserRecord, href: str, *, if_match: str | None = None) -> None:
        """Delete the event at ``href`` (the CRM activity goes with it).

        Raises:
            Refusal: 403 read-only calendar, 404 no such event, 412 precondition failed, 503.
        """
        if user.read_only:
            raise Refusal(403, READ_ONLY_MESSAGE, "D:need-privileges")
        try:
            with self.writing() as session:
                calendar_service.delete_from_calendar(
                    session, user=user, href=href, precondition=_precondition(if_match, False))
        except NotFoundError as error:
            raise Refusal(404, NO_SUCH_EVENT_MESSAGE) from error
        except StaleRevisionError as error:
            raise Refusal(412, f"Precondition failed: {error}.") from error
        except ReadOnlyCalendarError as error:
            raise Refusal(403, READ_ONLY_MESSAGE, "D:need-privileges") from error

    def set_calendar_props(self, user: UserRecord, props: Mapping[str, str]) -> None:
        """Keep the dead properties (colour, order) clients PROPPATCH onto the calendar."""
        with self.writing() as session:
            user_service.set_calendar_props(session, user_id=user.id, props=props)

    def prepare_renderings(self) -> bool:
        """Give every event a new ETag once when the renderer's output changed (RENDER_VERSION).

        Called at start-up; True when positions moved.
        """
        with self.writing() as session:
            return rendering_service.ensure_renderer_version(session, name=RENDERER_NAME, version=RENDER_VERSION)

    def keep_renderings(self, rendered: list[Rendering]) -> None:
        """Store texts rendered for an answer, in their own short transaction.

        Best effort: a busy or failing database only means rendering again next time.
        """
        if not rendered:
            return
        try:
            with self._write_sessions.begin() as session:
                rendering_service.store_renderings(session, rendered)
        except (OperationalError, PoolTimeoutError, IntegrityError) as error:  # busy, down, or just deleted
            logger.info("rendering cache not updated: %s", error.__class__.__name__)

    def note_sync(self, user_id: int) -> None:
        """Record "last sync seen" (for `caldav status`) at most once a minute per user."""
        now = time.monotonic()
        if now - self._sync_seen.get(user_id, -SYNC_SEEN_INTERVAL) < SYNC_SEEN_INTERVAL:
            return
        self._sync_seen[user_id] = now
        try:
            with self._write_sessions.begin() as session:
                user_service.record_sync_seen(session, user_id=user_id, now=self._clock())
        except (OperationalError, PoolTimeoutError):  # busy or down: the sync itself matters more
            logger.warning("could not record the sync time of user %s", user_id)


def _current_user(db: Session | Connection, email: str, login: tuple[int, int] | None) -> UserRecord | None:
    """The calendar user of ``email``, if CalDAV is on and (with ``login``) the login still holds."""
    user = calendar_service.get_calendar_user(db, email=email)
    if user is None or (login is not None and (user.id, user.credentials_version) != login):
        return None
    return user


def served(record: ActivityRecord, text: str | None = None) -> Served:
    """The served form of ``record``: one text (``text`` when cached), and the ETag of that text."""
    start = int(record.starts_at.timestamp())
    return Served(
        href=record.href, uid=record.uid, etag=tokens.etag_for(record.change_pos),
        text=served_text(record) if text is None else text,
        last_modified=format_datetime(record.updated_at, usegmt=True),
        time_range=(start, max(int(record.ends_at.timestamp()), start + 1)),
    )


def _with_text(record: ActivityRecord, verbatim: str | None) -> ActivityRecord:
    return replace(record, verbatim_text=verbatim)


def _kept_whole(reading: from_ical.EventReading, stored: ActivityRecord, user: UserRecord) -> bool:
    """True when serving the client's bytes shows exactly what the CRM stored.

    Not when the CRM dropped something (a second alarm, an unknown TZID: the
    reading's losses), put the owner in place of another ORGANIZER, or kept
    a participant the client removed (SPEC 3.6: it comes back on the next sync).
    """
    if reading.losses:
        return False
    if reading.organizer is not None and reading.organizer != user.email.lower():
        return False
    sent = {attendee.email.strip().lower() for attendee in reading.draft.attendees}
    return all(participant.email.lower() in sent for participant in stored.participants)


def _precondition(if_match: str | None, if_none_match: bool) -> calendar_service.Precondition:
    """The client's If-Match / If-None-Match, re-checked under the calendar lock."""
    if if_match is None or if_match.strip() == "*":
        return calendar_service.Precondition(absent=if_none_match, exists=bool(if_match))
    return calendar_service.Precondition(absent=if_none_match, change_pos=tokens.change_pos_of(if_match))
