"""Issue 9: hostile input never gets a 5xx, and no refused event changes anything.

Every input below is PUT to the real server (SQLite, and PostgreSQL when
configured): values at a limit are stored (2xx), values over one get 400 whose
message names the limit, and after each refusal ``crm export`` is unchanged.
After all of them the calendar still answers a filtered calendar-query, a
free-busy query and a full sync-collection (storage_plugin.limits).
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from tests import dav
from tests.factories import ALICE, activity, free_busy_body, query_body, soon, sync_body, user, vevent

pytestmark = pytest.mark.e2e
CAL = f"/{ALICE}/crm/"


@dataclass(frozen=True)
class Case:
    """One PUT: its body, its resource name, and what the answer must say (None: stored)."""

    body: str | bytes
    name: str = "event.ics"
    refusal: str | None = None


def _at(start: str, end: str | None = None, uid: str = "edge") -> str:
    """An event whose DTSTART (and DTEND) lines are given whole."""
    text = vevent(uid).replace("DTSTART:20261125T100000Z", start)
    return text.replace("DTEND:20261125T110000Z\r\n", "" if end is None else end + "\r\n")


def _attendees(count: int, uid: str) -> str:
    return vevent(uid, extra="\n".join(f"ATTENDEE;CN=Guest {i}:mailto:guest{i}@example.com" for i in range(count)))


def _alarms(count: int, uid: str) -> str:
    return vevent(uid, extra="\n".join(f"BEGIN:VALARM\nACTION:DISPLAY\nTRIGGER:-PT{i + 1}M\nEND:VALARM"
                                       for i in range(count)))


_ALARM = "BEGIN:VALARM\nACTION:DISPLAY\nTRIGGER{}\nEND:VALARM"
_RANGE = "from 1900-01-01 to 2200-12-31"
CASES = {
    "SUMMARY of 501 characters": Case(vevent("t-501", summary="x" * 501), refusal="SUMMARY is 501 characters"),
    "SUMMARY of 500 characters": Case(vevent("t-500", summary="x" * 500), "t-500.ics"),
    "UID of 256 characters": Case(vevent("u" * 256), refusal="UID is 256 characters"),
    "UID of 255 characters": Case(vevent("u" * 255), "u-255.ics"),
    "resource name of 256 characters": Case(vevent("h-256"), "h" * 252 + ".ics", "resource name is 256"),
    "resource name of 255 characters": Case(vevent("h-255"), "h" * 251 + ".ics"),
    "attendee address of 321 characters": Case(
        vevent("a-321", extra=f"ATTENDEE:mailto:{'a' * 309}@example.com"), refusal="address is 321 characters"),
    "attendee CN of 201 characters": Case(
        vevent("cn-201", extra=f"ATTENDEE;CN={'n' * 201}:mailto:cn@example.com"), refusal="CN is 201 characters"),
    "NUL in SUMMARY": Case(vevent("nul-1", summary="a\x00b"), refusal="U+0000"),
    "NUL in a kept X- property": Case(vevent("nul-2", extra="X-NOTE:a\x00b"), refusal="U+0000"),
    "escape character in DESCRIPTION": Case(vevent("esc-1", extra="DESCRIPTION:\x1b[31mred"), refusal="U+001B"),
    "a surrogate encoded in UTF-8": Case(vevent("sur-1").encode().replace(b"Client", b"\xed\xa0\x80"),
                                         refusal="not UTF-8"),
    "characters outside the BMP": Case(vevent("emoji-1", summary="Call \U0001F4DE \U00020000"), "emoji-1.ics"),
    "1,001 attendees": Case(_attendees(1001, "att-1001"), refusal="1001 attendees is more than the limit of 1000"),
    "1,000 attendees": Case(_attendees(1000, "att-1000"), "att-1000.ics"),
    "21 alarms": Case(_alarms(21, "alarm-21"), refusal="21 alarms is more than the limit of 20"),
    "20 alarms": Case(_alarms(20, "alarm-20"), "alarm-20.ics"),
    "year 202": Case(_at("DTSTART:02021215T100000Z", "DTEND:02021215T110000Z"), refusal=_RANGE),
    "all-day date in year 1": Case(_at("DTSTART;VALUE=DATE:00010101"), refusal=_RANGE),
    "year 1 in Asia/Tokyo": Case(_at("DTSTART;TZID=Asia/Tokyo:00010101T000000"), refusal=_RANGE),
    "year 9999 in America/New_York": Case(_at("DTSTART;TZID=America/New_York:99991231T230000"), refusal=_RANGE),
    "DURATION of 9,999,999 weeks": Case(_at("DTSTART:20261125T100000Z", "DURATION:P9999999W"), refusal=_RANGE),
    "TRIGGER of 9,999,999 weeks": Case(vevent("trig-1", extra=_ALARM.format(":-P9999999W")), refusal=_RANGE),
    "TRIGGER of 400 days": Case(vevent("trig-2", extra=_ALARM.format(":-P400D")), refusal="366 days"),
    "first instant of 1900": Case(_at("DTSTART:19000101T000000Z", "DTEND:19000101T010000Z", "edge-1900"),
                                  "edge-1900.ics"),
    "last day of 2200, all day": Case(_at("DTSTART;VALUE=DATE:22001231", None, "edge-2200"), "edge-2200.ics"),
}


@pytest.fixture
def password(crm, server) -> str:
    crm.load({"users": [user(ALICE)], "activities": [activity("a-1", ALICE, soon(1))]})
    return crm.enable(ALICE)


def test_every_hostile_input_gets_a_clear_answer_and_the_calendar_keeps_working(server, crm, password):
    with server.client(ALICE, password) as client:
        for label, case in CASES.items():
            before = crm.export()
            response = client.put(CAL + case.name, content=case.body, headers={"Content-Type": "text/calendar"})
            if case.refusal is None:
                assert response.status_code in (201, 204), (label, response.status_code, response.text)
                continue
            assert response.status_code == 400, (label, response.status_code, response.text)
            assert case.refusal in response.text, (label, response.text)
            assert crm.export() == before, label

        query = dav.parse(dav.request(client, "REPORT", CAL, query_body()))
        assert len(query.hrefs()) == 1 + sum(case.refusal is None for case in CASES.values())
        assert dav.parse(dav.request(client, "REPORT", CAL, query_body(summary="x"))).hrefs()
        free_busy = dav.request(client, "REPORT", CAL, free_busy_body())
        assert free_busy.status_code == 200 and "BEGIN:VFREEBUSY" in free_busy.text
        sync = dav.parse(dav.request(client, "REPORT", CAL, sync_body()))
        assert sync.hrefs(200) == query.hrefs(200)
