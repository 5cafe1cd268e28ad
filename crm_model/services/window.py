"""The initial window (SPEC 3.2): which existing activities a newly enabled calendar offers,
and how a new window reaches devices as changes.

Timed activities are compared with the window as instants; all-day activities
(stored as midnight UTC of their first day, end exclusive) as dates in the
user's time zone: one on the first day of the window is in it wherever the
user lives, one on the enable date is in a window that ends at enable.

Layer: crm_model.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import ColumnElement, and_, delete, insert, or_, select, update
from sqlalchemy.orm import Session

from crm_model.models import Activity, CalendarChange, InitialWindowEntry, User
from crm_model.records import WindowPolicy
from crm_model.services.mapping import split_types, user_record

# An all-day activity's day begins at local midnight: at most 14 hours before
# (UTC+14) or 12 hours after (UTC-12) the midnight UTC it is stored at.
_LOCAL_MIDNIGHT_SPREAD = timedelta(hours=26)


def user_zone(name: str) -> ZoneInfo:
    """The user's IANA zone; UTC for a name this system does not know."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def window_start(enabled_at: datetime, user_timezone: str, months_back: int) -> datetime:
    """First day of the month ``months_back`` before ``enabled_at``'s month, in the user's zone.

    Returns the UTC instant of that day's local midnight.
    """
    zone = user_zone(user_timezone)
    local = enabled_at.astimezone(zone)
    month_index = local.year * 12 + (local.month - 1) - months_back
    first = datetime(month_index // 12, month_index % 12 + 1, 1, tzinfo=zone)
    return first.astimezone(UTC)


def local_date(moment: datetime, user_timezone: str) -> date:
    """The calendar date of the instant ``moment`` in the user's zone."""
    return moment.astimezone(user_zone(user_timezone)).date()


def _stored_day(day: date) -> datetime:
    """How an all-day activity on ``day`` is stored: midnight UTC of that date."""
    return datetime.combine(day, time(), UTC)


def in_window_condition(start: datetime, end: datetime | None, user_timezone: str) -> ColumnElement[bool]:
    """SQL condition: the activity starts within the window [start, end] (``end`` None: open).

    Timed activities: ``start <= starts_at <= end`` as instants. All-day
    activities: their date between the local dates of ``start`` and ``end``.
    """
    timed: ColumnElement[bool] = and_(Activity.all_day.is_(False), Activity.starts_at >= start)
    all_day: ColumnElement[bool] = and_(
        Activity.all_day.is_(True), Activity.starts_at >= _stored_day(local_date(start, user_timezone)))
    if end is not None:
        timed = and_(timed, Activity.starts_at <= end)
        last_day = local_date(end, user_timezone)
        all_day = and_(all_day, Activity.starts_at < _stored_day(last_day + timedelta(days=1)))
    return or_(timed, all_day)


def local_start(starts_at: datetime, all_day: bool, zone: ZoneInfo) -> datetime:
    """When an activity begins for the user: an all-day one at local midnight of its date."""
    return datetime.combine(starts_at.date(), time(), zone).astimezone(UTC) if all_day else starts_at


def _window_members(session: Session, user: User, start: datetime, end: datetime | None, cap: int) -> list[str]:
    """Ids of the ``cap`` activities that begin earliest (``local_start``) within the window.

    SQL orders by the stored start; the rows stored up to a day past the
    cap-th one are read too, since an all-day one among them may begin
    earlier for the user. Ties go by id.
    """
    query = (
        select(Activity.id, Activity.starts_at, Activity.all_day)
        .where(Activity.owner_id == user.id, Activity.type.in_(split_types(user.synced_types)),
               in_window_condition(start, end, user.timezone))
        .order_by(Activity.starts_at, Activity.id)
    )
    rows = {row.id: row for row in session.execute(query.limit(cap))}
    if len(rows) == cap and cap > 0:
        last = max(row.starts_at for row in rows.values())
        extra = query.where(Activity.starts_at >= last, Activity.starts_at <= last + _LOCAL_MIDNIGHT_SPREAD)
        rows.update((row.id, row) for row in session.execute(extra))
    zone = user_zone(user.timezone)
    ordered = sorted(rows.values(), key=lambda row: (local_start(row.starts_at, row.all_day, zone), row.id))
    return [row.id for row in ordered[:cap]]


@dataclass(frozen=True, slots=True)
class InitialSelection:
    """The initial window as of one moment: its bounds and its members, earliest first."""

    start: datetime  # UTC instant of the window's first local midnight
    end: datetime | None  # None: open-ended (CRM_CALDAV_WINDOW_END=none)
    members: list[str]  # activity ids, at most the cap


def select_initial_set(session: Session, user: User, *, now: datetime, policy: WindowPolicy) -> InitialSelection:
    """The activities a calendar enabled at ``now`` starts with: the one rule enable and preview share.

    Owned by ``user``, of a synced type, within [window_start, now or open],
    the ``policy.cap`` earliest of them. Reads only.
    """
    start = window_start(now, user.timezone, policy.months_back)
    end = now if policy.end_at_enable else None
    return InitialSelection(start, end, _window_members(session, user, start, end, policy.cap))


def fix_initial_window(session: Session, user: User, *, now: datetime, policy: WindowPolicy) -> int:
    """Record the fixed initial set as of ``now`` (time T, ``select_initial_set``) and return its size.

    Activities created or edited after T are recognised by an ``edited_pos``
    above ``window_pos`` (the user's position at T), so the set never has to be
    recomputed: deleting one member never pulls another old activity in, and
    renaming the owner or a contact (which moves only ``change_pos``) pulls
    nothing in either. Devices learn of the new set through the change log
    when the caller wraps this in ``membership_logged``.
    """
    selection = select_initial_set(session, user, now=now, policy=policy)
    members = selection.members
    session.execute(delete(InitialWindowEntry).where(InitialWindowEntry.user_id == user.id))
    if members:
        session.execute(
            insert(InitialWindowEntry),
            [{"user_id": user.id, "activity_id": activity_id} for activity_id in members],
        )
    session.flush()
    # One new position: T. Written in SQL so that no stale ORM value overwrites a
    # position taken later in this transaction.
    session.execute(
        update(User).where(User.id == user.id)
        .values(sync_pos=User.sync_pos + 1, window_pos=User.sync_pos + 1,
                window_start=selection.start, window_end=selection.end)
        .execution_options(synchronize_session=False)
    )
    session.expire(user, ["sync_pos", "window_pos", "window_start", "window_end"])
    return len(members)


def _offered_hrefs(session: Session, user: User) -> dict[str, str]:
    """Activity id -> href of everything on ``user``'s calendar now."""
    from crm_model.services.calendar import offered_condition  # calendar imports nothing of this module

    session.flush()
    rows = session.execute(select(Activity.id, Activity.href).where(offered_condition(user_record(user))))
    return {row.id: row.href for row in rows}


@contextmanager
def membership_logged(session: Session, user: User) -> Iterator[None]:
    """Write to the change log every activity that leaves or joins ``user``'s calendar in the block.

    A new initial window or other synced types change what the calendar
    offers without writing any activity, so the triggers record nothing.
    This appends one ``calendar_changes`` row (user, position, activity id,
    href) per activity whose membership differs before and after the block,
    all at one new position: a sync token issued before stays valid, and its
    next sync-collection (RFC 6578 3.2) reports the activities that left
    (404, no longer offered) and those that joined (200). The user's row is
    locked first, so no writer of this calendar commits in between. Nothing
    is written for a user never enabled (no device can hold a token) or when
    the set does not change. An exception in the block writes nothing.
    """
    if user.caldav_enabled_at is None:
        yield
        return
    session.execute(select(User.id).where(User.id == user.id).with_for_update())
    before = _offered_hrefs(session, user)
    yield
    after = _offered_hrefs(session, user)
    changed = {activity_id: before.get(activity_id) or after[activity_id]
               for activity_id in before.keys() ^ after.keys()}
    if not changed:
        return
    position = session.execute(
        update(User).where(User.id == user.id).values(sync_pos=User.sync_pos + 1).returning(User.sync_pos)
        .execution_options(synchronize_session=False)
    ).scalar_one()
    rows: list[dict[str, Any]] = [{"user_id": user.id, "pos": position, "activity_id": activity_id, "href": href}
                                  for activity_id, href in sorted(changed.items())]
    session.execute(insert(CalendarChange), rows)
    session.expire(user, ["sync_pos"])
