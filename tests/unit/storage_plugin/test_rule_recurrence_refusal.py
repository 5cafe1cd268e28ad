"""SPEC 3.4 "No recurrence": recurring events are refused, or (a setting) kept as their first occurrence.

No server: storage_plugin.rules and from_ical.read_event on plain strings.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from storage_plugin import from_ical, rules
from tests.factories import IOS_REQUESTS

MASTER = ["UID:series-1", "DTSTAMP:20250301T000000Z", "DTSTART:20250317T090000Z",
          "DTEND:20250317T093000Z", "SUMMARY:Stand-up"]


def _calendar(*events: list[str]) -> str:
    lines = ["BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//test//EN"]
    for event in events:
        lines += ["BEGIN:VEVENT", *event, "END:VEVENT"]
    return "\r\n".join([*lines, "END:VCALENDAR"]) + "\r\n"


OVERRIDE = ["UID:series-1", "DTSTAMP:20250301T000000Z", "RECURRENCE-ID:20250324T090000Z",
            "DTSTART:20250324T110000Z", "DTEND:20250324T113000Z", "SUMMARY:Stand-up (moved)"]
RECURRING = {
    "RRULE": _calendar([*MASTER, "RRULE:FREQ=WEEKLY;COUNT=10"]),
    "RDATE": _calendar([*MASTER, "RDATE:20250320T090000Z"]),
    "EXDATE": _calendar([*MASTER, "EXDATE:20250324T090000Z"]),
    "RECURRENCE-ID": _calendar(MASTER, OVERRIDE),
}


def _read(text: str, policy: str) -> from_ical.EventReading:
    return from_ical.read_event(text, default_timezone="UTC", recurrence=policy)


@pytest.mark.parametrize("name", sorted(RECURRING))
def test_recurring_event_is_refused_under_reject(name):
    with pytest.raises(rules.RecurrenceRefusedError, match="Recurring events are not supported"):
        _read(RECURRING[name], rules.RECURRENCE_REJECT)


def test_recorded_ios_series_is_refused_under_reject():
    text = (IOS_REQUESTS / "07-put-recurring.ics").read_text()
    with pytest.raises(rules.RecurrenceRefusedError):
        _read(text, rules.RECURRENCE_REJECT)
    with pytest.raises(rules.RecurrenceRefusedError):  # parse_event keeps the same contract
        from_ical.parse_event(text, default_timezone="UTC", recurrence=rules.RECURRENCE_REJECT)


def test_unknown_policy_refuses_too():
    with pytest.raises(rules.RecurrenceRefusedError):
        _read(RECURRING["RRULE"], "something-else")


@pytest.mark.parametrize("name", sorted(RECURRING))
def test_first_occurrence_keeps_the_master_and_reports_the_loss(name):
    reading = _read(RECURRING[name], rules.RECURRENCE_FIRST_OCCURRENCE)
    assert reading.draft.title == "Stand-up"
    assert reading.draft.starts_at == datetime(2025, 3, 17, 9, tzinfo=UTC)
    expected = "1 overridden occurrence (RECURRENCE-ID)" if name == "RECURRENCE-ID" else f"the recurrence ({name})"
    assert reading.losses == (expected,)
    assert name not in reading.draft.client_extras


def test_first_occurrence_of_recorded_ios_series_reports_rules_and_override():
    text = (IOS_REQUESTS / "07-put-recurring.ics").read_text()
    reading = _read(text, rules.RECURRENCE_FIRST_OCCURRENCE)
    assert reading.draft.title == "Weekly sales stand-up"
    assert reading.draft.starts_at == datetime(2025, 3, 17, 8, tzinfo=UTC)  # 09:00 Berlin
    assert reading.draft.reminder_minutes == 10
    assert reading.losses == ("the recurrence (RRULE, EXDATE)", "1 overridden occurrence (RECURRENCE-ID)")


def test_only_overrides_and_no_master_is_invalid():
    with pytest.raises(from_ical.InvalidEventError):
        _read(_calendar(OVERRIDE), rules.RECURRENCE_FIRST_OCCURRENCE)


def test_check_recurrence_passes_single_events_and_refuses_series():
    rules.check_recurrence(False, rules.RECURRENCE_REJECT)
    rules.check_recurrence(True, rules.RECURRENCE_FIRST_OCCURRENCE)
    with pytest.raises(rules.RecurrenceRefusedError) as refused:
        rules.check_recurrence(True, rules.RECURRENCE_REJECT)
    assert str(refused.value) == rules.RECURRENCE_REFUSAL
