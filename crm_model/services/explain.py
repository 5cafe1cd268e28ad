""""Why is this activity not on her phone?" in one plain sentence (SPEC 5, `explain`).

Layer: crm_model.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from crm_model.errors import NotFoundError
from crm_model.models import Activity, CalendarChange, InitialWindowEntry, User
from crm_model.services import window
from crm_model.services.calendar import SOURCE_CALDAV
from crm_model.services.mapping import split_types
from crm_model.services.users import get_user


@dataclass(frozen=True)
class Explanation:
    """Whether the activity is on the calendar, and the rule that decides it."""

    on_calendar: bool
    sentence: str


def explain_activity(session: Session, *, email: str, activity_id: str) -> Explanation:
    """Apply the calendar rules (SPEC 3.1, 3.2, 3.9) to one activity and say which one decides.

    Raises NotFoundError for an unknown user or an activity that never existed.
    """
    user = get_user(session, email=email)
    activity = session.get(Activity, activity_id)
    if activity is None:
        if session.scalar(select(CalendarChange.id).where(CalendarChange.activity_id == activity_id).limit(1)):
            return Explanation(False, f"Activity {activity_id} is not on {user.email}'s calendar: it was deleted.")
        raise NotFoundError(f"no activity with id {activity_id}")
    subject = f"Activity {activity_id} ({activity.title!r})"
    if not user.caldav_enabled:
        return Explanation(False, f"{subject} is not on {user.email}'s calendar: CalDAV is disabled for this user.")
    if activity.owner_id != user.id:
        return Explanation(False, f"{subject} is not on {user.email}'s calendar: it is owned by "
                                  f"{activity.owner.email}, and calendars show only their owner's activities.")
    types = split_types(user.synced_types)
    if activity.type not in types:
        return Explanation(False, f"{subject} is not on {user.email}'s calendar: its type {activity.type!r} "
                                  f"is not synced (synced types: {', '.join(types)}).")
    if activity.source == SOURCE_CALDAV:
        return Explanation(True, f"{subject} is on {user.email}'s calendar: it was created from a calendar app.")
    # edited_pos, not change_pos: an owner or contact rename does not put it on the calendar.
    if activity.edited_pos > user.window_pos:
        return Explanation(True, f"{subject} is on {user.email}'s calendar: it was created or changed in the "
                                 f"CRM after CalDAV was enabled.")
    in_window = session.get(InitialWindowEntry, (user.id, activity.id))
    if in_window is not None:
        return Explanation(True, f"{subject} is on {user.email}'s calendar: it is in the initial window "
                                 f"fixed when CalDAV was enabled.")
    return Explanation(False, _outside_window(subject, user, activity))


def _outside_window(subject: str, user: User, activity: Activity) -> str:
    """Which bound of the initial window keeps ``activity`` off (SPEC 3.2), or the cap.

    All-day activities are compared and named as dates in the user's time zone
    (window.in_window_condition), timed ones as instants.
    """
    where = f"{subject} is not on {user.email}'s calendar:"
    unchanged = "and has not changed since CalDAV was enabled."
    starts = activity.starts_at
    if activity.all_day:
        day = starts.date()
        first = None if user.window_start is None else window.local_date(user.window_start, user.timezone)
        last = None if user.window_end is None else window.local_date(user.window_end, user.timezone)
        if first is not None and day < first:
            return (f"{where} it is an all-day activity on {day:%Y-%m-%d}, before the initial window, which "
                    f"begins on {first:%Y-%m-%d} ({user.timezone}), {unchanged}")
        if last is not None and day > last:
            return (f"{where} it is an all-day activity on {day:%Y-%m-%d}: it starts after the initial window, "
                    f"which ends on the enable date {last:%Y-%m-%d} ({user.timezone}), {unchanged}")
    else:
        if user.window_start is not None and starts < user.window_start:
            return (f"{where} it starts before the initial window, which begins "
                    f"{user.window_start:%Y-%m-%d %H:%M} UTC, {unchanged}")
        if user.window_end is not None and starts > user.window_end:
            return (f"{where} it starts after the initial window, which ends at the enable date "
                    f"{user.window_end:%Y-%m-%d %H:%M} UTC, {unchanged}")
    return (f"{where} the initial window was already full (the cap keeps the earliest activities "
            f"only) and it has not changed since CalDAV was enabled.")
