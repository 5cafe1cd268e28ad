"""SPEC 3.3 "First alarm only": the first real VALARM becomes the one reminder.

No server: storage_plugin.rules and from_ical.read_event on plain strings.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from storage_plugin import from_ical, rules

START = datetime(2025, 3, 18, 10, tzinfo=UTC)
END = datetime(2025, 3, 18, 11, tzinfo=UTC)


def _event(*alarms: str, start: str = "DTSTART:20250318T100000Z",
           end: str = "DTEND:20250318T110000Z") -> str:
    """A one-event calendar (10:00-11:00 UTC) with the given VALARM bodies."""
    lines = ["BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//test//EN", "BEGIN:VEVENT",
             "UID:alarm-1", "DTSTAMP:20250301T000000Z", start, end, "SUMMARY:Call"]
    for alarm in alarms:
        lines += ["BEGIN:VALARM", *alarm.split("\n"), "END:VALARM"]
    lines += ["END:VEVENT", "END:VCALENDAR"]
    return "\r\n".join(lines) + "\r\n"


def _read(text: str) -> from_ical.EventReading:
    return from_ical.read_event(text, default_timezone="UTC", recurrence=rules.RECURRENCE_REJECT)


DISPLAY_15 = "ACTION:DISPLAY\nDESCRIPTION:relative\nTRIGGER:-PT15M\nX-WR-ALARMUID:first"
ABSOLUTE = "ACTION:DISPLAY\nDESCRIPTION:absolute\nTRIGGER;VALUE=DATE-TIME:20250318T090000Z\nX-WR-ALARMUID:second"
END_RELATED = "ACTION:DISPLAY\nDESCRIPTION:end related\nTRIGGER;RELATED=END:-PT30M\nX-WR-ALARMUID:third"
APPLE_NO_ALERT = ("ACKNOWLEDGED:20250310T081530Z\nACTION:NONE\nTRIGGER;VALUE=DATE-TIME:19760401T005545Z\n"
                  "X-APPLE-DEFAULT-ALARM:TRUE\nX-WR-ALARMUID:placeholder")


def test_only_the_first_real_alarm_becomes_the_reminder():
    reading = _read(_event(DISPLAY_15, ABSOLUTE, END_RELATED))
    assert reading.draft.reminder_minutes == 15
    assert '"X-WR-ALARMUID:first"' in reading.draft.client_extras
    assert "second" not in reading.draft.client_extras and "third" not in reading.draft.client_extras


def test_later_alarms_are_reported_as_losses():
    assert _read(_event(DISPLAY_15, ABSOLUTE, END_RELATED)).losses == ("2 alarms after the first",)
    assert _read(_event(DISPLAY_15, END_RELATED)).losses == ("1 alarm after the first",)


def test_apple_no_alert_placeholder_is_skipped_and_not_a_loss():
    reading = _read(_event(APPLE_NO_ALERT, "ACTION:DISPLAY\nDESCRIPTION:x\nTRIGGER:-PT5M"))
    assert reading.draft.reminder_minutes == 5
    assert reading.losses == ()
    assert "placeholder" not in reading.draft.client_extras


def test_placeholder_alone_gives_no_reminder_and_no_loss():
    reading = _read(_event(APPLE_NO_ALERT))
    assert reading.draft.reminder_minutes is None
    assert reading.losses == ()


def test_absolute_trigger_is_converted_to_minutes_before_start():
    reading = _read(_event(ABSOLUTE))
    assert reading.draft.reminder_minutes == 60
    assert reading.losses == ()


def test_end_related_trigger_is_converted_to_minutes_before_start():
    assert _read(_event(END_RELATED)).draft.reminder_minutes == -30  # 30 min after the 10:00 start
    reading = _read(_event("ACTION:DISPLAY\nDESCRIPTION:x\nTRIGGER;RELATED=END:-PT1H30M"))
    assert reading.draft.reminder_minutes == 30


def test_trigger_with_seconds_is_rounded_and_reported():
    reading = _read(_event("ACTION:DISPLAY\nDESCRIPTION:x\nTRIGGER:-PT10M30S"))
    assert reading.draft.reminder_minutes in (10, 11)
    assert reading.losses == ("the alarm TRIGGER is not a whole number of minutes (rounded)",)


def test_alarm_without_trigger_keeps_no_reminder_and_is_reported():
    reading = _read(_event("ACTION:DISPLAY\nDESCRIPTION:x"))
    assert reading.draft.reminder_minutes is None
    assert reading.losses == ("the first alarm has no TRIGGER (no reminder kept)",)


def test_non_display_action_is_served_as_display_and_reported():
    reading = _read(_event("ACTION:AUDIO\nTRIGGER:-PT10M\nATTACH;VALUE=URI:Basso"))
    assert reading.draft.reminder_minutes == 10
    assert reading.losses == ("the alarm's ACTION:AUDIO (served as ACTION:DISPLAY)",)


def test_absolute_trigger_on_an_all_day_event_is_reported():
    text = _event("ACTION:DISPLAY\nDESCRIPTION:x\nTRIGGER;VALUE=DATE-TIME:20250317T170000Z",
                  start="DTSTART;VALUE=DATE:20250318", end="DTEND;VALUE=DATE:20250319")
    assert _read(text).losses == (
        "an absolute alarm TRIGGER on an all-day event (served relative to the start)",)


def test_rule_functions_pick_first_real_alarm_and_convert_triggers():
    assert rules.is_real_alarm("DISPLAY") and rules.is_real_alarm(None) and rules.is_real_alarm("audio")
    assert not rules.is_real_alarm("NONE") and not rules.is_real_alarm("none")
    assert rules.keep_first_alarm(["a", "b", "c"], ["NONE", "AUDIO", "DISPLAY"]) == "b"
    assert rules.keep_first_alarm(["a"], ["NONE"]) is None
    convert = rules.minutes_before_start
    assert convert(timedelta(minutes=-15), related_end=False, start=START, end=END) == 15
    assert convert(START - timedelta(hours=2), related_end=False, start=START, end=END) == 120
    assert convert(timedelta(minutes=-90), related_end=True, start=START, end=END) == 30
    assert rules.seconds_before_start(timedelta(seconds=-30), related_end=False, start=START, end=END) == 30
