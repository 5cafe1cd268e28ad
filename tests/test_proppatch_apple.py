"""Issue 10: Apple's first-run PROPPATCHes, on the calendar home and on the calendar, are accepted.

macOS PROPPATCHes its default alarms onto the calendar home
(``03f-proppatch-home-default-alarm-macos.xml``), iOS and macOS the colour and
order onto each calendar (``03c``, ``03d``, ``03e``). Apple clients stop setting up
an account when one of them is refused, so each is answered 207 with a 200
propstat per property, as Radicale answers them (RFC 4918 9.2).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from types import SimpleNamespace

import httpx
import pytest
from radicale import config as radicale_config
from radicale.app.base import Access
from radicale.storage import BaseCollection

from server.rights import Rights
from tests import dav
from tests.factories import ALICE, user
from tests.test_stock_radicale import stock_radicale  # noqa: F401 - the fixture, used by name below

pytestmark = pytest.mark.e2e
HOME = f"/{ALICE}/"
CAL = f"/{ALICE}/crm/"
APPLE = "http://apple.com/ns/ical/"
CALDAV = "urn:ietf:params:xml:ns:caldav"
DEFAULT_ALARM = f"{{{CALDAV}}}default-alarm-vevent-datetime"
COLOR, ORDER = f"{{{APPLE}}}calendar-color", f"{{{APPLE}}}calendar-order"
READ_BACK = f"""<?xml version="1.0" encoding="UTF-8"?>
<A:propfind xmlns:A="DAV:" xmlns:C="{CALDAV}" xmlns:I="{APPLE}"><A:prop>
<C:default-alarm-vevent-datetime/><I:calendar-color/><I:calendar-order/></A:prop></A:propfind>"""


@pytest.fixture
def mac(crm, server):
    crm.load({"users": [user(ALICE)]})
    password = crm.enable(ALICE)
    with server.client(ALICE, password) as client:
        yield client


def _accepted_properties(response) -> dict[str, int]:
    """Each property of a PROPPATCH answer with its propstat status."""
    assert response.status_code == 207, (response.status_code, response.text)
    statuses = {}
    for propstat in ET.fromstring(response.content).iter("{DAV:}propstat"):
        status = int((propstat.findtext("D:status", namespaces=dav.NS) or "").split()[1])
        for prop in propstat.find("D:prop", dav.NS) or ():
            statuses[prop.tag] = status
    return statuses


def _read_back(client, path: str) -> dict[str, str]:
    """The properties of READ_BACK that PROPFIND finds on ``path``, with their text."""
    answer = dav.request(client, "PROPFIND", path, READ_BACK, "0")
    assert answer.status_code == 207, answer.text
    found = {}
    for propstat in ET.fromstring(answer.content).iter("{DAV:}propstat"):
        if " 200 " in (propstat.findtext("D:status", namespaces=dav.NS) or ""):
            found.update({prop.tag: prop.text or "" for prop in propstat.find("D:prop", dav.NS) or ()})
    return found


def test_macos_default_alarm_proppatch_on_the_home_is_accepted(mac):
    answer = dav.request(mac, "PROPPATCH", HOME, dav.body("03f-proppatch-home-default-alarm-macos.xml"), None)
    assert _accepted_properties(answer) == {DEFAULT_ALARM: 200}


def test_default_alarm_set_on_the_home_is_read_back(mac):
    dav.request(mac, "PROPPATCH", HOME, dav.body("03f-proppatch-home-default-alarm-macos.xml"), None)
    assert "BEGIN:VALARM" in _read_back(mac, HOME).get(DEFAULT_ALARM, "")


@pytest.mark.parametrize("fixture, prop, value", [
    ("03c-proppatch-calendar-color.xml", COLOR, "#711A76"),
    ("03d-proppatch-calendar-order.xml", ORDER, "0"),
    ("03e-proppatch-calendar-color-macos.xml", COLOR, "#FD8208FF"),
])
def test_apple_calendar_proppatch_is_accepted_and_read_back(mac, fixture, prop, value):
    answer = dav.request(mac, "PROPPATCH", CAL, dav.body(fixture), None)
    assert _accepted_properties(answer) == {prop: 200}
    assert _read_back(mac, CAL)[prop] == value


def test_writable_home_still_refuses_new_and_deleted_collections(mac):
    assert mac.request("MKCALENDAR", f"{HOME}work/").status_code == 403
    assert mac.request("MKCOL", f"{HOME}work/").status_code == 403
    assert mac.delete(HOME).status_code == 403
    assert dav.request(mac, "PROPFIND", f"{HOME}work/", READ_BACK, "0").status_code == 404


def test_stock_radicale_with_our_rights_accepts_the_home_proppatch_and_refuses_collections(
        crm, stock_radicale):  # noqa: F811 - the imported fixture
    crm.load({"users": [user(ALICE)]})
    password = crm.enable(ALICE)
    with httpx.Client(base_url=stock_radicale, auth=(ALICE, password), timeout=30) as client:
        answer = dav.request(client, "PROPPATCH", HOME, dav.body("03f-proppatch-home-default-alarm-macos.xml"), None)
        assert _accepted_properties(answer) == {DEFAULT_ALARM: 200}
        assert client.request("MKCALENDAR", f"{HOME}work/").status_code == 403
        assert client.delete(HOME).status_code == 403
        assert client.delete(CAL).status_code == 403


class _Collection(BaseCollection):
    def __init__(self, tag: str) -> None:
        self._tag = tag

    @property
    def tag(self) -> str:
        return self._tag


@pytest.mark.parametrize("permit_delete_collection", [True, False])
def test_rights_refuse_deleting_home_and_calendar_whatever_permit_delete_collection_says(permit_delete_collection):
    configuration = radicale_config.load()
    configuration.update({"rights": {"permit_delete_collection": str(permit_delete_collection)}}, "test")
    two_way = SimpleNamespace(read_only=False)
    rights = Rights(configuration, backend=SimpleNamespace(calendar_user=lambda login: two_way))
    for path, collection in ((HOME, _Collection("")), (CAL, _Collection("VCALENDAR"))):
        access = Access(rights, ALICE, set(), path)
        # what Radicale's DELETE asks (radicale/app/delete.py) before deleting a collection
        refused = access.check("d", collection) if permit_delete_collection else not access.check("D", collection)
        assert access.check("w", collection) and refused, path
