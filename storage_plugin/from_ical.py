"""A client's VCALENDAR text -> ActivityDraft (what the CRM stores), kept extras, and losses.

``read_event`` also says what of the client's event the CRM cannot keep (its
``losses``): the server may serve a client's exact bytes back, with a strong
ETag (RFC 4791 5.3.4), only when rendering the stored activity would mean the
same thing (SPEC 3.7).

Layer: storage_plugin (pure: no session, no configuration, no clock).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, date, datetime, time

import icalendar

from crm_model.records import ActivityDraft, AttendeeDraft
from storage_plugin import ical_lines, limits, rules
from storage_plugin.event_times import InvalidEventError as InvalidEventError  # raised here, part of this API
from storage_plugin.event_times import Times, read_times
from storage_plugin.event_times import single as _single
from storage_plugin.ical_lines import Component, property_name, value_of
from storage_plugin.reading_losses import (
    attendee_losses,
    calendar_losses,
    counted,
    event_losses,
    has_property,
    recurrence_losses,
)

# VEVENT properties the CRM models and the server regenerates; every other
# property line is kept verbatim (SPEC 3.10).
MODELLED_EVENT_PROPERTIES = frozenset({
    "UID", "DTSTAMP", "DTSTART", "DTEND", "DURATION", "SUMMARY", "LOCATION", "DESCRIPTION",
    "CLASS", "ORGANIZER", "ATTENDEE",
}) | rules.RECURRENCE_PROPERTIES
CALENDAR_HEADER_PROPERTIES = frozenset({"VERSION", "PRODID", "CALSCALE", "METHOD"})
MODELLED_ALARM_PROPERTIES = frozenset({"TRIGGER", "ACTION"})


@dataclass(frozen=True)
class EventReading:
    """A client's event as the CRM will keep it, and what of it the CRM cannot keep."""

    draft: ActivityDraft
    losses: tuple[str, ...]  # short phrases, e.g. "1 alarm after the first"
    organizer: str | None  # the ORGANIZER address, mailto: stripped, lower case; None when absent


@dataclass(frozen=True)
class _Alarm:
    """The reminder kept from the first real VALARM, its raw lines, and what was lost."""

    minutes: int | None
    raw: Component | None
    losses: tuple[str, ...] = ()


def parse_event(text: str, *, default_timezone: str, recurrence: str) -> ActivityDraft:
    """Read one client event into what the CRM stores (see ``read_event``)."""
    return read_event(text, default_timezone=default_timezone, recurrence=recurrence).draft


def read_event(text: str, *, default_timezone: str, recurrence: str,
               limit: limits.Limits = limits.DEFAULT_LIMITS) -> EventReading:
    """Read one client event: the draft, what the CRM cannot keep of it, and its organizer.

    ``default_timezone`` is the user's zone (floating times, SPEC 3.11);
    ``recurrence`` is rules.RECURRENCE_REJECT or RECURRENCE_FIRST_OCCURRENCE (SPEC 3.4);
    ``limit`` holds the attendee and alarm counts allowed (storage_plugin.limits).

    Raises:
        limits.LimitError: for a value over an input limit (checked before anything else).
        InvalidEventError: for anything else that cannot become an activity.
        rules.RecurrenceRefusedError: for a recurring event when ``recurrence`` refuses them.
    """
    limits.check_characters(text)
    calendar, raw_calendar = _parse(text)
    events = [c for c in calendar.subcomponents if c.name == "VEVENT"]
    if not events:
        raise InvalidEventError("the calendar object holds no VEVENT")
    rules.check_recurrence(_is_recurring(events), recurrence)
    master = _master_event(events)
    raw_master = _raw_master(raw_calendar)
    _check_counts(raw_master, limit)
    times = read_times(master, _zone_definitions(raw_calendar), default_timezone)
    alarm = _read_alarm(master, raw_master, times)
    draft = ActivityDraft(
        uid=str(_single(master, "UID") or "").strip(),
        title=str(_single(master, "SUMMARY") or ""),
        starts_at=times.start,
        ends_at=times.end,
        all_day=times.all_day,
        tzid=times.tzid,
        floating=times.floating,
        location=_text(master, "LOCATION"),
        description=_text(master, "DESCRIPTION"),
        private=rules.is_private(_text(master, "CLASS")),
        reminder_minutes=alarm.minutes,
        attendees=_attendees(master),
        client_extras=_extras(raw_calendar, raw_master, times.tzid, alarm.raw),
    )
    limits.check_draft(draft)
    losses = (
        *calendar_losses(raw_calendar), *recurrence_losses(raw_calendar, raw_master),
        *times.losses, *event_losses(raw_master), *attendee_losses(raw_master), *alarm.losses,
    )
    return EventReading(draft=draft, losses=tuple(losses), organizer=_organizer(raw_master))


