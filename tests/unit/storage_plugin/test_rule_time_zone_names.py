"""SPEC 3.11 "events sent with a TZID keep it", for any TZID (issue 10): Windows names through
icalendar's CLDR table, custom names through the client's own VTIMEZONE (kept verbatim).

No server: storage_plugin.rules, from_ical.read_event and to_ical.render_vcalendar.
"""

from __future__ import annotations

import threading
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import icalendar
import pytest
from icalendar.timezone.windows_to_olson import WINDOWS_TO_OLSON

from crm_model.records import ActivityDraft, ActivityRecord
from storage_plugin import from_ical, rendering, rules, to_ical

WINDOWS = "W. Europe Standard Time"
ONE_PM_BERLIN_UTC = datetime(2026, 9, 17, 11, tzinfo=UTC)  # 13:00 CEST


def _vtimezone(tzid: str, standard: str, daylight: str | None = None, rule: str = "FREQ=YEARLY;BYDAY=-1SU;BYMONTH=10",
               extra: tuple[str, ...] = ()) -> list[str]:
    """A VTIMEZONE as Outlook writes one: observances from 1601, yearly rules."""
    lines = ["BEGIN:VTIMEZONE", f"TZID:{tzid}", *extra, "BEGIN:STANDARD", "DTSTART:16010101T030000",
             f"TZOFFSETFROM:{daylight or standard}", f"TZOFFSETTO:{standard}", f"RRULE:{rule}", "END:STANDARD"]
    if daylight:
        lines += ["BEGIN:DAYLIGHT", "DTSTART:16010101T020000", f"TZOFFSETFROM:{standard}", f"TZOFFSETTO:{daylight}",
                  "RRULE:FREQ=YEARLY;BYDAY=-1SU;BYMONTH=3", "END:DAYLIGHT"]
    return [*lines, "END:VTIMEZONE"]


OUTLOOK_BERLIN = _vtimezone(WINDOWS, "+0100", "+0200")


def _event(tzid_parameter: str, before: list[str] = (), start: str = "20260917T130000") -> str:
    lines = ["BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//Microsoft Corporation//Outlook 16.0 MIMEDIR//EN",
             *before, "BEGIN:VEVENT", "UID:outlook-1", "DTSTAMP:20260901T000000Z",
             f"DTSTART;{tzid_parameter}:{start}", f"DTEND;{tzid_parameter}:20260917T140000",
             "SUMMARY:Quarterly review", "END:VEVENT", "END:VCALENDAR"]
    return "\r\n".join(lines) + "\r\n"


def _read(text: str, user_zone: str = "America/New_York") -> from_ical.EventReading:
    return from_ical.read_event(text, default_timezone=user_zone, recurrence=rules.RECURRENCE_REJECT)


def _record(draft: ActivityDraft) -> ActivityRecord:
    now = datetime(2026, 9, 1, tzinfo=UTC)
    return ActivityRecord(
        id="a-1", uid=draft.uid, href="outlook-1.ics", owner_id=1, owner_email="alice@example.com",
        owner_name="Alice", owner_timezone="America/New_York", type="meeting", title=draft.title,
        starts_at=draft.starts_at, ends_at=draft.ends_at, all_day=draft.all_day, tzid=draft.tzid,
        floating=draft.floating, location=None, description=None, private=False, reminder_minutes=None,
        participants=(), source="caldav", created_at=now, updated_at=now, change_pos=1,
        client_extras=draft.client_extras,
    )


def _served_start(text: str) -> datetime:
    """DTSTART of a served text as another client reads it: with the served VTIMEZONE only."""
    return icalendar.Calendar.from_ical(text).walk("VEVENT")[0]["DTSTART"].dt.astimezone(UTC)


@pytest.mark.parametrize("windows,iana", [
    (WINDOWS, "Europe/Berlin"), ("Eastern Standard Time", "America/New_York"),
    ("Tokyo Standard Time", "Asia/Tokyo"), ("India Standard Time", "Asia/Calcutta"),
])
def test_windows_name_names_the_cldr_zone(windows, iana):
    assert rules.named_zone(windows) == ZoneInfo(iana)
    assert rules.windows_zone_name(windows) == iana


