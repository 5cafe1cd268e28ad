""""Why is this activity not on her phone?" in one plain sentence (SPEC 5, `explain`).

Layer: crm_model.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from crm_model.errors import NotFoundError
from crm_model.models import Activity, CalendarChange, InitialWindowEntry
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


def _outside_window(subject: str, user, activity: Activity) -> str:  # type: ignore[no-untyped-def]
    where = f"{subject} is not on {user.email}'s calendar:"
    if user.window_start is not None and activity.starts_at < user.window_start:
        return (f"{where} it starts before the initial window, which begins "
                f"{user.window_start:%Y-%m-%d %H:%M} UTC, and has not changed since CalDAV was enabled.")
    if user.window_end is not None and activity.starts_at > user.window_end:
        return (f"{where} it starts after the initial window, which ends at the enable date "
                f"{user.window_end:%Y-%m-%d}, and has not changed since CalDAV was enabled.")
    return (f"{where} the initial window was already full (the cap keeps the earliest activities "
            f"only) and it has not changed since CalDAV was enabled.")
