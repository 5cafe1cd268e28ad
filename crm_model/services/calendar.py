"""What a user's calendar offers, and the edits clients make to it.

Every query is bounded by its answer: membership (SPEC 3.1, 3.2, 3.9) is one
SQL condition, time ranges and hrefs are pushed into the query, and changes
since a sync position come from the change log.

Layer: crm_model.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Any

from sqlalchemy import ColumnElement, Connection, Select, and_, bindparam, exists, func, or_, select, true
from sqlalchemy.exc import DataError
from sqlalchemy.orm import Session, selectinload

from crm_model.base import UtcDateTime
from crm_model.db import connection_of
from crm_model.errors import ConflictError, NotFoundError, ReadOnlyCalendarError, StaleRevisionError
from crm_model.models import (
    Activity,
    ActivityRendering,
    CalendarChange,
    InitialWindowEntry,
    User,
)
from crm_model.records import ActivityDraft, ActivityRecord, ChangeSet, OfferedEntry, UserRecord
from crm_model.services.mapping import activity_record, user_record
from crm_model.services.participants import merge_client_attendees

logger = logging.getLogger(__name__)
# What reading a row whose stored values no Python type holds raises (ValueError:
# SQLite's text timestamps; DataError: psycopg's loaders, e.g. 'infinity').
_UNREADABLE = (ValueError, OverflowError, DataError)
SOURCE_CRM = "crm"
SOURCE_CALDAV = "caldav"
_CHUNK = 500  # hrefs per IN (...) list; keeps statements small on both databases
_DRAFT_FIELDS = (
    "title", "starts_at", "ends_at", "all_day", "tzid", "floating", "location",
    "description", "private", "reminder_minutes",
)


def offered_condition(user: UserRecord) -> ColumnElement[bool]:
    """SQL condition: the activity is on ``user``'s calendar."""
    return _offered(user.id, user.synced_types, user.window_pos)


def _offered(owner: Any, types: Any, window_pos: Any, *, owner_column: Any = None) -> ColumnElement[bool]:
    """The membership rule, for values or bound parameters.

    Owned by the user, of a synced type, and either in the initial window fixed
    at T, edited after T, or made by a client. "Edited" is ``edited_pos`` (the
    activity's own data or participants), not ``change_pos``: renaming the owner
    or a contact moves change_pos but must not pull old activities in (SPEC 3.2).
    """
    # A correlated EXISTS is one primary-key probe per candidate row; an IN list
    # would read the whole initial window (up to 2,000 rows) on every request.
    in_window = exists().where(InitialWindowEntry.user_id == owner, InitialWindowEntry.activity_id == Activity.id)
    return and_(
        (Activity.owner_id if owner_column is None else owner_column) == owner,
        Activity.type.in_(types),
        or_(Activity.edited_pos > window_pos, Activity.source == SOURCE_CALDAV, in_window),
    )


# Built once: every request reads its calendar user, and building a statement
# costs more than SQLite takes to run it.
_USER_BY_EMAIL = select(*User.__table__.columns).where(User.email == bindparam("email"))
_CHANGES_SINCE = (
    select(CalendarChange.href)
    .where(CalendarChange.user_id == bindparam("user_id"), CalendarChange.pos > bindparam("position"))
    .order_by(CalendarChange.pos)
)


def get_calendar_user(db: Session | Connection, *, email: str) -> UserRecord | None:
    """The enabled user whose calendar this is, read fresh (positions, settings)."""
    user = connection_of(db).execute(_USER_BY_EMAIL, {"email": email.lower()}).one_or_none()  # a plain row
    return user_record(user) if user is not None and user.caldav_enabled else None


def lock_calendar(session: Session, *, user_id: int) -> None:
    """Serialise writers of one calendar (phone and laptop PUTting at once).

    PostgreSQL: the user's row lock; SQLite writers are already serialised by BEGIN IMMEDIATE.
    """
    session.execute(select(User.id).where(User.id == user_id).with_for_update())


