"""Issue 10 "any TZID", against a real server on SQLite and PostgreSQL: Outlook's Windows zone
names and custom zones keep the TZID the client sent (SPEC 3.11), in GET and in REPORT answers.
"""

from __future__ import annotations

from datetime import UTC, datetime

import icalendar
import pytest

from tests import dav
from tests.factories import ALICE, sync_body, user

pytestmark = pytest.mark.e2e
CAL = f"/{ALICE}/crm/"
WINDOWS = "W. Europe Standard Time"
ONE_PM_BERLIN = datetime(2026, 9, 17, 11, tzinfo=UTC)  # 13:00 CEST
OUTLOOK_BERLIN = (
    "BEGIN:VTIMEZONE\r\nTZID:{tzid}\r\nBEGIN:STANDARD\r\nDTSTART:16010101T030000\r\nTZOFFSETFROM:+0200\r\n"
    "TZOFFSETTO:+0100\r\nRRULE:FREQ=YEARLY;INTERVAL=1;BYDAY=-1SU;BYMONTH=10\r\nEND:STANDARD\r\n"
    "BEGIN:DAYLIGHT\r\nDTSTART:16010101T020000\r\nTZOFFSETFROM:+0100\r\nTZOFFSETTO:+0200\r\n"
    "RRULE:FREQ=YEARLY;INTERVAL=1;BYDAY=-1SU;BYMONTH=3\r\nEND:DAYLIGHT\r\nEND:VTIMEZONE\r\n"
)
SECOND_ALARM = "BEGIN:VALARM\r\nACTION:DISPLAY\r\nDESCRIPTION:Second\r\nTRIGGER:-PT5M\r\nEND:VALARM\r\n"


def _outlook(uid: str, tzid_parameter: str, vtimezone: str = "", alarms: str = "") -> str:
    """An event as Outlook (and CalDAV Synchronizer) sends it."""
    return (
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//Microsoft Corporation//Outlook 16.0 MIMEDIR//EN\r\n"
        f"{vtimezone}BEGIN:VEVENT\r\nUID:{uid}\r\nDTSTAMP:20260901T080000Z\r\n"
        f"DTSTART;{tzid_parameter}:20260917T130000\r\nDTEND;{tzid_parameter}:20260917T140000\r\n"
        "SUMMARY:Quarterly review\r\nX-MICROSOFT-CDO-BUSYSTATUS:BUSY\r\n"
        "BEGIN:VALARM\r\nACTION:DISPLAY\r\nDESCRIPTION:Reminder\r\nTRIGGER:-PT15M\r\nEND:VALARM\r\n"
        f"{alarms}END:VEVENT\r\nEND:VCALENDAR\r\n"
    )


@pytest.fixture
def outlook(crm, server):
    crm.load({"users": [user(ALICE, timezone_name="America/New_York")]})
    password = crm.enable(ALICE)
    with server.client(ALICE, password) as client:
        yield client


def _start(text: str) -> icalendar.prop.vDDDTypes:
    """DTSTART as a client that reads only the served text (and its VTIMEZONEs) sees it."""
    return icalendar.Calendar.from_ical(text).walk("VEVENT")[0]["DTSTART"]


def _synced_texts(client) -> dict[str, str]:
    """Every event's calendar-data in a sync-collection REPORT, by href, with CRLF line ends
    (an XML parser reads CRLF as LF, XML 1.0 2.11)."""
    answer = dav.parse(dav.request(client, "REPORT", CAL, sync_body()))
    return {href: response["calendar_data"].replace("\n", "\r\n") for href, response in answer.responses.items()}


def _stored_start(crm, uid: str) -> datetime:
    stored = next(a for a in crm.export()["activities"] if a["uid"] == uid)
    return datetime.fromisoformat(stored["start"])


def test_windows_tzid_with_vtimezone_is_stored_verbatim_and_served_byte_for_byte(outlook, crm):
    body = _outlook("win-1", f"TZID={WINDOWS}", OUTLOOK_BERLIN.format(tzid=WINDOWS))
    put = outlook.put(f"{CAL}win-1.ics", content=body.encode("utf-8"))
    assert put.status_code == 201 and put.headers.get("ETag")
    assert _stored_start(crm, "win-1") == ONE_PM_BERLIN
    get = outlook.get(f"{CAL}win-1.ics")
    assert get.content == body.encode("utf-8") and get.headers["ETag"] == put.headers["ETag"]
    assert _synced_texts(outlook)[f"{CAL}win-1.ics"] == body


def test_windows_tzid_without_vtimezone_is_served_with_the_tzid_sent_and_a_vtimezone(outlook, crm):
    put = outlook.put(f"{CAL}win-2.ics", content=_outlook("win-2", f"TZID={WINDOWS}").encode("utf-8"))
    assert put.status_code == 201 and "ETag" not in put.headers  # the client fetches the server's version
    assert _stored_start(crm, "win-2") == ONE_PM_BERLIN
    served = outlook.get(f"{CAL}win-2.ics").text
    assert f"DTSTART;TZID={WINDOWS}:20260917T130000\r\n" in served
    assert f"BEGIN:VTIMEZONE\r\nTZID:{WINDOWS}\r\n" in served
    assert _start(served).dt.astimezone(UTC) == ONE_PM_BERLIN
    assert _synced_texts(outlook)[f"{CAL}win-2.ics"] == served


def test_custom_tzid_not_kept_verbatim_is_served_with_its_vtimezone_and_the_tzid_sent(outlook, crm):
    name = "(UTC+01:00) Amsterdam, Berlin, Bern, Rome, Stockholm, Vienna"
    block = OUTLOOK_BERLIN.format(tzid=name.replace(",", "\\,"))
    body = _outlook("custom-1", f'TZID="{name}"', block, alarms=SECOND_ALARM)  # 2 alarms: not kept whole
    put = outlook.put(f"{CAL}custom-1.ics", content=body.encode("utf-8"))
    assert put.status_code == 201 and "ETag" not in put.headers
    assert _stored_start(crm, "custom-1") == ONE_PM_BERLIN
    served = outlook.get(f"{CAL}custom-1.ics").text
    assert f'DTSTART;TZID="{name}":20260917T130000\r\n' in served.replace("\r\n ", "")  # a long line, folded
    assert block in served and "X-MICROSOFT-CDO-BUSYSTATUS:BUSY\r\n" in served
    assert _start(served).dt.astimezone(UTC) == ONE_PM_BERLIN
    assert _synced_texts(outlook)[f"{CAL}custom-1.ics"] == served


def test_custom_tzid_with_vtimezone_is_read_in_that_definition_not_the_users_zone(outlook, crm):
    block = OUTLOOK_BERLIN.format(tzid="Customized Time Zone")
    put = outlook.put(f"{CAL}custom-2.ics", content=_outlook("custom-2", "TZID=Customized Time Zone", block))
    assert put.status_code == 201 and put.headers.get("ETag")  # nothing lost: the client's bytes are served
    assert _stored_start(crm, "custom-2") == ONE_PM_BERLIN
    served = outlook.get(f"{CAL}custom-2.ics").text
    assert "DTSTART;TZID=Customized Time Zone:20260917T130000\r\n" in served and block in served
