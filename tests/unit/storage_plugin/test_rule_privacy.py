"""SPEC 3.8 "Privacy": CLASS:PRIVATE on a client <-> the activity's private flag, both directions.

No server: storage_plugin.rules, from_ical.read_event and to_ical.render_vcalendar.
"""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime

import pytest

from crm_model.records import ActivityRecord
from storage_plugin import from_ical, rules, to_ical

T0 = datetime(2025, 3, 18, 10, tzinfo=UTC)


def _event(*extra: str) -> str:
    lines = ["BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//test//EN", "BEGIN:VEVENT", "UID:p-1",
             "DTSTAMP:20250301T000000Z", "DTSTART:20250318T100000Z", "DTEND:20250318T110000Z",
             "SUMMARY:Lunch", *extra, "END:VEVENT", "END:VCALENDAR"]
    return "\r\n".join(lines) + "\r\n"


def _read(text: str) -> from_ical.EventReading:
    return from_ical.read_event(text, default_timezone="UTC", recurrence=rules.RECURRENCE_REJECT)


def _record(private: bool, client_class: str | None = None) -> ActivityRecord:
    extras = json.dumps({"class": client_class}) if client_class else None
    return ActivityRecord(
        id="a-1", uid="p-1", href="p-1.ics", owner_id=1, owner_email="alice@example.com",
        owner_name="Alice", owner_timezone="UTC", type="meeting", title="Lunch", starts_at=T0,
        ends_at=T0.replace(hour=11), all_day=False, tzid=None, floating=False, location=None,
        description=None, private=private, reminder_minutes=None, participants=(), source="crm",
        created_at=T0, updated_at=T0, change_pos=1, client_extras=extras,
    )


def _class_lines(text: str) -> list[str]:
    return [line for line in text.split("\r\n") if line.startswith("CLASS")]


@pytest.mark.parametrize("value,private", [
    ("PRIVATE", True), ("CONFIDENTIAL", True), ("private", True), (" PRIVATE ", True),
    ("PUBLIC", False), ("X-SECRET", False), ("", False), (None, False),
])
def test_is_private_maps_class_values(value, private):
    assert rules.is_private(value) is private


def test_class_line_for_private_and_public_activities():
    assert rules.class_line(True, client_sent_class=False) == "CLASS:PRIVATE"
    assert rules.class_line(True, client_sent_class=True) == "CLASS:PRIVATE"
    assert rules.class_line(False, client_sent_class=True) == "CLASS:PUBLIC"
    assert rules.class_line(False, client_sent_class=False) is None


def test_client_private_class_sets_the_private_flag():
    reading = _read(_event("CLASS:PRIVATE"))
    assert reading.draft.private is True
    assert reading.losses == ()


def test_client_without_class_is_not_private():
    assert _read(_event()).draft.private is False
    assert _read(_event("CLASS:PUBLIC")).draft.private is False


def test_confidential_is_private_but_reported_as_served_private():
    reading = _read(_event("CLASS:CONFIDENTIAL"))
    assert reading.draft.private is True
    assert reading.losses == ("CLASS:CONFIDENTIAL (served as CLASS:PRIVATE)",)


def test_unknown_class_is_public_and_reported():
    assert _read(_event("CLASS:X-SECRET")).losses == ("CLASS:X-SECRET (served as CLASS:PUBLIC)",)


def test_private_activity_is_served_class_private():
    assert _class_lines(to_ical.render_vcalendar(_record(private=True))) == ["CLASS:PRIVATE"]


def test_public_activity_is_served_without_class_unless_the_client_sent_one():
    assert _class_lines(to_ical.render_vcalendar(_record(private=False))) == []
    made_public = _record(private=False, client_class="CLASS:PRIVATE")  # un-marked in the CRM
    assert _class_lines(to_ical.render_vcalendar(made_public)) == ["CLASS:PUBLIC"]


def test_private_flag_round_trips_through_read_and_render():
    draft = _read(_event("CLASS:PRIVATE")).draft
    record = replace(_record(private=draft.private), client_extras=draft.client_extras)
    served = to_ical.render_vcalendar(record)
    assert _class_lines(served) == ["CLASS:PRIVATE"]
    assert _read(served).draft.private is True