def _parse(text: str) -> tuple[icalendar.Calendar, Component]:
    """The body as raw lines (verbatim extras, VTIMEZONEs) and through icalendar (values).

    icalendar is given the body without its VTIMEZONE components (see
    storage_plugin.event_times: their zones are read by rules.zone_of).
    """
    try:
        roots = ical_lines.parse_components(text)
        if len(roots) != 1:
            raise ValueError(f"{len(roots)} top-level components where one VCALENDAR is allowed")
        raw_calendar = roots[0]
        without_zones = Component(raw_calendar.name, raw_calendar.lines,
                                  [c for c in raw_calendar.children if c.name != "VTIMEZONE"])
        calendar = icalendar.Calendar.from_ical("\r\n".join(without_zones.to_lines()) + "\r\n")
    except (ValueError, IndexError) as error:
        raise InvalidEventError(f"not valid iCalendar: {error}") from error
    except OSError as error:  # icalendar opens tzdata files: TZID=Europe is a directory
        raise InvalidEventError("a TZID is not a time zone") from error
    return calendar, raw_calendar


def _zone_definitions(raw_calendar: Component) -> list[list[str]]:
    """The client's VTIMEZONE components, each as unfolded lines (storage_plugin.event_times)."""
    return [child.to_lines() for child in raw_calendar.children if child.name == "VTIMEZONE"]


def _check_counts(raw_event: Component, limit: limits.Limits) -> None:
    """The event's ATTENDEE properties and VALARM components against the limits."""
    limits.check_counts(attendees=sum(1 for line in raw_event.lines if property_name(line) == "ATTENDEE"),
                        alarms=sum(1 for child in raw_event.children if child.name == "VALARM"), limits=limit)


def _is_recurring(events: list[icalendar.Component]) -> bool:
    """More than one VEVENT, or any recurrence property (SPEC 3.4)."""
    return len(events) > 1 or any(name in e for e in events for name in rules.RECURRENCE_PROPERTIES)


def _master_event(events: list[icalendar.Component]) -> icalendar.Component:
    """The main VEVENT (the first without RECURRENCE-ID)."""
    masters = [e for e in events if "RECURRENCE-ID" not in e]
    if not masters:
        raise InvalidEventError("only overrides (RECURRENCE-ID) and no main event")
    return masters[0]


def _text(event: icalendar.Component, name: str) -> str | None:
    """A text property's (first) value, unescaped, or None."""
    value = _single(event, name)
    return None if value is None else str(value)


# --- the first alarm (SPEC 3.3) ----------------------------------------------


def _read_alarm(event: icalendar.Component, raw_event: Component, times: Times) -> _Alarm:
    """The first real VALARM as minutes before the start, and what the CRM drops of the alarms."""
    raw_alarms = [c for c in raw_event.children if c.name == "VALARM"]
    alarms = [c for c in event.subcomponents if c.name == "VALARM"]
    actions = [_action(alarm) for alarm in raw_alarms]
    index = rules.keep_first_alarm(range(len(raw_alarms)), actions)
    if not isinstance(index, int) or index >= len(alarms):
        return _Alarm(None, None)
    later = sum(1 for action in actions[index + 1:] if rules.is_real_alarm(action))
    losses = [counted(later, "alarm") + " after the first"] if later else []
    action = (actions[index] or "").strip().upper()
    if action != rules.SERVED_ALARM_ACTION:
        sent = f"ACTION:{action}" if action else "no ACTION"
        losses.append(f"the alarm's {sent} (served as ACTION:{rules.SERVED_ALARM_ACTION})")
    minutes, trigger_losses = _reminder_minutes(alarms[index], times)
    return _Alarm(minutes, raw_alarms[index], (*losses, *trigger_losses))