def list_offered_hrefs(db: Session | Connection, *, user: UserRecord) -> list[str]:
    """Hrefs of everything on the calendar (an initial sync-collection)."""
    return list(connection_of(db).scalars(select(Activity.href).where(offered_condition(user))).all())


def count_offered(session: Session, *, user: UserRecord) -> int:
    """How many activities the calendar offers."""
    return int(session.scalar(select(func.count()).where(offered_condition(user))) or 0)


def _load(session: Session, condition: ColumnElement[bool]) -> list[ActivityRecord]:
    """The activities matching ``condition``, by start, loaded whole.

    A row whose stored values cannot be read (a timestamp another program wrote as
    'garbage' in SQLite, 'infinity' in PostgreSQL) is left out and logged, so that
    it never fails the answer for the others: then the rows are read one by one.
    """
    query = (select(Activity).where(condition).options(selectinload(Activity.participants))
             .order_by(Activity.starts_at, Activity.id))
    try:
        return [activity_record(row) for row in session.scalars(query).all()]
    except _UNREADABLE:
        ids = session.scalars(select(Activity.id).where(condition).order_by(Activity.starts_at, Activity.id)).all()
    records = []
    for activity_id in ids:
        try:
            row = session.scalars(query.where(Activity.id == activity_id)).one_or_none()
        except _UNREADABLE as error:
            logger.warning("activity %s cannot be read and is left out: %s", activity_id, error.__class__.__name__)
            continue
        if row is not None:
            records.append(activity_record(row))
    return records


def get_offered_by_hrefs(
    session: Session, *, user: UserRecord, hrefs: Iterable[str]
) -> list[ActivityRecord]:
    """The offered activities among ``hrefs`` (a multiget); unknown hrefs are left out."""
    return _load_offered_in(session, user, Activity.href, hrefs)


def get_offered_by_ids(db: Session | Connection, *, user: UserRecord, ids: Iterable[str]) -> list[ActivityRecord]:
    """The offered activities among ``ids``, loaded whole (what a listing could not serve).

    On a plain Connection, an ORM Session joins its transaction for the load and
    leaves it open (SQLAlchemy's join_transaction_mode "rollback_only": the
    Session neither commits it nor, on close, ends it).
    """
    if isinstance(db, Session):
        return _load_offered_in(db, user, Activity.id, ids)
    with Session(bind=db, join_transaction_mode="rollback_only") as session:
        return _load_offered_in(session, user, Activity.id, ids)


def _load_offered_in(
    session: Session, user: UserRecord, column: Any, values: Iterable[str]
) -> list[ActivityRecord]:
    """Offered activities whose ``column`` is among ``values``, one IN list per _CHUNK values."""
    wanted = list(dict.fromkeys(values))
    records: list[ActivityRecord] = []
    for first in range(0, len(wanted), _CHUNK):
        records += _load(session, and_(offered_condition(user), column.in_(wanted[first:first + _CHUNK])))
    return records


def overlapping(start: Any, end: Any) -> ColumnElement[bool]:
    """SQL condition: the activity overlaps [start, end) (a calendar-query time-range)."""
    condition: ColumnElement[bool] = true()
    if end is not None:
        condition = and_(condition, Activity.starts_at < end)
    if start is not None:
        # zero-length events at ``start`` overlap too (RFC 4791 9.9)
        condition = and_(condition, or_(Activity.ends_at > start, Activity.starts_at >= start))
    return condition


def list_offered_between(
    session: Session, *, user: UserRecord, start: datetime | None, end: datetime | None
) -> list[ActivityRecord]:
    """Offered activities overlapping [start, end), loaded whole."""
    return _load(session, and_(offered_condition(user), overlapping(start, end)))


