"""SPEC 3.7 and 3.10: read_event lists everything of a client's event that rendering the stored
activity would not reproduce, and nothing whose rendering means the same.

No server: from_ical.read_event on the recorded iOS bodies and on plain strings.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest

from crm_model.records import ActivityDraft, ActivityRecord, ParticipantRecord
from storage_plugin import from_ical, rules, to_ical
from tests.factories import IOS_REQUESTS

PLAIN = ["UID:loss-1", "DTSTAMP:20250301T000000Z", "DTSTART:20250318T100000Z",
         "DTEND:20250318T110000Z", "SUMMARY:Call"]
SECOND_APPLE_ALARM = (
    "BEGIN:VALARM\r\nACTION:DISPLAY\r\nDESCRIPTION:Event reminder\r\nTRIGGER:-PT1H\r\n"
    "UID:1B2C3D4E-5F60-4172-8384-A5B6C7D8E9F0\r\nX-WR-ALARMUID:1B2C3D4E-5F60-4172-8384-A5B6C7D8E9F0\r\n"
    "END:VALARM\r\n"
)


def _calendar(event: list[str], *, head: list[str] = (), after: list[str] = ()) -> str:
    lines = ["BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//test//EN", *head,
             "BEGIN:VEVENT", *event, "END:VEVENT", *after, "END:VCALENDAR"]
    return "\r\n".join(lines) + "\r\n"


def _read(text: str) -> from_ical.EventReading:
    return from_ical.read_event(text, default_timezone="Europe/Berlin", recurrence=rules.RECURRENCE_REJECT)


def _recorded(name: str) -> str:
    return (IOS_REQUESTS / name).read_bytes().decode("utf-8")


@pytest.mark.parametrize("name", ["06-put-event.ics", "06b-put-event-update.ics", "06c-put-event-alarm-ack.ics"])
def test_recorded_ios_event_loses_only_its_second_display_alarm(name):
    # The recorded bodies carry two ACTION:DISPLAY alarms (-PT15M, -PT1H) and Apple's
    # ACTION:NONE placeholder: the -PT1H alarm is dropped (SPEC 3.3), the placeholder is not an alarm.
    reading = _read(_recorded(name))
    assert reading.losses == ("1 alarm after the first",)
    assert reading.draft.reminder_minutes == 15
    assert reading.organizer == "anna@example.com"


def test_ios_event_with_one_alarm_and_the_placeholder_has_no_losses():
    text = _recorded("06-put-event.ics")
    one_alarm = text.replace(SECOND_APPLE_ALARM, "")
    assert one_alarm != text and "ACTION:NONE" in one_alarm
    assert _read(one_alarm).losses == ()


def test_plain_event_has_no_losses_and_no_organizer():
    reading = _read(_calendar(PLAIN))
    assert reading.losses == ()
    assert reading.organizer is None
    assert from_ical.parse_event(_calendar(PLAIN), default_timezone="Europe/Berlin",
                                 recurrence=rules.RECURRENCE_REJECT) == reading.draft


def test_three_alarms_are_a_loss():
    alarms = [line for minutes in (5, 10, 15) for line in
              ("BEGIN:VALARM", "ACTION:DISPLAY", "DESCRIPTION:x", f"TRIGGER:-PT{minutes}M", "END:VALARM")]
    assert _read(_calendar([*PLAIN, *alarms])).losses == ("2 alarms after the first",)


def test_equivalent_renderings_are_not_losses():
    reordered = ["SUMMARY:Call", "DURATION:PT1H", "DTSTART:20250318T100000Z",
                 "DTSTAMP:20990101T000000Z", "UID:loss-1",
                 "X-LONG:" + "folded " * 20, "ORGANIZER;CN=Alice:MAILTO:Alice@Example.com"]
    text = _calendar(reordered).replace("PRODID:-//test//EN", "PRODID:-//Other//EN")
    reading = _read(text.replace("X-LONG:" + "folded " * 10, "X-LONG:" + "folded " * 10 + "\r\n "))
    assert reading.losses == ()
    assert reading.organizer == "alice@example.com"


@pytest.mark.parametrize("after,loss", [
    (["BEGIN:VTODO", "UID:t-1", "SUMMARY:todo", "END:VTODO"], "the VTODO component"),
    (["BEGIN:VJOURNAL", "UID:j-1", "END:VJOURNAL"] * 2, "2 VJOURNAL components"),
])
def test_other_components_in_the_calendar_are_losses(after, loss):
    assert _read(_calendar(PLAIN, after=after)).losses == (loss,)


def test_method_is_a_loss():
    assert _read(_calendar(PLAIN, head=["METHOD:REQUEST"])).losses == ("METHOD:REQUEST",)


def test_all_day_start_with_a_date_time_end_is_a_loss():
    event = ["UID:loss-1", "DTSTAMP:20250301T000000Z", "DTSTART;VALUE=DATE:20250318",
             "DTEND:20250319T120000Z", "SUMMARY:Offsite"]
    assert _read(_calendar(event)).losses == ("a DATE-TIME DTEND with a DATE DTSTART (served as a date)",)


def test_attendee_without_an_address_and_repeated_addresses_are_losses():
    event = [*PLAIN, "ATTENDEE;CN=Nobody:mailto:", "ATTENDEE:mailto:kenji@example.jp",
             "ATTENDEE;CN=Kenji:MAILTO:Kenji@Example.JP"]
    assert _read(_calendar(event)).losses == (
        "an ATTENDEE without an address", "ATTENDEE kenji@example.jp sent 2 times (kept once)")


def test_repeated_and_parameterised_text_properties_are_losses():
    event = [*PLAIN, "DESCRIPTION:one", "DESCRIPTION:two", "LOCATION;LANGUAGE=de:Büro"]
    reading = _read(_calendar(event))
    assert reading.draft.description == "one"
    assert reading.losses == ("2 DESCRIPTION properties (the first is kept)",
                              "the parameters of LOCATION (LANGUAGE=de)")


def test_component_inside_the_event_other_than_valarm_is_a_loss():
    event = [*PLAIN, "BEGIN:VLOCATION", "UID:l-1", "NAME:HQ", "END:VLOCATION"]
    assert _read(_calendar(event)).losses == ("the VLOCATION inside the event",)


def test_end_in_another_zone_than_the_start_is_a_loss():
    event = ["UID:loss-1", "DTSTAMP:20250301T000000Z", "DTSTART;TZID=Europe/Berlin:20250318T100000",
             "DTEND:20250318T100000Z", "SUMMARY:Call"]
    assert _read(_calendar(event)).losses == ("DTEND in another time zone than DTSTART (served in DTSTART's)",)


def test_tzid_naming_no_zone_file_is_invalid_not_a_crash():
    event = ["UID:loss-1", "DTSTART;TZID=Europe:20250318T100000", "SUMMARY:Call"]
    with pytest.raises(from_ical.InvalidEventError):
        _read(_calendar(event))


def _stored(draft: ActivityDraft) -> ActivityRecord:
    """The record the CRM would serve for ``draft`` (participants = the sent attendees)."""
    now = datetime(2025, 3, 1, tzinfo=UTC)
    participants = tuple(ParticipantRecord(a.email, a.name, "email") for a in draft.attendees)
    return ActivityRecord(
        id="a-1", uid=draft.uid, href="x.ics", owner_id=1, owner_email="anna@example.com",
        owner_name="Anna Admin", owner_timezone="Europe/Berlin", type="meeting", title=draft.title,
        starts_at=draft.starts_at, ends_at=draft.ends_at, all_day=draft.all_day, tzid=draft.tzid,
        floating=draft.floating, location=draft.location, description=draft.description,
        private=draft.private, reminder_minutes=draft.reminder_minutes, participants=participants,
        source="caldav", created_at=now, updated_at=now, change_pos=1, client_extras=draft.client_extras,
    )


@pytest.mark.parametrize("text", [
    _calendar([*PLAIN, "CLASS:PRIVATE", "LOCATION:HQ\\, Berlin", "X-APPLE-TRAVEL-ADVISORY-BEHAVIOR:AUTOMATIC"]),
    _calendar(["UID:d-1", "DTSTART;VALUE=DATE:20250318", "SUMMARY:Offsite"]),
    _recorded("06-put-event.ics").replace(SECOND_APPLE_ALARM, ""),
])
def test_an_event_read_without_losses_renders_to_the_same_event(text):
    first = _read(text)
    assert first.losses == ()
    again = _read(to_ical.render_vcalendar(_stored(first.draft)))
    assert again.losses == ()
    assert replace(again.draft, client_extras=None) == replace(first.draft, client_extras=None)
