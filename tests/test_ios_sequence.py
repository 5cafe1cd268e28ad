"""Issue 2, done-when 4: the request sequence of an iPhone, replayed with httpx."""

from __future__ import annotations

from urllib.parse import unquote

import httpx
import pytest

from tests import dav
from tests.factories import ALICE, IOS_REQUESTS, activity, soon, user

pytestmark = pytest.mark.e2e
CAL = f"/{ALICE}/crm/"


@pytest.fixture
def phone(crm, server):
    crm.load({"users": [user(ALICE)],
              "activities": [activity(f"a-{i}", ALICE, soon(i + 1)) for i in range(3)]})
    password = crm.enable(ALICE)
    with server.client(ALICE, password) as client:
        yield client


def test_first_request_without_credentials_gets_401_basic(server):
    with httpx.Client(base_url=server.url) as anonymous:
        well_known = dav.request(anonymous, "PROPFIND", "/.well-known/caldav", dav.body("01-propfind-root.xml"), "0")
        response = dav.request(anonymous, "PROPFIND", "/", dav.body("01-propfind-root.xml"), "0")
    assert well_known.status_code == 301  # redirect before auth: both forms work with iOS
    assert response.status_code == 401 and response.headers["WWW-Authenticate"].startswith("Basic")


def test_discovery_finds_principal_home_and_mailto_address(phone):
    redirect = dav.request(phone, "PROPFIND", "/.well-known/caldav", dav.body("01-propfind-root.xml"), "0")
    assert redirect.status_code == 301 and redirect.headers["Location"] == "/"
    root = dav.parse(dav.request(phone, "PROPFIND", "/", dav.body("01-propfind-root.xml"), "0"))
    assert unquote(root.root.findtext(".//D:current-user-principal/D:href", namespaces=dav.NS)) == f"/{ALICE}/"
    assert "calendar-access" in phone.options(f"/{ALICE}/").headers["DAV"]
    principal = dav.parse(dav.request(phone, "PROPFIND", f"/{ALICE}/", dav.body("02-propfind-principal.xml"), "0"))
    addresses = [e.text for e in principal.root.findall(".//C:calendar-user-address-set/D:href", dav.NS)]
    assert f"mailto:{ALICE}" in addresses
    assert unquote(principal.root.findtext(".//C:calendar-home-set/D:href", namespaces=dav.NS)) == f"/{ALICE}/"


def test_ios_sync_sequence_returns_only_what_changed(phone):
    home = dav.parse(dav.request(phone, "PROPFIND", f"/{ALICE}/", dav.body("03-propfind-home.xml")))
    calendar = home.responses[CAL]["element"]
    ctag = calendar.findtext(".//CS:getctag", namespaces=dav.NS)
    assert ctag and calendar.findtext(".//D:sync-token", namespaces=dav.NS)
    assert calendar.find(".//C:supported-calendar-component-set/C:comp[@name='VEVENT']", dav.NS) is not None
    assert calendar.find(".//D:current-user-privilege-set//D:write", dav.NS) is not None

    initial = dav.parse(dav.request(phone, "REPORT", CAL, dav.body("04b-sync-collection-initial.xml")))
    assert len(initial.hrefs(200)) == 3
    fetched = dav.parse(dav.request(phone, "REPORT", CAL, dav.multiget_body(sorted(initial.hrefs())), None))
    assert fetched.hrefs(200) == initial.hrefs()
    assert all("BEGIN:VEVENT" in r["calendar_data"] for r in fetched.responses.values())

    event = (IOS_REQUESTS / "06-put-event.ics").read_bytes()
    href = f"{CAL}8F3C2B1A-5D4E-4C6B-9A7F-2E1D0C9B8A76.ics"
    put = phone.put(href, content=event, headers={"If-None-Match": "*", "Content-Type": "text/calendar"})
    assert put.status_code == 201
    assert "ETag" not in put.headers  # stored version differs (alarms dropped): the phone must GET it
    got = phone.get(href)
    assert got.status_code == 200 and got.headers["ETag"]
    again = phone.put(href, content=event, headers={"If-None-Match": "*", "Content-Type": "text/calendar"})
    assert again.status_code == 412

    after_put = dav.parse(dav.request(phone, "REPORT", CAL,
                                      dav.body("04-sync-collection.xml", SYNC_TOKEN=initial.sync_token)))
    assert after_put.hrefs() == {href} and after_put.responses[href]["etag"] == got.headers["ETag"]

    assert phone.delete(href).status_code in (200, 204)
    after_delete = dav.parse(dav.request(phone, "REPORT", CAL,
                                         dav.body("04-sync-collection.xml", SYNC_TOKEN=after_put.sync_token)))
    assert after_delete.hrefs() == {href} and after_delete.hrefs(404) == {href}
    ctag_after = dav.parse(dav.request(phone, "PROPFIND", CAL, dav.body("04a-propfind-calendar-ctag.xml"), "0"))
    assert ctag_after.root.findtext(".//CS:getctag", namespaces=dav.NS) != ctag


def test_unknown_sync_token_is_refused_with_valid_sync_token(phone):
    response = dav.request(phone, "REPORT", CAL, dav.body("04-sync-collection.xml", SYNC_TOKEN="http://x/1"))
    assert response.status_code == 403 and "valid-sync-token" in response.text