def _reminder_minutes(alarm: icalendar.Component, times: Times) -> tuple[int | None, list[str]]:
    """The kept alarm's TRIGGER as whole minutes before the start, and what converting lost."""
    trigger = _single(alarm, "TRIGGER")
    if trigger is None:
        return None, ["the first alarm has no TRIGGER (no reminder kept)"]
    value = trigger.dt
    if isinstance(value, date) and not isinstance(value, datetime):
        value = datetime.combine(value, time(), UTC)
    if isinstance(value, datetime) and value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    related_end = str(trigger.params.get("RELATED", "START")).upper() == "END"
    try:
        seconds = rules.seconds_before_start(value, related_end=related_end, start=times.start, end=times.end)
    except OverflowError as error:  # a relative TRIGGER of thousands of years
        raise limits.out_of_range("the alarm TRIGGER") from error
    losses = []
    if seconds % 60:
        losses.append("the alarm TRIGGER is not a whole number of minutes (rounded)")
    if times.all_day and isinstance(value, datetime):
        losses.append("an absolute alarm TRIGGER on an all-day event (served relative to the start)")
    minutes = rules.minutes_before_start(value, related_end=related_end, start=times.start, end=times.end)
    return minutes, losses


def _action(alarm: Component) -> str | None:
    """A raw VALARM's ACTION value as sent, or None without one."""
    for line in alarm.lines:
        if property_name(line) == "ACTION":
            return value_of(line).strip()
    return None


# --- attendees and organizer (SPEC 3.5) --------------------------------------


def _attendees(event: icalendar.Component) -> tuple[AttendeeDraft, ...]:
    """Every ATTENDEE with an address, mailto: stripped, with its CN (matched later, SPEC 3.5)."""
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


def _organizer(raw_event: Component) -> str | None:
    """The ORGANIZER address, mailto: stripped, lower case; None when there is none."""
    for line in raw_event.lines:
        if property_name(line) == "ORGANIZER":
            return ical_lines.mailto_address(line).strip().lower() or None
    return None


# --- verbatim extras (SPEC 3.10) ---------------------------------------------


def _raw_master(raw_calendar: Component) -> Component:
    """The main VEVENT as raw lines (the same one ``_master_event`` picks)."""
    for child in raw_calendar.children:
        if child.name == "VEVENT" and not has_property(child, "RECURRENCE-ID"):
            return child
    raise InvalidEventError("the calendar object holds no main VEVENT")


def _extras(raw_calendar: Component, raw_event: Component, tzid: str | None, alarm: Component | None) -> str:
    """The client's lines the CRM does not model, kept verbatim for round trips (SPEC 3.10)."""
    extras = {
        "calendar": [
            line for line in raw_calendar.lines
            if property_name(line) not in CALENDAR_HEADER_PROPERTIES
        ],
        "timezones": [c.to_lines() for c in raw_calendar.children
                      if c.name == "VTIMEZONE" and tzid is not None],
        "event": [line for line in raw_event.lines
                  if property_name(line) not in MODELLED_EVENT_PROPERTIES],
        "alarm": [] if alarm is None else [
            line for line in alarm.lines if property_name(line) not in MODELLED_ALARM_PROPERTIES
        ],
        "attendees": {
            ical_lines.mailto_address(line).lower(): line for line in raw_event.lines
            if property_name(line) == "ATTENDEE"
        },
        "class": next((line for line in raw_event.lines if property_name(line) == "CLASS"), None),
    }
    return json.dumps(extras, separators=(",", ":"))

