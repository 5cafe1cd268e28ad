"""SPEC 3.11 "Time zones": instants kept, known TZIDs kept, floating read in the user's zone,
all-day stays dates.

No server: storage_plugin.rules, from_ical.read_event and to_ical.render_vcalendar.
"""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from crm_model.records import ActivityDraft, ActivityRecord
from storage_plugin import from_ical, rules, to_ical

BERLIN_VTIMEZONE = [
    "BEGIN:VTIMEZONE", "TZID:Europe/Berlin",
    "BEGIN:STANDARD", "DTSTART:19961027T030000", "RRULE:FREQ=YEARLY;BYMONTH=10;BYDAY=-1SU",
    "TZOFFSETFROM:+0200", "TZOFFSETTO:+0100", "END:STANDARD",
    "BEGIN:DAYLIGHT", "DTSTART:19810329T020000", "RRULE:FREQ=YEARLY;BYMONTH=3;BYDAY=-1SU",
    "TZOFFSETFROM:+0100", "TZOFFSETTO:+0200", "END:DAYLIGHT", "END:VTIMEZONE",
]
NINE_UTC = datetime(2025, 3, 18, 9, tzinfo=UTC)


def _event(start: str, end: str, before: list[str] = ()) -> str:
    lines = ["BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//test//EN", *before, "BEGIN:VEVENT",
             "UID:tz-1", "DTSTAMP:20250301T000000Z", start, end, "SUMMARY:Call", "END:VEVENT",
             "END:VCALENDAR"]
    return "\r\n".join(lines) + "\r\n"


def _read(text: str, user_zone: str = "America/New_York") -> from_ical.EventReading:
    return from_ical.read_event(text, default_timezone=user_zone, recurrence=rules.RECURRENCE_REJECT)


def _render(draft: ActivityDraft, owner_timezone: str = "America/New_York") -> str:
    record = ActivityRecord(
        id="a-1", uid=draft.uid, href="tz-1.ics", owner_id=1, owner_email="alice@example.com",
        owner_name="Alice", owner_timezone=owner_timezone, type="meeting", title=draft.title,
        starts_at=draft.starts_at, ends_at=draft.ends_at, all_day=draft.all_day, tzid=draft.tzid,
        floating=draft.floating, location=None, description=None, private=False,
        reminder_minutes=None, participants=(), source="caldav", created_at=NINE_UTC,
        updated_at=NINE_UTC, change_pos=1, client_extras=draft.client_extras,
    )
    return to_ical.render_vcalendar(record)


def test_known_tzid_is_kept_with_its_instant():
    reading = _read(_event("DTSTART;TZID=Europe/Berlin:20250318T100000",
                           "DTEND;TZID=Europe/Berlin:20250318T110000", BERLIN_VTIMEZONE))
    assert (reading.draft.starts_at, reading.draft.tzid, reading.draft.floating) == (NINE_UTC, "Europe/Berlin", False)
    assert reading.losses == ()
    served = _render(reading.draft)
    assert "DTSTART;TZID=Europe/Berlin:20250318T100000\r\n" in served
    assert "BEGIN:VTIMEZONE\r\nTZID:Europe/Berlin" in served


def test_tzid_icalendar_finds_but_nothing_defines_keeps_the_utc_instant_and_reports_the_loss():
    # A vendor-prefixed IANA name (RFC 5545 3.2.19) sent without its VTIMEZONE.
    tzid = "/mozilla.org/20050126_1/Europe/Berlin"
    with pytest.warns(Warning):  # icalendar says it guessed the zone from the name
        reading = _read(_event(f"DTSTART;TZID={tzid}:20250318T100000", f"DTEND;TZID={tzid}:20250318T110000"))
    assert (reading.draft.starts_at, reading.draft.tzid, reading.draft.floating) == (NINE_UTC, None, False)
    assert reading.losses == (f"TZID '{tzid}' (served in UTC)",)
    assert "DTSTART:20250318T090000Z\r\n" in _render(reading.draft)


def test_tzid_without_any_definition_is_read_in_the_users_zone_and_reported():
    reading = _read(_event("DTSTART;TZID=Nowhere/Special:20250318T100000",
                           "DTEND;TZID=Nowhere/Special:20250318T110000"), user_zone="Europe/Berlin")
    assert (reading.draft.starts_at, reading.draft.tzid, reading.draft.floating) == (NINE_UTC, None, False)
    assert reading.losses == (
        "TZID 'Nowhere/Special' (no definition: read in the user's time zone, served in UTC)",)


def test_floating_time_is_read_in_the_users_zone_and_served_floating():
    reading = _read(_event("DTSTART:20250318T100000", "DTEND:20250318T110000"), user_zone="Europe/Berlin")
    assert (reading.draft.starts_at, reading.draft.tzid, reading.draft.floating) == (NINE_UTC, None, True)
    assert reading.losses == ()
    assert "DTSTART:20250318T100000\r\n" in _render(reading.draft, owner_timezone="Europe/Berlin")


def test_floating_time_with_an_unknown_user_zone_is_read_in_utc():
    reading = _read(_event("DTSTART:20250318T090000", "DTEND:20250318T100000"), user_zone="Mars/Olympus")
    assert reading.draft.starts_at == NINE_UTC


def test_all_day_event_stays_dates_whatever_the_users_zone():
    for zone in ("Pacific/Auckland", "America/Los_Angeles"):
        reading = _read(_event("DTSTART;VALUE=DATE:20250318", "DTEND;VALUE=DATE:20250320"), user_zone=zone)
        draft = reading.draft
        assert draft.all_day and draft.tzid is None and not draft.floating and reading.losses == ()
        assert draft.starts_at == datetime(2025, 3, 18, tzinfo=UTC)
        assert draft.ends_at == datetime(2025, 3, 20, tzinfo=UTC)
        served = _render(draft, owner_timezone=zone)
        assert "DTSTART;VALUE=DATE:20250318\r\nDTEND;VALUE=DATE:20250320\r\n" in served


def test_all_day_end_not_after_start_is_moved_and_reported():
    reading = _read(_event("DTSTART;VALUE=DATE:20250318", "DTEND;VALUE=DATE:20250318"))
    assert reading.draft.ends_at == datetime(2025, 3, 19, tzinfo=UTC)
    assert reading.losses == ("the all-day end (DTEND not after DTSTART: served one day long)",)


@pytest.mark.parametrize("tzid,kept", [
    ("Europe/Berlin", "Europe/Berlin"), ("UTC", "UTC"), ("W. Europe Standard Time", "W. Europe Standard Time"),
    ("Customized Time Zone", None), ("Europe", None), ("../etc/passwd", None), ("", None), (None, None),
])
def test_kept_tzid_keeps_only_zones_we_can_convert_with(tzid, kept):
    assert rules.kept_tzid(tzid) == kept


def test_floating_zone_is_the_users_zone_or_utc():
    assert rules.floating_zone("Europe/Berlin") == ZoneInfo("Europe/Berlin")
    assert rules.floating_zone("Mars/Olympus") == UTC
    assert rules.floating_zone("") == UTC