def test_every_windows_name_in_the_library_table_gives_a_zone():
    assert len(WINDOWS_TO_OLSON) > 130
    assert [name for name in WINDOWS_TO_OLSON if rules.named_zone(name) is None] == []


def test_iana_name_is_not_taken_for_a_windows_name():
    assert rules.windows_zone_name("Europe/Berlin") is None and rules.windows_zone_name("UTC") is None


def test_windows_tzid_with_outlooks_vtimezone_is_kept_and_served_as_sent():
    reading = _read(_event(f"TZID={WINDOWS}", OUTLOOK_BERLIN))
    assert (reading.draft.starts_at, reading.draft.tzid, reading.losses) == (ONE_PM_BERLIN_UTC, WINDOWS, ())
    served = to_ical.render_vcalendar(_record(reading.draft))
    assert f"DTSTART;TZID={WINDOWS}:20260917T130000\r\n" in served
    assert "\r\n".join(OUTLOOK_BERLIN) + "\r\n" in served
    assert _served_start(served) == ONE_PM_BERLIN_UTC


def test_windows_tzid_without_vtimezone_is_kept_and_served_with_one_made_from_tzdata():
    reading = _read(_event(f"TZID={WINDOWS}"))
    assert (reading.draft.starts_at, reading.draft.tzid) == (ONE_PM_BERLIN_UTC, WINDOWS)
    assert reading.losses == (f"TZID '{WINDOWS}' without a VTIMEZONE (served with one made from Europe/Berlin)",)
    served = to_ical.render_vcalendar(_record(reading.draft))
    assert f"DTSTART;TZID={WINDOWS}:20260917T130000\r\n" in served
    assert f"BEGIN:VTIMEZONE\r\nTZID:{WINDOWS}\r\n" in served
    assert _served_start(served) == ONE_PM_BERLIN_UTC


def test_custom_tzid_is_read_with_the_clients_own_vtimezone_and_kept_verbatim():
    block = _vtimezone("Customized Time Zone", "+0500", extra=("X-MICROSOFT-CDO-TZID:2",))
    reading = _read(_event("TZID=Customized Time Zone", block))
    assert reading.draft.starts_at == datetime(2026, 9, 17, 8, tzinfo=UTC)  # 13:00 at +05:00
    assert (reading.draft.tzid, reading.losses) == ("Customized Time Zone", ())
    served = to_ical.render_vcalendar(_record(reading.draft))
    assert "DTSTART;TZID=Customized Time Zone:20260917T130000\r\n" in served
    assert "\r\n".join(block) + "\r\n" in served


def test_custom_tzid_with_commas_is_quoted_as_a_parameter_and_matched_to_its_escaped_vtimezone():
    name = "(UTC+01:00) Amsterdam, Berlin"
    block = _vtimezone(r"(UTC+01:00) Amsterdam\, Berlin", "+0100", "+0200")
    reading = _read(_event(f'TZID="{name}"', block))
    assert (reading.draft.starts_at, reading.draft.tzid, reading.losses) == (ONE_PM_BERLIN_UTC, name, ())
    served = to_ical.render_vcalendar(_record(reading.draft))
    assert f'DTSTART;TZID="{name}":20260917T130000\r\n' in served
    assert _served_start(served) == ONE_PM_BERLIN_UTC


def test_custom_zone_serves_a_crm_side_time_change_in_the_clients_definition():
    reading = _read(_event("TZID=Customized Time Zone", _vtimezone("Customized Time Zone", "+0500")))
    moved = replace(_record(reading.draft), starts_at=datetime(2026, 12, 1, 4, tzinfo=UTC),
                    ends_at=datetime(2026, 12, 1, 5, tzinfo=UTC))
    assert "DTSTART;TZID=Customized Time Zone:20261201T090000\r\n" in to_ical.render_vcalendar(moved)


