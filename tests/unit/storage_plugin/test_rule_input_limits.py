"""Issue 9: the input limits of a client's event (storage_plugin.limits), and the shared
column rules they come from (crm_model.services.field_limits).

No server, no database: from_ical.read_event with the limits it applies.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from crm_model.services import field_limits
from storage_plugin import from_ical, limits, rules


def _event(*lines: str, start: str = "DTSTART:20261125T100000Z", end: str | None = "DTEND:20261125T110000Z",
           uid: str = "limit-1", summary: str = "Call") -> str:
    body = ["BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//test//EN", "BEGIN:VEVENT", f"UID:{uid}",
            "DTSTAMP:20261120T100000Z", start, *([end] if end else []), f"SUMMARY:{summary}", *lines,
            "END:VEVENT", "END:VCALENDAR"]
    return "\r\n".join(body) + "\r\n"


def _read(text: str, limit: limits.Limits = limits.DEFAULT_LIMITS) -> from_ical.EventReading:
    return from_ical.read_event(text, default_timezone="UTC", recurrence=rules.RECURRENCE_REJECT, limit=limit)


def _attendees(count: int) -> list[str]:
    return [f"ATTENDEE;CN=Guest {i}:mailto:guest{i}@example.com" for i in range(count)]


def _alarms(count: int) -> list[str]:
    return [line for i in range(count)
            for line in ("BEGIN:VALARM", "ACTION:DISPLAY", f"TRIGGER:-PT{i + 1}M", "END:VALARM")]


def test_the_text_limits_are_the_database_column_lengths():
    columns = field_limits.string_columns()
    assert columns["activities.title"] == field_limits.TITLE == 500
    assert columns["activities.uid"] == field_limits.UID == 255
    assert columns["activities.href"] == field_limits.HREF == 255
    assert columns["participants.email"] == field_limits.ATTENDEE_EMAIL == 320
    assert columns["participants.name"] == field_limits.ATTENDEE_NAME == 200
    assert columns["activities.tzid"] == field_limits.TZID == 64


@pytest.mark.parametrize("character", ["\x00", "\x01", "\x0b", "\x1f", "\ufffe", "\uffff"])
def test_a_control_character_anywhere_is_refused_and_named(character):
    with pytest.raises(limits.LimitError, match=f"U\\+{ord(character):04X}"):
        _read(_event(f"X-NOTE:a{character}b"))


def test_tab_line_breaks_and_non_bmp_characters_are_accepted():
    reading = _read(_event("DESCRIPTION:line one\\nline\ttwo", summary="Call \U0001F4DE \U00020000"))
    assert reading.draft.title == "Call \U0001F4DE \U00020000"
    assert reading.draft.description == "line one\nline\ttwo"


@pytest.mark.parametrize("text,limit", [
    (_event(summary="x" * 501), "SUMMARY is 501 characters long; the limit is 500"),
    (_event(uid="u" * 256), "UID is 256 characters long; the limit is 255"),
    (_event(f"ATTENDEE:mailto:{'a' * 309}@example.com"), "ATTENDEE address is 321 characters long; the limit is 320"),
    (_event(f"ATTENDEE;CN={'n' * 201}:mailto:a@example.com"), "CN is 201 characters long; the limit is 200"),
])
def test_a_value_longer_than_its_column_is_refused_naming_the_limit(text, limit):
    with pytest.raises(limits.LimitError, match=limit):
        _read(text)


def test_values_exactly_at_their_column_length_are_accepted():
    address = f"{'a' * 308}@example.com"
    reading = _read(_event(f"ATTENDEE;CN={'n' * 200}:mailto:{address}", summary="x" * 500, uid="u" * 255))
    assert len(reading.draft.title) == 500 and len(reading.draft.uid) == 255
    assert reading.draft.attendees[0].email == address


def test_a_resource_name_longer_than_the_href_column_is_refused():
    limits.check_href("e" * 251 + ".ics")
    with pytest.raises(limits.LimitError, match="resource name is 256 characters long; the limit is 255"):
        limits.check_href("e" * 252 + ".ics")


def test_more_attendees_than_the_limit_are_refused_with_the_caldav_precondition():
    _read(_event(*_attendees(5)), limits.Limits(max_attendees=5))
    with pytest.raises(limits.LimitError, match="6 attendees is more than the limit of 5") as refused:
        _read(_event(*_attendees(6)), limits.Limits(max_attendees=5))
    assert refused.value.condition == "C:max-attendees-per-instance" and refused.value.status == 400


def test_more_alarms_than_the_limit_are_refused():
    assert _read(_event(*_alarms(20))).draft.reminder_minutes == 1
    with pytest.raises(limits.LimitError, match="21 alarms is more than the limit of 20"):
        _read(_event(*_alarms(21)))


@pytest.mark.parametrize("start,end,condition", [
    ("DTSTART:02021215T100000Z", "DTEND:02021215T110000Z", "C:min-date-time"),
    ("DTSTART;VALUE=DATE:00010101", None, "C:min-date-time"),
    ("DTSTART;TZID=Asia/Tokyo:00010101T000000", None, "C:min-date-time"),
    ("DTSTART;TZID=Asia/Tokyo:19000101T000000", None, "C:min-date-time"),  # 1899-12-31T15:00Z
    ("DTSTART;TZID=America/New_York:99991231T230000", None, "C:max-date-time"),
    ("DTSTART:22010101T000100Z", None, "C:max-date-time"),
    ("DTSTART:20261125T100000Z", "DTEND:99991231T000000Z", "C:max-date-time"),
])
def test_dates_outside_the_years_1900_to_2200_are_refused(start, end, condition):
    with pytest.raises(limits.LimitError, match="from 1900-01-01 to 2200-12-31") as refused:
        _read(_event(start=start, end=end))
    assert refused.value.condition == condition


def test_dates_at_the_edges_of_the_range_are_accepted():
    first = _read(_event(start="DTSTART:19000101T000000Z", end="DTEND:19000101T010000Z")).draft
    last = _read(_event(start="DTSTART;VALUE=DATE:22001231", end=None)).draft
    assert first.starts_at == datetime(1900, 1, 1, tzinfo=UTC)
    assert last.ends_at == datetime(2201, 1, 1, tzinfo=UTC)


@pytest.mark.parametrize("lines", [
    ("BEGIN:VALARM", "ACTION:DISPLAY", "TRIGGER:-P9999999W", "END:VALARM"),
    ("BEGIN:VALARM", "ACTION:DISPLAY", "TRIGGER;RELATED=END:P9999999W", "END:VALARM"),
    ("BEGIN:VALARM", "ACTION:DISPLAY", "TRIGGER:-P400D", "END:VALARM"),
    ("BEGIN:VALARM", "ACTION:DISPLAY", "TRIGGER;VALUE=DATE-TIME:19000101T000000Z", "END:VALARM"),
])
def test_an_alarm_too_far_from_the_start_is_refused(lines):
    with pytest.raises(limits.LimitError, match="alarm"):
        _read(_event(*lines))


def test_a_duration_beyond_the_range_is_refused():
    with pytest.raises(limits.LimitError, match="DTEND is out of range"):
        _read(_event("DURATION:P9999999W", end=None))


def test_a_reminder_of_a_year_is_kept():
    assert _read(_event(*("BEGIN:VALARM", "ACTION:DISPLAY", "TRIGGER:-P366D", "END:VALARM"))
                 ).draft.reminder_minutes == field_limits.MAX_REMINDER_MINUTES
