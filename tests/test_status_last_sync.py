"""Issue 12, "Health and status" and "Devices": `caldav status` shows the last sync of
clients that never send a sync-collection (python-caldav, vdirsyncer), because every
authenticated request records its device's last use, at most once a minute per device.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import caldav
import httpx
import pytest

from tests import dav, vdir
from tests.conftest import Crm
from tests.factories import ALICE, activity, query_body, soon, user, vevent

pytestmark = pytest.mark.e2e
CAL = f"/{ALICE}/crm/"


@pytest.fixture
def alice(crm: Crm) -> str:
    """Alice's password; she has three activities and has never synced."""
    crm.load({"users": [user(ALICE)], "activities": [activity(f"a-{i}", ALICE, soon(i + 1)) for i in range(3)]})
    return crm.enable(ALICE)


def _status(crm: Crm) -> dict:
    return json.loads(crm.run("caldav", "status", ALICE, "--json").stdout)


def _last_sync(crm: Crm) -> datetime | None:
    value = _status(crm)["last_sync_at"]
    return datetime.fromisoformat(value) if value else None


def _recent(moment: datetime | None, since: datetime) -> bool:
    """``moment`` lies between ``since`` (less a second: stored times may be rounded) and now."""
    return moment is not None and since - timedelta(seconds=1) <= moment <= datetime.now(UTC)


def test_python_caldav_listing_events_shows_as_a_recent_sync(alice, crm, server):
    assert crm.run("caldav", "status", ALICE).stdout.rstrip().endswith("last sync never")
    since = datetime.now(UTC)
    client = caldav.DAVClient(url=server.url, username=ALICE, password=alice)
    assert len(client.principal().calendars()[0].events()) == 3  # discovery and a calendar-query
    assert _recent(_last_sync(crm), since)
    assert f"last sync {_last_sync(crm):%Y-%m-%d %H:%M} UTC" in crm.run("caldav", "status", ALICE).stdout


def test_vdirsyncer_sync_shows_as_a_recent_sync(alice, crm, server, tmp_path):
    since = datetime.now(UTC)
    vdir.setup_pair(tmp_path, f"{server.url}{CAL}", ALICE, alice)  # discover, then sync
    assert _recent(_last_sync(crm), since)


def _requests(crm: Crm) -> dict[str, tuple[str, str, str | None, str | None]]:
    """Request kinds, answered here or by Radicale: label -> (method, path, body, Depth)."""
    hrefs = [f"{CAL}{a['href']}" for a in sorted(crm.export(ALICE)["activities"], key=lambda a: a["id"])]
    return {
        "principal propfind (Radicale)": ("PROPFIND", f"/{ALICE}/", dav.body("02-propfind-principal.xml"), "0"),
        "proppatch (Radicale)": ("PROPPATCH", CAL, dav.body("03c-proppatch-calendar-color.xml"), None),
        "ctag poll": ("PROPFIND", CAL, dav.body("04a-propfind-calendar-ctag.xml"), "0"),
        "sync-collection": ("REPORT", CAL, dav.body("04b-sync-collection-initial.xml"), "1"),
        "calendar-query": ("REPORT", CAL, query_body(), "1"),
        "multiget": ("REPORT", CAL, dav.multiget_body(hrefs[:1]), "1"),
        "get": ("GET", hrefs[0], None, None),
        "put": ("PUT", f"{CAL}NEW-1.ics", vevent("NEW-1"), None),
        "delete": ("DELETE", hrefs[2], None, None),
    }


def test_every_kind_of_authenticated_request_records_its_devices_use(alice, crm, server):
    requests = _requests(crm)
    passwords = {label: json.loads(crm.run("caldav", "password", "add", ALICE, "--label", label, "--json").stdout)
                 ["password"] for label in requests}
    for label, (method, path, body, depth) in requests.items():
        headers = {**dav.IOS_HEADERS, **({"Depth": depth} if depth else {})}
        response = httpx.request(method, f"{server.url}{path}", content=body, headers=headers,
                                 auth=(ALICE, passwords[label]), timeout=30)
        assert response.status_code < 300, (label, response.status_code, response.text)
    devices = {d["label"]: d for d in json.loads(crm.run("caldav", "password", "list", ALICE, "--json").stdout)}
    assert [label for label in requests if devices[label]["last_used_at"] is None] == []
    assert devices["first device"]["last_used_at"] is None  # a device that sent nothing


def test_a_failed_login_records_no_use(alice, crm, server):
    response = httpx.request("PROPFIND", f"{server.url}{CAL}", auth=(ALICE, "wrong-password"),
                             headers={"Depth": "0"}, timeout=30)
    assert response.status_code == 401
    assert _last_sync(crm) is None


def test_a_device_is_written_at_most_once_a_minute(alice, crm, server):
    with server.client(ALICE, alice) as phone:
        dav.request(phone, "PROPFIND", CAL, dav.body("04a-propfind-calendar-ctag.xml"), depth="0")
        first = _last_sync(crm)
        for _ in range(5):
            dav.request(phone, "PROPFIND", CAL, dav.body("04a-propfind-calendar-ctag.xml"), depth="0")
            dav.request(phone, "REPORT", CAL, query_body())
    assert first is not None and _last_sync(crm) == first
