"""The calendar rules applied on the CalDAV side, each with one home (SPEC 3).

The window and attendee-deletion rules act on CRM data and live in
crm_model.services; the rules here decide what a client's event becomes and
how the CRM's fields are written back. Every function is pure.

Layer: storage_plugin (pure).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta, tzinfo
from io import StringIO
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from dateutil.tz import tzical
from icalendar import Timezone
from icalendar.parser import dquote, unescape_backslash
from icalendar.prop import vRecur
from icalendar.timezone.windows_to_olson import WINDOWS_TO_OLSON

from crm_model.services.field_limits import TZID as TZID_LENGTH
from storage_plugin import ical_lines

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

MAX_DEFINITION_LINES = 2000  # a client's VTIMEZONE longer than this is not read (no real zone comes near)
# What dateutil's VTIMEZONE reader (dateutil.tz.tzical) accepts; other lines (X-, TZURL, ...) say nothing of offsets.
_SUB_DAY_PARTS = frozenset({"BYHOUR", "BYMINUTE", "BYSECOND", "BYYEARDAY", "BYWEEKNO"})
_DEFINITION_PROPERTIES = frozenset({
    "BEGIN", "END", "TZID", "DTSTART", "RRULE", "RDATE", "TZOFFSETFROM", "TZOFFSETTO", "TZNAME",
})


def named_zone(tzid: str | None) -> tzinfo | None:
    """The zone a TZID names by itself, or None (SPEC 3.11).

    An IANA name ("Europe/Berlin", through zoneinfo and tzdata), or a Windows
    name as Outlook sends it ("W. Europe Standard Time"), mapped to its IANA
    zone by icalendar's WINDOWS_TO_OLSON table (generated from Unicode CLDR's
    windowsZones.xml). Anything else ("Customized Time Zone", a path) is None.
    """
    if not tzid:
        return None
    for name in (tzid, WINDOWS_TO_OLSON.get(tzid)):
        try:
            return ZoneInfo(name) if name else None
        except (ZoneInfoNotFoundError, ValueError, OSError):
            continue
    return None


def windows_zone_name(tzid: str | None) -> str | None:
    """The IANA name of a Windows zone name that is not itself an IANA name, else None."""
    if not tzid or tzid not in WINDOWS_TO_OLSON:
        return None
    try:
        ZoneInfo(tzid)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        return WINDOWS_TO_OLSON[tzid]
    return None


def definition_tzid(block: Sequence[str]) -> str | None:
    """The TZID a client's VTIMEZONE (unfolded lines, BEGIN to END) defines, unescaped; None without one."""
    for line in block:
        if ical_lines.property_name(line) == "TZID":
            return str(unescape_backslash(ical_lines.value_of(line)))
    return None


def defined_zone(block: Sequence[str]) -> tzinfo | None:
    """A client's own VTIMEZONE (RFC 5545 3.6.5) as a zone, or None when it cannot be used.

    Read by dateutil's VTIMEZONE reader (``dateutil.tz.tzical``, as icalendar
    does), given only the lines it reads. Refused (None): a definition dateutil
    cannot read, one over MAX_DEFINITION_LINES lines, and one whose observances
    repeat other than on some days of each year (real zones change a few times
    a year; a MINUTELY rule would make every conversion walk millions of
    occurrences).
    """
    if len(block) > MAX_DEFINITION_LINES:
        return None
    lines = []
    for line in block:
        name = ical_lines.property_name(line)
        if name == "RRULE" and not _yearly(ical_lines.value_of(line)):
            return None
        if name in _DEFINITION_PROPERTIES:
            lines.append(f"{name}:{ical_lines.value_of(line)}")
    try:
        zone: tzinfo = tzical(StringIO("\n".join(lines))).get()
    except (ValueError, TypeError, IndexError, KeyError, OverflowError):
        return None
    return zone


def _yearly(rule: str) -> bool:
    """True for an RRULE (RFC 5545 3.3.10) that repeats at most on some days of each year."""
    try:
        parts = vRecur.from_ical(rule)
    except ValueError:
        return False
    return parts.get("FREQ") == ["YEARLY"] and not _SUB_DAY_PARTS & set(parts)


def zone_of(tzid: str | None, definitions: Sequence[Sequence[str]]) -> tzinfo | None:
    """The zone of a TZID: named (``named_zone``), else defined by one of the client's VTIMEZONEs.

    ``definitions`` are VTIMEZONE blocks as unfolded lines (the event's own,
    or those kept with the activity). None when neither gives a zone.
    """
    zone = named_zone(tzid)
    if zone is not None or not tzid:
        return zone
    for block in definitions:
        if definition_tzid(block) == tzid:
            return defined_zone(block)
    return None


def kept_tzid(tzid: str | None, definitions: Sequence[Sequence[str]] = ()) -> str | None:
    """The TZID an event keeps, or None when it is served in UTC (SPEC 3.11).

    Kept as the client sent it: an IANA name, a Windows name, or any other
    name that one of the client's VTIMEZONEs (kept verbatim and served back)
    defines. Not kept, so served in UTC with the instant unchanged: a name
    nothing defines, one longer than the tzid column (64 characters), and one
    holding a DQUOTE (it cannot be written as a parameter value, RFC 5545 3.2).
    """
    if not tzid or len(tzid) > TZID_LENGTH or '"' in tzid or zone_of(tzid, definitions) is None:
        return None
    return tzid


def tzid_parameter(tzid: str) -> str:
    """``TZID=<name>``, quoted when the name holds ':', ';' or ',' (RFC 5545 3.2, icalendar's dquote)."""
    return f"TZID={dquote(tzid)}"


def zone_definition(tzid: str, first: date, last: date) -> list[str]:
    """A VTIMEZONE (unfolded lines) named ``tzid`` for a Windows name's IANA zone, ``first`` to ``last``.

    Made by icalendar (``Timezone.from_tzinfo``) from tzdata, so a client that
    does not know Windows names still reads the local times (RFC 5545 3.2.19:
    every TZID has its VTIMEZONE). Raises KeyError for a name that is not a
    Windows name.
    """
    zone = ZoneInfo(WINDOWS_TO_OLSON[tzid])
    component = Timezone.from_tzinfo(zone, tzid=tzid, first_date=first, last_date=last)
    return ical_lines.unfold(component.to_ical().decode("utf-8"))


def floating_zone(user_timezone: str) -> tzinfo:
    """The zone floating times (no TZID, no Z) are read and served in (SPEC 3.11).

    That is the user's CRM time zone; an unknown zone name falls back to UTC.
    """
    try:
        return ZoneInfo(user_timezone)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        return UTC
