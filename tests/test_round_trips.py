"""Issue 3, done-when 6: time zones and what the CRM does not model survive a round trip."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import icalendar
import pytest

from tests.factories import ALICE, IOS_REQUESTS, user, vevent

pytestmark = pytest.mark.e2e
CAL = f"/{ALICE}/crm/"
TOKYO_TZ = """BEGIN:VTIMEZONE
TZID:Asia/Tokyo
BEGIN:STANDARD
DTSTART:19700101T000000
TZOFFSETFROM:+0900
TZOFFSETTO:+0900
TZNAME:JST
END:STANDARD
END:VTIMEZONE"""


def _calendar(uid: str, dtstart: str, dtend: str, timezone_block: str = "") -> str:
    body = vevent(uid).replace("DTSTART:20261125T100000Z", dtstart).replace("DTEND:20261125T110000Z", dtend)
    if timezone_block:
        body = body.replace("BEGIN:VEVENT", timezone_block.replace("\n", "\r\n") + "\r\nBEGIN:VEVENT", 1)
    return body


CASES = {
    "TOKYO": ("DTSTART;TZID=Asia/Tokyo:20261125T100000", "DTEND;TZID=Asia/Tokyo:20261125T113000", TOKYO_TZ,
              datetime(2026, 11, 25, 10, tzinfo=ZoneInfo("Asia/Tokyo")), "Asia/Tokyo"),
    "NEWYORK": ("DTSTART;TZID=America/New_York:20261125T090000", "DTEND;TZID=America/New_York:20261125T100000", "",
                datetime(2026, 11, 25, 9, tzinfo=ZoneInfo("America/New_York")), "America/New_York"),
    "UTC": ("DTSTART:20261125T100000Z", "DTEND:20261125T110000Z", "",
            datetime(2026, 11, 25, 10, tzinfo=UTC), None),
    "FLOATING": ("DTSTART:20261125T100000", "DTEND:20261125T110000", "",
                 datetime(2026, 11, 25, 10, tzinfo=ZoneInfo("Europe/Berlin")), None),
}


@pytest.fixture
def phone(crm, server):
    crm.load({"users": [user(ALICE, timezone_name="Europe/Berlin")]})
    password = crm.enable(ALICE)
    with server.client(ALICE, password) as client:
        yield client


@pytest.mark.parametrize("name", sorted(CASES))
def test_timed_events_keep_their_instant_and_tzid(phone, crm, name):
    dtstart, dtend, block, instant, tzid = CASES[name]
    assert phone.put(f"{CAL}{name}.ics", content=_calendar(name, dtstart, dtend, block)).status_code == 201
    stored = next(a for a in crm.export()["activities"] if a["uid"] == name)
    assert datetime.fromisoformat(stored["start"]) == instant
    event = icalendar.Calendar.from_ical(phone.get(f"{CAL}{name}.ics").text).walk("VEVENT")[0]
    start = event["DTSTART"].dt
    if name == "FLOATING":  # read in the user's zone, served back floating
        assert start.tzinfo is None and start.replace(tzinfo=ZoneInfo("Europe/Berlin")) == instant
    else:
        assert start == instant and event["DTSTART"].params.get("TZID") == tzid


def test_all_day_event_stays_all_day(phone, crm):
    body = _calendar("ALLDAY", "DTSTART;VALUE=DATE:20261125", "DTEND;VALUE=DATE:20261127")
    assert phone.put(f"{CAL}ALLDAY.ics", content=body).status_code == 201
    stored = next(a for a in crm.export()["activities"] if a["uid"] == "ALLDAY")
    assert (stored["all_day"], stored["start"], stored["end"]) == (True, "2026-11-25", "2026-11-27")
    event = icalendar.Calendar.from_ical(phone.get(f"{CAL}ALLDAY.ics").text).walk("VEVENT")[0]
    assert str(event["DTSTART"].dt) == "2026-11-25" and str(event["DTEND"].dt) == "2026-11-27"


def _unfolded_lines(text: str) -> list[str]:
    return text.replace("\r\n ", "").replace("\r\n\t", "").split("\r\n")


def test_ios_event_keeps_apple_properties_and_acknowledged_alarm(phone, crm):
    href = f"{CAL}8F3C2B1A-5D4E-4C6B-9A7F-2E1D0C9B8A76.ics"
    sent = (IOS_REQUESTS / "06c-put-event-alarm-ack.ics").read_text().replace("\n", "\r\n").replace("\r\r\n", "\r\n")
    assert phone.put(href, content=sent.encode()).status_code == 201
    served = _unfolded_lines(phone.get(href).text)
    lines = _unfolded_lines(sent)
    up_to_first_alarm_end = lines[:lines.index("END:VALARM")]  # later alarms are dropped (SPEC 3.3)
    for line in up_to_first_alarm_end:
        if line.startswith(("X-APPLE-STRUCTURED-LOCATION", "URL", "TRANSP", "ACKNOWLEDGED", "X-WR-ALARMUID",
                            "X-APPLE-TRAVEL-ADVISORY-BEHAVIOR")):
            assert line in served, line
    assert any(line.endswith("geo:52.520008,13.404954") for line in served)


def test_alarm_acknowledgement_is_not_a_crm_change(phone, crm):
    href = f"{CAL}8F3C2B1A-5D4E-4C6B-9A7F-2E1D0C9B8A76.ics"
    update = (IOS_REQUESTS / "06b-put-event-update.ics").read_bytes()
    acknowledged = (IOS_REQUESTS / "06c-put-event-alarm-ack.ics").read_bytes()
    assert phone.put(href, content=update).status_code == 201
    before = next(a for a in crm.export()["activities"] if a["href"] in href)
    response = phone.put(href, content=acknowledged, headers={"If-Match": phone.get(href).headers["ETag"]})
    assert response.status_code == 204
    after = next(a for a in crm.export()["activities"] if a["href"] in href)
    assert after == before  # same fields, same updated_at
    assert "ACKNOWLEDGED" in phone.get(href).text
