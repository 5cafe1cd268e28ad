"""The calendar rules applied on the CalDAV side, each with one home (SPEC 3).

The window and attendee-deletion rules act on CRM data and live in
crm_model.services; the rules here decide what a client's event becomes and
how the CRM's fields are written back. Every function is pure.

Layer: storage_plugin (pure).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

# --- SPEC 3.4: no recurrence ------------------------------------------------

RECURRENCE_PROPERTIES = frozenset({"RRULE", "RDATE", "EXDATE", "RECURRENCE-ID"})
RECURRENCE_REJECT = "reject"
RECURRENCE_FIRST_OCCURRENCE = "first-occurrence"
RECURRENCE_REFUSAL = (
    "Recurring events are not supported by the CRM calendar: CRM activities are single "
    "occurrences. Create each occurrence as its own event."
)


class RecurrenceRefusedError(ValueError):
    """A client sent a recurring event and the server is set to refuse them (SPEC 3.4)."""


def check_recurrence(events_have_recurrence: bool, policy: str) -> None:
    """Refuse a recurring event unless the policy keeps its first occurrence (SPEC 3.4).

    "Recurring" means RRULE, RDATE, EXDATE or RECURRENCE-ID overrides, or more
    than one VEVENT in the resource (RFC 4791 4.1: one resource holds one
    series). Any policy other than RECURRENCE_FIRST_OCCURRENCE refuses, so an
    unknown setting fails safe: nothing is stored.

    Raises:
        RecurrenceRefusedError: with the message the user sees (HTTP 403).
    """
    if events_have_recurrence and policy != RECURRENCE_FIRST_OCCURRENCE:
        raise RecurrenceRefusedError(RECURRENCE_REFUSAL)


# --- SPEC 3.3: first alarm only ---------------------------------------------

SERVED_ALARM_ACTION = "DISPLAY"  # the one reminder is always served as ACTION:DISPLAY
SERVED_ALARM_DESCRIPTION = "Reminder"  # used when the kept alarm has no DESCRIPTION


def is_real_alarm(action: str | None) -> bool:
    """Apple's ACTION:NONE "no alert" placeholder is not an alarm (SPEC 3.3).

    macOS/iOS write ``ACTION:NONE`` with ``TRIGGER;VALUE=DATE-TIME:19760401T005545Z``
    and ``X-APPLE-DEFAULT-ALARM:TRUE`` to mean "no alert" (see
    /work/shared/clients/ios-caldav.md section 6). A VALARM without ACTION is
    counted as a (display) alarm.
    """
    return (action or SERVED_ALARM_ACTION).upper() != "NONE"


def keep_first_alarm(alarms: Sequence[object], actions: Sequence[str | None]) -> object | None:
    """Only the first real VALARM becomes the CRM reminder; later ones are dropped (SPEC 3.3)."""
    for alarm, action in zip(alarms, actions, strict=True):
        if is_real_alarm(action):
            return alarm
    return None


def seconds_before_start(
    trigger: timedelta | datetime, *, related_end: bool, start: datetime, end: datetime
) -> float:
    """How long before the start a VALARM fires, in seconds (RFC 5545 3.8.6.3).

    Relative triggers count from the start (or from the end with RELATED=END);
    absolute triggers (VALUE=DATE-TIME) are a moment in time. Negative values
    fire after the start.
    """
    if isinstance(trigger, datetime):
        fire_at = trigger
    else:
        fire_at = (end if related_end else start) + trigger
    return (start - fire_at).total_seconds()


def minutes_before_start(
    trigger: timedelta | datetime, *, related_end: bool, start: datetime, end: datetime
) -> int:
    """Convert any VALARM trigger into whole minutes before the start (SPEC 3.3).

    The CRM keeps whole minutes; a trigger with seconds is rounded.
    """
    return round(seconds_before_start(trigger, related_end=related_end, start=start, end=end) / 60)


# --- SPEC 3.8: privacy ------------------------------------------------------

PRIVATE_CLASSES = frozenset({"PRIVATE", "CONFIDENTIAL"})


def is_private(class_value: str | None) -> bool:
    """A client's CLASS value -> the activity's private flag (SPEC 3.8).

    CLASS:PRIVATE and CLASS:CONFIDENTIAL (RFC 5545 3.8.1.3) both mean the
    event is not for everyone's eyes; PUBLIC, other values and no CLASS are
    not private.
    """
    return (class_value or "").strip().upper() in PRIVATE_CLASSES


def class_line(private: bool, client_sent_class: bool) -> str | None:
    """The activity's private flag -> the CLASS line served (SPEC 3.8).

    A private activity is served CLASS:PRIVATE. A public one is served
    CLASS:PUBLIC only when the client had sent a CLASS itself (so un-marking
    an event private on the client reaches the other devices), else no CLASS
    at all (PUBLIC is the RFC 5545 default).
    """
    if private:
        return "CLASS:PRIVATE"
    if client_sent_class:
        return "CLASS:PUBLIC"
    return None


# --- SPEC 3.11: time zones --------------------------------------------------


def kept_tzid(tzid: str | None) -> str | None:
    """The TZID an event keeps, or None when it is served in UTC (SPEC 3.11).

    Only an IANA zone name that this server can convert with (zoneinfo) is
    kept: the served local times must match the client's VTIMEZONE, which is
    served back with them. Windows names ("W. Europe Standard Time") and
    custom zones keep their instant but are served in UTC.
    """
    if not tzid:
        return None
    try:
        ZoneInfo(tzid)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        return None
    return tzid


def floating_zone(user_timezone: str) -> tzinfo:
    """The zone floating times (no TZID, no Z) are read and served in (SPEC 3.11).

    That is the user's CRM time zone; an unknown zone name falls back to UTC.
    """
    try:
        return ZoneInfo(user_timezone)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        return UTC