def list_offered_entries(
    db: Session | Connection,
    *,
    user: UserRecord,
    hrefs: Iterable[str] | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
    variant: str | None = None,
) -> list[OfferedEntry]:
    """Href, id and change position of offered activities, with cached renderings of ``variant``.

    One query per 500 hrefs (or one for a time range or the whole calendar), no
    ORM objects: this is what sync, multiget and query answers are built from.
    """
    wanted = None if hrefs is None else list(dict.fromkeys(hrefs))
    if wanted == []:
        return []  # a poll with nothing changed: no query at all
    query = _entries_query(wanted is not None, start is not None, end is not None, variant is not None)
    params = {"owner": user.id, "types": list(user.synced_types), "window_pos": user.window_pos,
              "start": start, "end": end, "variant": variant}
    # Core execution: plain rows, no ORM bookkeeping.
    # All rows at once (fetchall): a row per fetchone cost a fifth of a multiget.
    connection = connection_of(db)
    if wanted is None:
        return [OfferedEntry(*row) for row in connection.execute(query, params).all()]
    entries: list[OfferedEntry] = []
    for first in range(0, len(wanted), _CHUNK):
        rows = connection.execute(query, {**params, "hrefs": wanted[first:first + _CHUNK]}).all()
        entries += [OfferedEntry(*row) for row in rows]
    return entries


@cache
def _entries_query(by_hrefs: bool, with_start: bool, with_end: bool, with_variant: bool) -> Select[Any]:
    """The listing statement of one shape, built once (building costs more than running it)."""
    columns: list[Any] = [Activity.href, Activity.id, Activity.change_pos]
    if with_variant:
        columns.append(ActivityRendering.body)
    # An href is unique per owner, and leads the (href, owner_id) unique index:
    # that index alone bounds the work by the answer. "+ 0"
    # (the usual planner hint on both databases) keeps PostgreSQL from also
    # reading the owner's whole calendar off the owner index to AND it in.
    owner_column = Activity.owner_id + 0 if by_hrefs else Activity.owner_id
    query = select(*columns).where(
        _offered(bindparam("owner"), bindparam("types", expanding=True), bindparam("window_pos"),
                 owner_column=owner_column),
        overlapping(bindparam("start", type_=UtcDateTime) if with_start else None,
                    bindparam("end", type_=UtcDateTime) if with_end else None),
    )
    if by_hrefs:
        query = query.where(Activity.href.in_(bindparam("hrefs", expanding=True)))
    if with_variant:
        query = query.outerjoin(ActivityRendering, and_(
            ActivityRendering.activity_id == Activity.id,
            ActivityRendering.change_pos == Activity.change_pos,
            ActivityRendering.variant == bindparam("variant"),
        ))
    if with_start or with_end:
        query = query.order_by(Activity.starts_at, Activity.id)
    return query


def changes_since(db: Session | Connection, *, user: UserRecord, position: int) -> ChangeSet:
    """Hrefs changed or deleted after ``position``; cost follows the number of changes."""
    rows = connection_of(db).scalars(_CHANGES_SINCE, {"user_id": user.id, "position": position}).all()
    return ChangeSet(position=user.sync_pos, hrefs=tuple(dict.fromkeys(rows)))


def uid_taken(session: Session, *, uid: str, owner_id: int, except_href: str | None = None) -> bool:
    """True when an activity of calendar ``owner_id`` (other than the one at ``except_href``) uses ``uid``.

    UIDs are unique per calendar (RFC 4791 5.3.2.1; the database's
    ``uq_activities_uid_owner_id``): another user's calendar may hold the same UID.
    """
    query = select(Activity.id).where(Activity.uid == uid, Activity.owner_id == owner_id)
    if except_href is not None:
        query = query.where(Activity.href != except_href)
    return session.scalar(query.limit(1)) is not None


