"""Issue 8: one rendering, one ETag; verbatim round trips; refusals that say the right thing.

Done-when 1-3, end to end against the real server, on SQLite and PostgreSQL.
"""

from __future__ import annotations

import re

import pytest
from sqlalchemy import text

from tests import dav
from tests.factories import ALICE, BOB, IOS_REQUESTS, activity, soon, user, vevent

pytestmark = pytest.mark.e2e
CAL = f"/{ALICE}/crm/"
ANNA = "anna@example.com"
QUERY = """<?xml version="1.0" encoding="UTF-8"?>
<C:calendar-query xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav">
  <D:prop><D:getetag/><C:calendar-data/></D:prop>
  <C:filter><C:comp-filter name="VCALENDAR"><C:comp-filter name="VEVENT">
  <C:time-range start="{start}" end="{end}"/></C:comp-filter></C:comp-filter></C:filter>
</C:calendar-query>"""


@pytest.fixture
def phone(crm, server):
    crm.load({
        "users": [user(ALICE, "Alice Archer", "Europe/Berlin"), user(BOB)],
        "contacts": [{"id": "c-1", "name": "Kenji Sato", "email": "kenji@example.jp"}],
        "activities": [activity("a-1", ALICE, soon(2), participants=[{"contact": "c-1"}]),
                       activity("a-2", ALICE, soon(3))],
    })
    password = crm.enable(ALICE)
    with server.client(ALICE, password) as client:
        # a floating event: its served times depend on the owner's time zone
        assert client.put(f"{CAL}float.ics", content=vevent(
            "FLOAT-1", start=soon(4).strftime("%Y%m%dT100000"), end=soon(4).strftime("%Y%m%dT110000"))
        ).status_code == 201
        yield client


def _views(client, href: str) -> list[tuple[str, str]]:
    """(ETag, text) of one event as GET, calendar-multiget and calendar-query serve it."""
    got = client.get(href)
    multiget = dav.parse(dav.request(client, "REPORT", CAL, dav.multiget_body([href]), None)).responses[href]
    body = QUERY.format(start=soon(-30).strftime("%Y%m%dT000000Z"), end=soon(60).strftime("%Y%m%dT000000Z"))
    queried = dav.parse(dav.request(client, "REPORT", CAL, body)).responses[href]
    # An XML parser reads CRLF inside calendar-data as LF (XML 1.0 2.11): compare GET likewise.
    return [(got.headers["ETag"], got.text.replace("\r\n", "\n")), (multiget["etag"], multiget["calendar_data"]),
            (queried["etag"], queried["calendar_data"])]


def _sync(client, token: str = "") -> dav.Multistatus:
    name = "04-sync-collection.xml" if token else "04b-sync-collection-initial.xml"
    return dav.parse(dav.request(client, "REPORT", CAL, dav.body(name, SYNC_TOKEN=token)))


def _href(crm, activity_id: str) -> str:
    return CAL + next(a["href"] for a in crm.export(ALICE)["activities"] if a["id"] == activity_id)


def _by_sql(server, statement: str, **values: str) -> None:
    with server.engine.begin() as connection:
        connection.execute(text(statement), values)


CHANGES = {
    "user time zone": (lambda crm, server: crm.load({"users": [user(ALICE, "Alice Archer", "Asia/Tokyo")]}),
                       "float", "DTSTART:"),
    "user name": (lambda crm, server: crm.load({"users": [user(ALICE, "Alice Renamed", "Europe/Berlin")]}),
                  "a-2", "ORGANIZER;CN=Alice Renamed"),
    "contact name": (lambda crm, server: crm.load({"contacts": [
        {"id": "c-1", "name": "Kenji Renamed", "email": "kenji@example.jp"}]}), "a-1", "CN=Kenji Renamed"),
    "user time zone by SQL": (lambda crm, server: _by_sql(
        server, "UPDATE users SET timezone = 'Asia/Tokyo' WHERE email = :e", e=ALICE), "float", "DTSTART:"),
    "user name by SQL": (lambda crm, server: _by_sql(
        server, "UPDATE users SET name = 'Alice SQL' WHERE email = :e", e=ALICE), "a-2", "CN=Alice SQL"),
    "contact name by SQL": (lambda crm, server: _by_sql(
        server, "UPDATE contacts SET name = 'Kenji SQL' WHERE id = 'c-1'"), "a-1", "CN=Kenji SQL"),
}


@pytest.mark.parametrize("change", sorted(CHANGES))
def test_rendering_input_change_moves_etag_and_sync_and_every_view_agrees(phone, crm, server, change):
    make_change, target, expected = CHANGES[change]
    href = f"{CAL}float.ics" if target == "float" else _href(crm, target)
    before = _views(phone, href)
    assert len(set(before)) == 1  # GET, multiget and query: same bytes under the same ETag
    token = _sync(phone).sync_token
    make_change(crm, server)
    after = _views(phone, href)
    assert len(set(after)) == 1
    assert after[0][0] != before[0][0] and after[0][1] != before[0][1]
    assert expected in after[0][1]
    assert href in _sync(phone, token).hrefs(200)


def test_owner_rename_does_not_pull_old_activities_into_the_calendar(crm, server):
    old = soon(-400)
    crm.load({"users": [user(ALICE, "Alice")], "activities": [activity("old-1", ALICE, old),
                                                             activity("new-1", ALICE, soon(1))]})
    password = crm.enable(ALICE)
    crm.load({"users": [user(ALICE, "Alice Renamed")]})
    with server.client(ALICE, password) as client:
        offered = {h.rsplit("/", 1)[1] for h in _sync(client).hrefs(200)}
    names = {a["id"]: a["href"] for a in crm.export(ALICE)["activities"]}
    assert offered == {names["new-1"]}


