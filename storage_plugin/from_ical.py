"""A client's VCALENDAR text -> ActivityDraft (what the CRM stores) plus kept extras.

Layer: storage_plugin (pure: no session, no configuration, no clock).
"""

from __future__ import annotations

import json
from datetime import date, datetime, time, timedelta, timezone, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import icalendar

from crm_model.records import ActivityDraft, AttendeeDraft
from storage_plugin import rules
from storage_plugin.ical_lines import Component, parse_components, property_name

# VEVENT properties the CRM models and the server regenerates; every other
# property line is kept verbatim (SPEC 3.10).
MODELLED_EVENT_PROPERTIES = frozenset({
    "UID", "DTSTAMP", "DTSTART", "DTEND", "DURATION", "SUMMARY", "LOCATION", "DESCRIPTION",
    "CLASS", "ORGANIZER", "ATTENDEE",
}) | rules.RECURRENCE_PROPERTIES
CALENDAR_HEADER_PROPERTIES = frozenset({"VERSION", "PRODID", "CALSCALE", "METHOD"})
MODELLED_ALARM_PROPERTIES = frozenset({"TRIGGER", "ACTION"})


class InvalidEventError(ValueError):
    """The body is not one storable event; the message says why."""


def parse_event(text: str, *, default_timezone: str, recurrence: str) -> ActivityDraft:
    """Read one client event.

    Raises InvalidEventError for anything that cannot become an activity and
    RecurrenceRefusedError for a recurring event when ``recurrence`` is "reject".
    """
    try:
        calendar = icalendar.Calendar.from_ical(text)
        raw_calendar = parse_components(text)[0]
    except (ValueError, IndexError) as error:
        raise InvalidEventError(f"not valid iCalendar: {error}") from error
    events = [c for c in calendar.subcomponents if c.name == "VEVENT"]
    if not events:
        raise InvalidEventError("the calendar object holds no VEVENT")
    master = _master_event(events, recurrence)
    start, end, all_day, tzid, floating = _times(master, default_timezone)
    alarm = _first_alarm(master)
    reminder = None
    if alarm is not None:
        reminder = _reminder_minutes(alarm, start, end)
    raw_master = _raw_master(raw_calendar)
    return ActivityDraft(
        uid=str(master.get("UID", "")).strip(),
        title=str(master.get("SUMMARY", "")),
        starts_at=start,
        ends_at=end,
        all_day=all_day,
        tzid=tzid,
        floating=floating,
        location=_text(master, "LOCATION"),
        description=_text(master, "DESCRIPTION"),
        private=str(master.get("CLASS", "")).upper() in ("PRIVATE", "CONFIDENTIAL"),
        reminder_minutes=reminder,
        attendees=_attendees(master),
        client_extras=_extras(raw_calendar, raw_master, tzid, alarm is not None),
    )


def _master_event(events: list[icalendar.Event], recurrence: str) -> icalendar.Event:
    masters = [e for e in events if "RECURRENCE-ID" not in e]
    recurring = len(events) > 1 or any(
        name in e for e in events for name in rules.RECURRENCE_PROPERTIES
    )
    if recurring and recurrence != rules.RECURRENCE_FIRST_OCCURRENCE:
        raise rules.RecurrenceRefusedError(rules.RECURRENCE_REFUSAL)
    if not masters:
        raise InvalidEventError("only overrides (RECURRENCE-ID) and no main event")
    return masters[0]


def _zone(name: str) -> tzinfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return timezone.utc


def _times(
    event: icalendar.Event, default_timezone: str
) -> tuple[datetime, datetime, bool, str | None, bool]:
    if "DTSTART" not in event:
        raise InvalidEventError("the event has no DTSTART")
    start_prop = event["DTSTART"]
    start = start_prop.dt
    if "DTEND" in event:
        end = event["DTEND"].dt
    elif "DURATION" in event:
        end = start + event["DURATION"].dt
    else:
        end = start + timedelta(days=1) if not isinstance(start, datetime) else start
    if not isinstance(start, datetime):
        if isinstance(end, datetime):
            end = end.date()
        begin = datetime.combine(start, time(), timezone.utc)
        finish = datetime.combine(max(end, start + timedelta(days=1)), time(), timezone.utc)
        return begin, finish, True, None, False
    if not isinstance(end, datetime):
        end = datetime.combine(end, time(), start.tzinfo)
    floating = start.tzinfo is None
    if floating:  # SPEC 3.11: floating times are read in the user's time zone
        zone = _zone(default_timezone)
        start, end = start.replace(tzinfo=zone), end.replace(tzinfo=zone)
    elif end.tzinfo is None:
        end = end.replace(tzinfo=start.tzinfo)
    tzid = _known_tzid(start_prop.params.get("TZID")) if not floating else None
    begin, finish = start.astimezone(timezone.utc), end.astimezone(timezone.utc)
    if finish < begin:
        raise InvalidEventError("DTEND is before DTSTART")
    return begin, finish, False, tzid, floating