def test_two_clients_custom_zones_of_one_name_are_each_read_with_their_own_definition():
    name = "Customized Time Zone"
    first = _read(_event(f"TZID={name}", _vtimezone(name, "+0500")))
    second = _read(_event(f"TZID={name}", _vtimezone(name, "-0300")))
    without = _read(_event(f"TZID={name}"), user_zone="UTC")
    assert first.draft.starts_at == datetime(2026, 9, 17, 8, tzinfo=UTC)
    assert second.draft.starts_at == datetime(2026, 9, 17, 16, tzinfo=UTC)
    assert (without.draft.starts_at, without.draft.tzid) == (datetime(2026, 9, 17, 13, tzinfo=UTC), None)
    assert without.losses == (f"TZID '{name}' (no definition: read in the user's time zone, served in UTC)",)


def test_vtimezone_repeating_more_than_yearly_is_no_definition_and_is_read_at_once():
    name = "Every Minute Time Zone"  # a name of its own: no earlier reading may have defined it
    block = [*_vtimezone(name, "+0100", "+0200", rule="FREQ=MINUTELY")[:-1], "END:VTIMEZONE"]
    block = [line if "BYMONTH=3" not in line else "RRULE:FREQ=MINUTELY" for line in block]
    result: list[from_ical.EventReading] = []
    reader = threading.Thread(target=lambda: result.append(_read(_event(f"TZID={name}", block), "UTC")),
                              daemon=True)
    reader.start()
    reader.join(timeout=20)
    assert not reader.is_alive(), "reading a MINUTELY VTIMEZONE did not finish in 20 s"
    assert (result[0].draft.starts_at, result[0].draft.tzid) == (datetime(2026, 9, 17, 13, tzinfo=UTC), None)


def test_custom_tzid_longer_than_the_column_keeps_its_instant_and_is_served_in_utc():
    name = "(UTC+01:00) " + "Amsterdam Berlin Bern Rome Stockholm Vienna " * 2
    reading = _read(_event(f'TZID="{name}"', _vtimezone(name, "+0100", "+0200")))
    assert (reading.draft.starts_at, reading.draft.tzid) == (ONE_PM_BERLIN_UTC, None)
    assert reading.losses == (f"TZID '{name}' (served in UTC)",)


def test_stored_custom_tzid_without_its_kept_vtimezone_is_served_safely_in_utc():
    reading = _read(_event("TZID=Customized Time Zone", _vtimezone("Customized Time Zone", "+0500")))
    record = replace(_record(reading.draft), client_extras=None)
    assert rendering.unservable(record) == "unknown TZID 'Customized Time Zone'"
    assert "DTSTART:20260917T080000Z\r\n" in rendering.served_text(record)


def test_defined_zone_reads_only_what_dateutil_can_and_refuses_sub_day_rules():
    berlin = rules.defined_zone(OUTLOOK_BERLIN)
    assert berlin is not None and berlin.utcoffset(datetime(2026, 1, 5)) == timedelta(hours=1)
    assert rules.defined_zone(_vtimezone("x", "+0100", rule="FREQ=YEARLY;BYHOUR=1,2,3")) is None
    assert rules.defined_zone(["BEGIN:VTIMEZONE", "TZID:x", "END:VTIMEZONE"]) is None
    assert rules.definition_tzid(_vtimezone(r"a\, b\; c", "+0100")) == "a, b; c"


def test_vendor_prefixed_tzid_with_its_vtimezone_is_read_and_served_in_that_definition():
    # Evolution's "/freeassociation.sourceforge.net/Europe/Berlin": icalendar would guess tzdata's
    # Europe/Berlin from the name; the client's own definition (here +05:00) is what rendering uses.
    name = "/example.org/2026/Europe/Berlin"
    with pytest.warns(Warning):  # icalendar says it guessed a zone from the name, which is not used
        reading = _read(_event(f"TZID={name}", _vtimezone(name, "+0500")))
    assert (reading.draft.starts_at, reading.draft.tzid, reading.losses) == (
        datetime(2026, 9, 17, 8, tzinfo=UTC), name, ())
    assert f"DTSTART;TZID={name}:20260917T130000\r\n" in to_ical.render_vcalendar(_record(reading.draft))
