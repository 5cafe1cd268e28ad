"""Issue 3, done-when 2-5: alarms, recurrence, participants, read-only, privacy, reassignment."""

from __future__ import annotations

import caldav
import pytest

from tests import dav, vdir
from tests.conftest import settings_with, start_server
from tests.factories import ALICE, BOB, IOS_REQUESTS, activity, soon, user, vevent

pytestmark = pytest.mark.e2e
CAL = f"/{ALICE}/crm/"
THREE_ALARMS = """BEGIN:VALARM
ACTION:DISPLAY
DESCRIPTION:relative
TRIGGER:-PT15M
END:VALARM
BEGIN:VALARM
ACTION:DISPLAY
DESCRIPTION:absolute
TRIGGER;VALUE=DATE-TIME:20261125T090000Z
END:VALARM
BEGIN:VALARM
ACTION:DISPLAY
DESCRIPTION:end related
TRIGGER;RELATED=END:-PT30M
END:VALARM"""


@pytest.fixture
def setup(crm, server):
    crm.load({
        "users": [user(ALICE), user(BOB)],
        "contacts": [{"id": "c-1", "name": "Kenji Sato", "email": "kenji@example.jp"}],
        "leads": [{"id": "l-1", "name": "Ana Ruiz", "email": "ana@example.com"}],
        "activities": [activity("a-1", ALICE, soon(1)), activity("t-1", ALICE, soon(2), type="task")],
    })
    return {ALICE: crm.enable(ALICE), BOB: crm.enable(BOB)}


def _unfolded(text: str) -> str:
    return text.replace("\r\n ", "")


def _activity(crm, uid: str) -> dict | None:
    return next((a for a in crm.export()["activities"] if a["uid"] == uid), None)


def test_three_alarms_become_one_reminder_and_the_client_ends_with_one(setup, crm, server, tmp_path):
    config, local = vdir.setup_pair(tmp_path, f"{server.url}{CAL}", ALICE, setup[ALICE])
    (local / "ALARMS-1.ics").write_text(vevent("ALARMS-1", extra=THREE_ALARMS))
    vdir.run(config, "sync")  # upload: the server keeps the first alarm only
    assert _activity(crm, "ALARMS-1")["reminder_minutes"] == 15
    vdir.run(config, "sync")  # no ETag came back, so the server's version is fetched
    text = vdir.local_events(local)["ALARMS-1"]
    assert text.count("BEGIN:VALARM") == 1 and "TRIGGER:-PT15M" in text

    client = caldav.DAVClient(url=server.url, username=ALICE, password=setup[ALICE])
    event = client.principal().calendars()[0].event_by_uid("ALARMS-1")
    assert len(event.icalendar_component.walk("VALARM")) == 1


@pytest.mark.parametrize("alarm,minutes", [
    ("TRIGGER;VALUE=DATE-TIME:20261125T090000Z", 60),   # absolute, an hour before 10:00Z
    ("TRIGGER;RELATED=END:-PT30M", -30),                  # 30 min before the 11:00Z end
    ("TRIGGER:-PT1H30M", 90),
])
def test_first_alarm_trigger_is_converted_to_minutes_before_start(setup, crm, server, alarm, minutes):
    body = vevent("CONVERT-1", extra=f"BEGIN:VALARM\nACTION:AUDIO\n{alarm}\nEND:VALARM")
    with server.client(ALICE, setup[ALICE]) as phone:
        assert phone.put(f"{CAL}CONVERT-1.ics", content=body).status_code == 201
    assert _activity(crm, "CONVERT-1")["reminder_minutes"] == minutes


def test_apple_no_alert_placeholder_is_not_an_alarm(setup, crm, server):
    placeholder = ("BEGIN:VALARM\nACTION:NONE\nTRIGGER;VALUE=DATE-TIME:19760401T005545Z\n"
                   "X-APPLE-DEFAULT-ALARM:TRUE\nEND:VALARM\nBEGIN:VALARM\nACTION:DISPLAY\n"
                   "TRIGGER:-PT5M\nDESCRIPTION:x\nEND:VALARM")
    with server.client(ALICE, setup[ALICE]) as phone:
        phone.put(f"{CAL}NONE-1.ics", content=vevent("NONE-1", extra=placeholder))
    assert _activity(crm, "NONE-1")["reminder_minutes"] == 5


def test_recurring_event_is_refused_with_an_explanation(setup, crm, server):
    before = crm.export()
    with server.client(ALICE, setup[ALICE]) as phone:
        response = phone.put(f"{CAL}series.ics", content=(IOS_REQUESTS / "07-put-recurring.ics").read_bytes())
    assert response.status_code == 403
    assert "Recurring events are not supported by the CRM calendar" in response.text
    assert "DAV:" in response.text and crm.export() == before


def test_recurring_event_keeps_first_occurrence_when_configured(setup, crm, server_settings):
    running, http_server = start_server(settings_with(server_settings, recurrence="first-occurrence"))
    try:
        body = vevent("WEEKLY-1", extra="RRULE:FREQ=WEEKLY;COUNT=5")
        with running.client(ALICE, setup[ALICE]) as phone:
            assert phone.put(f"{CAL}WEEKLY-1.ics", content=body).status_code == 201
            assert "RRULE" not in phone.get(f"{CAL}WEEKLY-1.ics").text
    finally:
        http_server.shutdown()
        http_server.server_close()
        running.engine.dispose()
    stored = _activity(crm, "WEEKLY-1")
    assert stored["start"].startswith("2026-11-25T10:00")


