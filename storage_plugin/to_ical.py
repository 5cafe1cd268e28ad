"""ActivityRecord -> VCALENDAR text: the CRM fields, plus what the client sent that the CRM keeps.

Output depends only on the record, so it can be cached by (id, change_pos).
Bump RENDER_VERSION whenever the output for the same record changes: it is part of every ETag.

Layer: storage_plugin (pure).
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta, tzinfo
from typing import Any

from icalendar.prop import vDuration, vText

from crm_model.records import ActivityRecord, ParticipantRecord
from storage_plugin import rules
from storage_plugin.ical_lines import fold

RENDER_VERSION = 1
PRODID = "-//crm-caldav//CRM activities//EN"


def render_vcalendar(record: ActivityRecord) -> str:
    """The whole calendar object resource for one activity."""
    extras = json.loads(record.client_extras) if record.client_extras else {}
    lines = ["BEGIN:VCALENDAR", "VERSION:2.0", f"PRODID:{PRODID}", "CALSCALE:GREGORIAN"]
    lines += extras.get("calendar", [])
    if record.tzid and not record.all_day:
        for block in _timezones(record.tzid, record, extras.get("timezones", [])):
            lines += block
    lines += _event_lines(record, extras)
    lines.append("END:VCALENDAR")
    return "".join(fold(line) for line in lines)


def _timezones(tzid: str, record: ActivityRecord, kept: list[list[str]]) -> list[list[str]]:
    """The VTIMEZONEs served: the client's, verbatim; for a Windows TZID it did not define, one made
    from the IANA zone for the event's years (RFC 5545 3.2.19: every TZID has its VTIMEZONE)."""
    if rules.windows_zone_name(tzid) is None or any(rules.definition_tzid(block) == tzid for block in kept):
        return kept
    first = date(record.starts_at.year, 1, 1)
    last = date(max(record.ends_at.year, record.starts_at.year) + 1, 1, 1)
    return [*kept, rules.zone_definition(tzid, first, last)]


def _event_lines(record: ActivityRecord, extras: dict[str, Any]) -> list[str]:
    """The VEVENT: CRM fields first, then the client's kept lines, then the one alarm."""
    zone = rules.zone_of(record.tzid, extras.get("timezones", [])) if record.tzid else None
    lines = [
        "BEGIN:VEVENT",
        f"UID:{record.uid}",
        f"DTSTAMP:{_utc(record.updated_at)}",
        _when("DTSTART", record.starts_at, record, zone),
        _when("DTEND", record.ends_at, record, zone),
        f"SUMMARY:{_text(record.title)}",
    ]
    if record.location:
        lines.append(f"LOCATION:{_text(record.location)}")
    if record.description:
        lines.append(f"DESCRIPTION:{_text(record.description)}")
    privacy = rules.class_line(record.private, client_sent_class=bool(extras.get("class")))
    if privacy is not None:
        lines.append(privacy)
    lines.append(f"ORGANIZER{_cn(record.owner_name)}:mailto:{record.owner_email}")
    kept_attendees = extras.get("attendees", {})
    for participant in record.participants:
        lines.append(kept_attendees.get(participant.email.lower()) or _attendee(participant))
    lines += extras.get("event", [])
    if record.reminder_minutes is not None:
        lines += _alarm_lines(record.reminder_minutes, extras.get("alarm", []))
    lines.append("END:VEVENT")
    return lines


def _when(name: str, moment: datetime, record: ActivityRecord, zone: tzinfo | None) -> str:
    """DTSTART/DTEND: a date, a floating local time, a time in the kept TZID, or UTC (SPEC 3.11).

    ``zone`` is the kept TZID's zone (rules.zone_of: named, or the client's kept
    VTIMEZONE); the TZID is served as the client sent it.
    """
    if record.all_day:
        return f"{name};VALUE=DATE:{moment:%Y%m%d}"
    if record.floating:
        local = moment.astimezone(rules.floating_zone(record.owner_timezone))
        return f"{name}:{local:%Y%m%dT%H%M%S}"
    if record.tzid and zone is not None:
        local = moment.astimezone(zone)
        return f"{name};{rules.tzid_parameter(record.tzid)}:{local:%Y%m%dT%H%M%S}"
    return f"{name}:{_utc(moment)}"


def _utc(moment: datetime) -> str:
    """A UTC DATE-TIME value."""
    return f"{moment.astimezone(UTC):%Y%m%dT%H%M%SZ}"


def _text(value: str) -> str:
    """A TEXT value, escaped (RFC 5545 3.3.11)."""
    return vText(value).to_ical().decode("utf-8")


def _cn(name: str | None) -> str:
    """A ;CN= parameter (quoted when needed), or nothing without a name."""
    if not name:
        return ""
    clean = name.replace('"', "'")
    return f';CN="{clean}"' if any(c in clean for c in ',;:') else f";CN={clean}"


def _attendee(participant: ParticipantRecord) -> str:
    """The ATTENDEE line of a participant the client never sent (made in the CRM)."""
    return (
        f"ATTENDEE{_cn(participant.name)};CUTYPE=INDIVIDUAL;ROLE=REQ-PARTICIPANT"
        f":mailto:{participant.email}"
    )


def _alarm_lines(minutes: int, kept: list[str]) -> list[str]:
    """The one reminder as a display alarm relative to the start, with the client's kept lines (SPEC 3.3)."""
    trigger = vDuration(timedelta(minutes=-minutes)).to_ical().decode("ascii")  # type: ignore[no-untyped-call]
    lines = ["BEGIN:VALARM", f"ACTION:{rules.SERVED_ALARM_ACTION}", f"TRIGGER:{trigger}"]
    if not any(line.upper().startswith("DESCRIPTION") for line in kept):
        lines.append(f"DESCRIPTION:{rules.SERVED_ALARM_DESCRIPTION}")
    return [*lines, *kept, "END:VALARM"]
