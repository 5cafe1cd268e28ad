"""Issue 2, done-when 5 (and SPEC 6): other users' data, logins, and bad input."""

from __future__ import annotations

import pytest

from tests import dav
from tests.factories import ALICE, BOB, activity, soon, user, vevent

pytestmark = pytest.mark.e2e


@pytest.fixture
def logins(crm, server):
    crm.load({"users": [user(ALICE), user(BOB)],
              "activities": [activity("a-1", ALICE, soon(1)), activity("b-1", BOB, soon(2))]})
    return {ALICE: crm.enable(ALICE, "alice-pass"), BOB: crm.enable(BOB, "bob-pass")}


def _bob_href(crm) -> str:
    return f"/{BOB}/crm/" + crm.export(BOB)["activities"][0]["href"]


@pytest.mark.parametrize("method,suffix", [("PROPFIND", ""), ("GET", "event"), ("PUT", "new"), ("DELETE", "event")])
def test_user_cannot_reach_another_users_calendar(server, crm, logins, method, suffix):
    path = {"": f"/{BOB}/crm/", "event": _bob_href(crm), "new": f"/{BOB}/crm/x.ics"}[suffix]
    before = crm.export()
    with server.client(ALICE, logins[ALICE]) as alice:
        response = alice.request(method, path, content=vevent("X-1") if method == "PUT" else None,
                                 headers={"Depth": "1"})
    assert response.status_code in (403, 404)
    assert crm.export() == before


def test_wrong_password_and_unknown_user_get_401(server, logins):
    for login, password in [(ALICE, "wrong"), ("nobody@example.com", "x")]:
        with server.client(login, password) as client:
            assert client.request("PROPFIND", f"/{ALICE}/", headers={"Depth": "0"}).status_code == 401


def test_disable_takes_effect_at_once_even_for_a_cached_login(server, crm, logins):
    with server.client(ALICE, logins[ALICE]) as alice:
        assert alice.request("PROPFIND", f"/{ALICE}/crm/", headers={"Depth": "0"}).status_code == 207
        crm.run("caldav", "disable", ALICE)
        assert alice.request("PROPFIND", f"/{ALICE}/crm/", headers={"Depth": "0"}).status_code == 401


@pytest.mark.parametrize("payload,reason", [
    ("this is not a calendar", None),
    (vevent("BAD-1").replace("DTSTART:20261125T100000Z\r\n", ""), "DTSTART"),
    (vevent("BAD-2", start="20261125T120000Z", end="20261125T100000Z"), "DTEND"),
    ("BEGIN:VCALENDAR\r\nVERSION:2.0\r\nBEGIN:VEVENT\r\nUID:BAD-3\r\nDTSTART:notadate\r\n"
     "END:VEVENT\r\nEND:VCALENDAR\r\n", None),
])
def test_malformed_event_gets_400_and_nothing_is_stored(server, crm, logins, payload, reason):
    before = crm.export()
    with server.client(ALICE, logins[ALICE]) as alice:
        response = alice.put(f"/{ALICE}/crm/bad.ics", content=payload, headers={"Content-Type": "text/calendar"})
    assert response.status_code == 400
    if reason:
        assert reason in response.text
    assert crm.export() == before


def test_event_over_the_size_limit_gets_413(server, crm, logins):
    big = vevent("BIG-1", extra="DESCRIPTION:" + "x" * (server.settings.max_event_bytes + 10))
    with server.client(ALICE, logins[ALICE]) as alice:
        response = alice.put(f"/{ALICE}/crm/big.ics", content=big)
    assert response.status_code == 413
    assert not [a for a in crm.export()["activities"] if a["uid"] == "BIG-1"]


def test_uid_already_used_elsewhere_gets_409(server, crm, logins):
    existing_uid = crm.export(ALICE)["activities"][0]["uid"]
    before = crm.export()
    with server.client(ALICE, logins[ALICE]) as alice:
        response = alice.put(f"/{ALICE}/crm/other-name.ics", content=vevent(existing_uid))
    assert response.status_code == 409 and crm.export() == before


def test_hostile_xml_is_refused_and_the_server_keeps_serving(server, logins):
    bomb = ('<?xml version="1.0"?><!DOCTYPE l [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;">'
            '<!ENTITY c "&b;&b;&b;&b;&b;&b;&b;">]><D:propfind xmlns:D="DAV:"><D:prop>&c;</D:prop></D:propfind>')
    with server.client(ALICE, logins[ALICE]) as alice:
        assert dav.request(alice, "PROPFIND", f"/{ALICE}/crm/", bomb, "0").status_code == 400
        assert dav.request(alice, "PROPFIND", f"/{ALICE}/crm/", "<not xml", "0").status_code == 400
        assert alice.request("PROPFIND", f"/{ALICE}/crm/", headers={"Depth": "0"}).status_code == 207


def test_stale_etag_gets_412_and_keeps_the_first_write(server, crm, logins):
    href = f"/{ALICE}/crm/" + crm.export(ALICE)["activities"][0]["href"]
    uid = crm.export(ALICE)["activities"][0]["uid"]
    with server.client(ALICE, logins[ALICE]) as alice:
        etag = alice.get(href).headers["ETag"]
        first = alice.put(href, content=vevent(uid, summary="First edit"), headers={"If-Match": etag})
        second = alice.put(href, content=vevent(uid, summary="Second edit"), headers={"If-Match": etag})
    assert first.status_code == 204 and second.status_code == 412
    assert crm.export(ALICE)["activities"][0]["title"] == "First edit"