def _known_tzid(tzid: str | None) -> str | None:
    """Keep a TZID only when it is an IANA zone we can convert with; else serve UTC."""
    if not tzid:
        return None
    try:
        ZoneInfo(tzid)
    except (ZoneInfoNotFoundError, ValueError):
        return None
    return tzid


def _text(event: icalendar.Event, name: str) -> str | None:
    value = event.get(name)
    return None if value is None else str(value)


def _first_alarm(event: icalendar.Event) -> icalendar.Alarm | None:
    alarms = [c for c in event.subcomponents if c.name == "VALARM"]
    actions = [str(a.get("ACTION", "")) or None for a in alarms]
    found = rules.keep_first_alarm(alarms, actions)
    return found if isinstance(found, icalendar.Alarm) else None


def _reminder_minutes(alarm: icalendar.Alarm, start: datetime, end: datetime) -> int | None:
    trigger = alarm.get("TRIGGER")
    if trigger is None:
        return None
    value = trigger.dt
    if isinstance(value, datetime) and value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    if isinstance(value, date) and not isinstance(value, datetime):
        value = datetime.combine(value, time(), timezone.utc)
    related_end = str(trigger.params.get("RELATED", "START")).upper() == "END"
    return rules.minutes_before_start(value, related_end=related_end, start=start, end=end)


def _attendees(event: icalendar.Event) -> tuple[AttendeeDraft, ...]:
    values = event.get("ATTENDEE", [])
    if not isinstance(values, list):
        values = [values]
    attendees = []
    for value in values:
        address = str(value)
        if address.lower().startswith("mailto:"):
            address = address[len("mailto:"):]
        if address:
            attendees.append(AttendeeDraft(email=address, name=value.params.get("CN")))
    return tuple(attendees)


def _raw_master(raw_calendar: Component) -> Component:
    for child in raw_calendar.children:
        if child.name == "VEVENT" and not any(
            property_name(line) == "RECURRENCE-ID" for line in child.lines
        ):
            return child
    raise InvalidEventError("the calendar object holds no main VEVENT")


def _extras(raw_calendar: Component, raw_event: Component, tzid: str | None, has_alarm: bool) -> str:
    """The client's lines the CRM does not model, kept verbatim for round trips (SPEC 3.10)."""
    alarm_lines: list[str] = []
    if has_alarm:
        alarms = [c for c in raw_event.children if c.name == "VALARM"]
        real = [a for a in alarms if rules.is_real_alarm(_action(a))]
        alarm_lines = [
            line for line in real[0].lines if property_name(line) not in MODELLED_ALARM_PROPERTIES
        ]
    extras = {
        "calendar": [
            line for line in raw_calendar.lines
            if property_name(line) not in CALENDAR_HEADER_PROPERTIES
        ],
        "timezones": [c.to_lines() for c in raw_calendar.children
                      if c.name == "VTIMEZONE" and tzid is not None],
        "event": [line for line in raw_event.lines
                  if property_name(line) not in MODELLED_EVENT_PROPERTIES],
        "alarm": alarm_lines,
        "attendees": {
            _mailto(line).lower(): line for line in raw_event.lines
            if property_name(line) == "ATTENDEE"
        },
        "class": next((line for line in raw_event.lines if property_name(line) == "CLASS"), None),
    }
    return json.dumps(extras, separators=(",", ":"))


def _action(alarm: Component) -> str | None:
    for line in alarm.lines:
        if property_name(line) == "ACTION":
            return line.split(":", 1)[1].strip()
    return None


def _mailto(line: str) -> str:
    value = _value_of(line)
    return value[len("mailto:"):] if value.lower().startswith("mailto:") else value


def _value_of(line: str) -> str:
    """The value of a raw content line: after the first ':' outside quoted parameters."""
    quoted = False
    for index, char in enumerate(line):
        if char == '"':
            quoted = not quoted
        elif char == ":" and not quoted:
            return line[index + 1:]
    return ""