@dataclass(frozen=True)
class Precondition:
    """What the client believed about the stored version (If-Match / If-None-Match).

    Checked again after the calendar lock is taken, so that of two concurrent
    writers from two server processes the second one fails instead of silently
    overwriting the first (SPEC 6).
    """

    absent: bool = False
    exists: bool = False
    change_pos: int | None = None

    def check(self, activity: Activity | None) -> None:
        """Raise StaleRevisionError when the stored version is not the expected one."""
        if self.absent and activity is not None:
            raise StaleRevisionError("the event already exists")
        if self.exists and activity is None:
            raise StaleRevisionError("the event no longer exists")
        if self.change_pos is not None and (activity is None or activity.change_pos != self.change_pos):
            raise StaleRevisionError("the event changed since the client read it")


def apply_calendar_edit(
    session: Session,
    *,
    user: UserRecord,
    href: str,
    draft: ActivityDraft,
    now: datetime,
    precondition: Precondition = Precondition(),
) -> tuple[ActivityRecord, ActivityRecord | None]:
    """Create or update the activity at ``href`` from a client's event.

    Returns the stored record and the record it replaced. A PUT that changes
    nothing the CRM models (an alarm acknowledged) keeps ``updated_at``.
    """
    if user.read_only:
        raise ReadOnlyCalendarError("this calendar is CRM-to-calendar only")
    lock_calendar(session, user_id=user.id)
    # hrefs and UIDs name resources within this calendar only: another user's
    # event at the same href or with the same UID is neither seen nor named.
    activity = session.scalars(
        select(Activity).where(Activity.owner_id == user.id, Activity.href == href)
        .options(selectinload(Activity.participants))
    ).one_or_none()
    precondition.check(activity)
    old = activity_record(activity) if activity is not None else None
    if activity is None:
        if uid_taken(session, uid=draft.uid, owner_id=user.id):
            raise ConflictError(f"UID {draft.uid} is already used by another event of this calendar")
        activity = _new_client_activity(user, href=href, uid=draft.uid, now=now)
        session.add(activity)
    elif activity.uid != draft.uid:
        raise ConflictError("an event cannot change its UID")
    changed = old is None
    for name in _DRAFT_FIELDS:
        if getattr(activity, name) != getattr(draft, name):
            setattr(activity, name, getattr(draft, name))
            changed = True
    added = _merge_attendees(session, activity, draft, organizer=user.email)
    if changed or added:
        activity.updated_at = now
    session.flush()
    session.refresh(activity, ["change_pos"])  # written by the tracking trigger
    return activity_record(activity), old


def _merge_attendees(session: Session, activity: Activity, draft: ActivityDraft, *, organizer: str) -> bool:
    """Add the client's new attendees and keep its extras; True when participants were added.

    The participant rows are written first: each one's tracking trigger updates the
    activity's row, which SQLite rewrites whole, and the extras hold every ATTENDEE
    line (for 8,000 attendees this order took SQLite's statement time from 2.0 s to 0.3 s).
    """
    count_before = len(activity.participants)
    merge_client_attendees(session, activity, draft.attendees, organizer=organizer)
    added = len(activity.participants) != count_before
    if added and activity.client_extras != draft.client_extras:
        session.flush()
    activity.client_extras = draft.client_extras
    return added


def _new_client_activity(user: UserRecord, *, href: str, uid: str, now: datetime) -> Activity:
    kind = "meeting" if "meeting" in user.synced_types else user.synced_types[0]
    return Activity(
        id=f"cal-{uuid.uuid4().hex[:16]}", owner_id=user.id, type=kind, source=SOURCE_CALDAV,
        uid=uid, href=href, created_at=now, updated_at=now, participants=[],
    )


def delete_from_calendar(
    session: Session, *, user: UserRecord, href: str, precondition: Precondition = Precondition()
) -> None:
    """Delete the activity a client deleted; raises NotFoundError when it is not offered."""
    if user.read_only:
        raise ReadOnlyCalendarError("this calendar is CRM-to-calendar only")
    lock_calendar(session, user_id=user.id)
    activity = session.scalars(
        select(Activity).where(offered_condition(user), Activity.href == href)
    ).one_or_none()
    if activity is None:
        raise NotFoundError(href)
    precondition.check(activity)
    session.delete(activity)
    session.flush()