ATTENDEES = """ATTENDEE;CN=Kenji;PARTSTAT=ACCEPTED:mailto:KENJI@Example.JP
ATTENDEE;CN=Ana:mailto:ana@example.com
ATTENDEE;CN=Stranger:mailto:stranger@elsewhere.example"""


def test_attendees_link_to_contacts_and_leads_and_deletion_is_one_way(setup, crm, server):
    href = f"{CAL}PEOPLE-1.ics"
    with server.client(ALICE, setup[ALICE]) as phone:
        assert phone.put(href, content=vevent("PEOPLE-1", extra=ATTENDEES)).status_code == 201
        stored = _activity(crm, "PEOPLE-1")
        assert stored["participants"] == [{"contact": "c-1"}, {"lead": "l-1"},
                                          {"email": "stranger@elsewhere.example", "name": "Stranger"}]
        token = dav.parse(dav.request(phone, "REPORT", CAL, dav.body("04b-sync-collection-initial.xml"))).sync_token
        without_lead = ATTENDEES.replace("ATTENDEE;CN=Ana:mailto:ana@example.com\n", "")
        phone.put(href, content=vevent("PEOPLE-1", extra=without_lead),
                  headers={"If-Match": phone.get(href).headers["ETag"]})
        assert len(_activity(crm, "PEOPLE-1")["participants"]) == 3
        changed = dav.parse(dav.request(phone, "REPORT", CAL, dav.body("04-sync-collection.xml", SYNC_TOKEN=token)))
        assert href in changed.hrefs(200) and "mailto:ana@example.com" in _unfolded(phone.get(href).text)

        crm_side = dict(_activity(crm, "PEOPLE-1"))
        crm_side["participants"] = [p for p in crm_side["participants"] if "contact" not in p]
        crm.load({"activities": [crm_side]})
        again = dav.parse(dav.request(phone, "REPORT", CAL,
                                      dav.body("04-sync-collection.xml", SYNC_TOKEN=changed.sync_token)))
        assert again.hrefs(200) == {href}
        assert "kenji@example.jp" not in _unfolded(phone.get(href).text).lower()


def test_read_only_calendar_refuses_writes_and_says_so(setup, crm, server):
    crm.run("caldav", "settings", ALICE, "--sync-type", "read-only")
    href = f"{CAL}{_activity(crm, crm.export(ALICE)['activities'][0]['uid'])['href']}"
    before = crm.export()
    with server.client(ALICE, setup[ALICE]) as phone:
        listing = dav.parse(dav.request(phone, "PROPFIND", CAL, dav.body("03-propfind-home.xml"), "0"))
        assert listing.root.find(".//D:current-user-privilege-set//D:write", dav.NS) is None
        put = phone.put(f"{CAL}NEW-RO.ics", content=vevent("NEW-RO"))
        delete = phone.delete(href)
    for response in (put, delete):
        assert response.status_code == 403 and "CRM-to-calendar only" in response.text
    assert crm.export() == before


def test_unsynced_type_is_not_offered_and_private_sets_the_flag(setup, crm, server):
    with server.client(ALICE, setup[ALICE]) as phone:
        offered = dav.parse(dav.request(phone, "REPORT", CAL, dav.body("04b-sync-collection-initial.xml"))).hrefs(200)
        phone.put(f"{CAL}PRIV-1.ics", content=vevent("PRIV-1", extra="CLASS:PRIVATE"))
        assert "CLASS:PRIVATE" in phone.get(f"{CAL}PRIV-1.ics").text
    task_href = f"{CAL}{next(a['href'] for a in crm.export()['activities'] if a['id'] == 't-1')}"
    assert task_href not in offered and len(offered) == 1
    assert _activity(crm, "PRIV-1")["private"] is True


def test_reassignment_moves_the_event_between_calendars(setup, crm, server):
    with server.client(ALICE, setup[ALICE]) as alice, server.client(BOB, setup[BOB]) as bob:
        bob_cal = f"/{BOB}/crm/"
        a_token = dav.parse(dav.request(alice, "REPORT", CAL, dav.body("04b-sync-collection-initial.xml"))).sync_token
        b_token = dav.parse(dav.request(bob, "REPORT", bob_cal, dav.body("04b-sync-collection-initial.xml"))).sync_token
        moved = dict(next(a for a in crm.export()["activities"] if a["id"] == "a-1"), owner=BOB)
        crm.load({"activities": [moved]})
        a_changes = dav.parse(dav.request(alice, "REPORT", CAL, dav.body("04-sync-collection.xml", SYNC_TOKEN=a_token)))
        b_changes = dav.parse(dav.request(bob, "REPORT", bob_cal,
                                          dav.body("04-sync-collection.xml", SYNC_TOKEN=b_token)))
    assert a_changes.hrefs(404) == {f"{CAL}{moved['href']}"} and not a_changes.hrefs(200)
    assert b_changes.hrefs(200) == {f"{bob_cal}{moved['href']}"}


@pytest.mark.parametrize("method,path", [("MKCALENDAR", f"/{ALICE}/other/"), ("DELETE", CAL)])
def test_creating_or_deleting_calendars_is_refused_clearly(setup, crm, server, method, path):
    with server.client(ALICE, setup[ALICE]) as phone:
        response = phone.request(method, path)
        assert phone.request("PROPFIND", CAL, headers={"Depth": "0"}).status_code == 207
    assert response.status_code == 403 and "exactly one calendar" in response.text