def _ios_event_with_one_alarm() -> bytes:
    sent = (IOS_REQUESTS / "06-put-event.ics").read_text().replace("\r\n", "\n").replace("\n", "\r\n")
    alarms = re.findall(r"BEGIN:VALARM\r\n.*?END:VALARM\r\n", sent, re.S)
    assert len(alarms) == 3 and "ACTION:NONE" in alarms[2]
    return sent.replace(alarms[1], "").encode("utf-8")  # one real alarm and Apple's placeholder


@pytest.fixture
def anna(crm, server):
    crm.load({"users": [user(ANNA, "Anna Admin", "Europe/Berlin")]})
    password = crm.enable(ANNA)
    with server.client(ANNA, password) as client:
        yield client


def test_put_of_a_plain_event_gets_a_strong_etag_and_get_serves_its_bytes(anna):
    sent = vevent("PLAIN-1").encode()
    response = anna.put(f"/{ANNA}/crm/plain.ics", content=sent)
    assert response.status_code == 201 and re.fullmatch(r'"\d+-\d+"', response.headers["ETag"])
    got = anna.get(f"/{ANNA}/crm/plain.ics")
    assert got.content == sent and got.headers["ETag"] == response.headers["ETag"]


def test_put_of_the_ios_event_with_one_alarm_round_trips_byte_for_byte(anna, crm):
    sent = _ios_event_with_one_alarm()
    href = f"/{ANNA}/crm/8F3C2B1A-5D4E-4C6B-9A7F-2E1D0C9B8A76.ics"
    response = anna.put(href, content=sent)
    assert response.status_code == 201 and response.headers.get("ETag")
    got = anna.get(href)
    assert got.content == sent and got.headers["ETag"] == response.headers["ETag"]
    stored = crm.export(ANNA)["activities"][0]
    assert stored["reminder_minutes"] == 15 and len(stored["participants"]) == 2  # bert, carla


def test_put_with_three_alarms_gets_no_etag_and_the_next_sync_brings_one_alarm(anna):
    sent = (IOS_REQUESTS / "06-put-event.ics").read_bytes()  # two real alarms and the placeholder
    calendar = f"/{ANNA}/crm/"
    href = f"{calendar}8F3C2B1A-5D4E-4C6B-9A7F-2E1D0C9B8A76.ics"
    token = dav.parse(dav.request(anna, "REPORT", calendar, dav.body("04b-sync-collection-initial.xml"))).sync_token
    response = anna.put(href, content=sent)
    assert response.status_code == 201 and "ETag" not in response.headers
    changed = dav.parse(dav.request(anna, "REPORT", calendar, dav.body("04-sync-collection.xml", SYNC_TOKEN=token)))
    assert changed.hrefs(200) == {href}
    served = dav.parse(dav.request(anna, "REPORT", calendar, dav.multiget_body([href]), None))
    assert served.responses[href]["calendar_data"].count("BEGIN:VALARM") == 1


@pytest.mark.parametrize("method", ["PUT", "DELETE"])
def test_write_into_another_users_calendar_is_refused_without_saying_why_or_what_exists(
        crm, server, method):
    crm.load({"users": [user(ALICE), user(BOB)], "activities": [activity("b-1", BOB, soon(1))]})
    crm.run("caldav", "settings", BOB, "--sync-type", "read-only")
    passwords = {ALICE: crm.enable(ALICE), BOB: crm.enable(BOB, "bob-pass")}
    existing = f"/{BOB}/crm/" + crm.export(BOB)["activities"][0]["href"]
    before = crm.export()
    answers = []
    with server.client(ALICE, passwords[ALICE]) as alice:
        for path in (existing, f"/{BOB}/crm/no-such-event.ics"):
            answers.append(alice.request(method, path, content=vevent("X-1") if method == "PUT" else None))
    assert crm.export() == before
    assert {a.status_code for a in answers} <= {403, 404}
    assert answers[0].status_code == answers[1].status_code and answers[0].text == answers[1].text
    assert "read-only" not in answers[0].text.lower() and "crm-to-calendar" not in answers[0].text.lower()


@pytest.mark.parametrize("if_match,status", [("*", 204), ('W/"1-1"', 412), ('"999999-1"', 412), ("garbage", 412)])
def test_put_if_match_uses_the_strong_comparison(anna, if_match, status):
    assert anna.put(f"/{ANNA}/crm/m.ics", content=vevent("M-1")).status_code == 201
    response = anna.put(f"/{ANNA}/crm/m.ics", content=vevent("M-1", summary="Edited"), headers={"If-Match": if_match})
    assert response.status_code == status


def test_put_if_match_star_on_a_missing_event_gets_412_and_stores_nothing(anna, crm):
    response = anna.put(f"/{ANNA}/crm/none.ics", content=vevent("NONE-1"), headers={"If-Match": "*"})
    assert response.status_code == 412 and crm.export(ANNA)["activities"] == []


def test_put_that_changes_nothing_tracked_keeps_the_served_text_under_its_etag(anna):
    href = f"/{ANNA}/crm/same.ics"
    first = vevent("SAME-1").encode()
    etag = anna.put(href, content=first).headers["ETag"]
    again = anna.put(href, content=first.replace(b"DTSTAMP:20261120T100000Z", b"DTSTAMP:20261121T090000Z"))
    assert again.status_code == 204 and "ETag" not in again.headers  # not the bytes served
    got = anna.get(href)
    assert got.headers["ETag"] == etag and got.content == first
    assert anna.put(href, content=first).headers["ETag"] == etag  # the served bytes again
