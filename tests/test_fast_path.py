"""The fast path answers sync-collection, multiget, calendar-query and the ctag poll
exactly as Radicale does: two real servers on one database, one with the fast path
and one without, get the same requests and must give the same answers."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from server import http
from storage_plugin import reports
from tests import dav
from tests.conftest import RunningServer, start_server
from tests.factories import ALICE, BOB, activity, soon, user, vevent

pytestmark = pytest.mark.e2e
CAL = f"/{ALICE}/crm/"
QUERY = """<?xml version="1.0" encoding="UTF-8"?>
<C:calendar-query xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav">
  <D:prop><D:getetag/><D:getcontenttype/>{data}</D:prop>
  <C:filter><C:comp-filter name="VCALENDAR"><C:comp-filter name="VEVENT">{range}
  </C:comp-filter></C:comp-filter></C:filter>
</C:calendar-query>"""


@pytest.fixture
def two_servers(crm, server_settings) -> Iterator[tuple[RunningServer, RunningServer, str]]:
    """(fast, radicale_only, password) on one database holding a varied calendar."""
    crm.load({
        "users": [user(ALICE, "Alice O'Brien, Sales", "Europe/Berlin"), user(BOB)],
        "contacts": [{"id": "c-1", "name": "Kenji <Sato> & Co", "email": "kenji@example.jp"}],
        "activities": [
            activity("a-0", ALICE, soon(1), title="Demo & <review>", location="Room 1, floor 2",
                     description="Line one\nline two; semi", participants=[{"contact": "c-1"}]),
            activity("a-1", ALICE, soon(2), reminder_minutes=None, private=True),
            activity("a-2", ALICE, soon(40), participants=[{"email": "x@example.org"}]),
            {**activity("a-3", ALICE, soon(3)), "all_day": True,
             "start": soon(3).date().isoformat(), "end": soon(4).date().isoformat()},
            activity("a-4", ALICE, soon(5), type="call"),
            activity("b-0", BOB, soon(1)),
        ],
    })
    password = crm.enable(ALICE)
    fast, fast_http = start_server(server_settings)
    plain, plain_http = _start_without_fast_path(server_settings)
    with fast.client(ALICE, password) as client:  # Radicale checks the password once
        assert client.request("PROPFIND", f"/{ALICE}/", headers={"Depth": "0"}).status_code == 207
    try:
        yield fast, plain, password
    finally:
        for http_server, running in ((fast_http, fast), (plain_http, plain)):
            http_server.shutdown()
            http_server.server_close()
            running.engine.dispose()


def _start_without_fast_path(settings):
    import threading

    from crm_model.db import make_engine
    from server.app import create_app
    from server.http import make_server

    engine = make_engine(settings.database_url)
    http_server = make_server("127.0.0.1", 0, create_app(settings, engine, fast_path=False))
    threading.Thread(target=http_server.serve_forever, daemon=True).start()
    return RunningServer(f"http://127.0.0.1:{http_server.server_address[1]}", engine, settings), http_server


@pytest.fixture
def answered_fast(monkeypatch) -> list[str]:
    """The kinds of request the fast path answered (a spy on the real function)."""
    seen: list[str] = []
    real = reports.answer_report

    def spy(db, request, **kwargs):
        seen.append(request.kind)
        return real(db, request, **kwargs)

    monkeypatch.setattr(reports, "answer_report", spy)
    real_poll = reports.answer_poll

    def poll_spy(props, **kwargs):
        seen.append("poll")
        return real_poll(props, **kwargs)

    monkeypatch.setattr(reports, "answer_poll", poll_spy)
    return seen


def _both(servers, password, method, path, body, depth="1"):
    fast, plain, _ = servers
    answers = []
    for running in (fast, plain):
        with running.client(ALICE, password) as client:
            answers.append(dav.parse(dav.request(client, method, path, body, depth)))
    return answers


def _comparable(answer: dav.Multistatus) -> dict:
    """Per href: status, ETag, calendar data, and which props were found / not found."""
    result = {}
    for href, item in answer.responses.items():
        element = item["element"]
        propstats = {
            ps.findtext("D:status", namespaces=dav.NS): sorted(p.tag for p in ps.find("D:prop", dav.NS))
            for ps in element.findall("D:propstat", dav.NS)
        }
        content_type = element.findtext(".//D:getcontenttype", namespaces=dav.NS)
        result[href] = (item["status"], item["etag"], item["calendar_data"], propstats, content_type)
    return result


def test_sync_multiget_and_query_answers_equal_radicales(two_servers, answered_fast):
    fast_initial, plain_initial = _both(two_servers, two_servers[2], "REPORT", CAL,
                                        dav.body("04b-sync-collection-initial.xml"))
    assert _comparable(fast_initial) == _comparable(plain_initial)
    assert len(fast_initial.hrefs(200)) == 5 and fast_initial.sync_token == plain_initial.sync_token

    hrefs = sorted(fast_initial.hrefs()) + [f"{CAL}no-such-event.ics"]
    fast_multi, plain_multi = _both(two_servers, two_servers[2], "REPORT", CAL, dav.multiget_body(hrefs), None)
    assert _comparable(fast_multi) == _comparable(plain_multi)
    assert fast_multi.hrefs(404) == {f"{CAL}no-such-event.ics"}
    assert all("BEGIN:VEVENT" in fast_multi.responses[h]["calendar_data"] for h in fast_initial.hrefs())

    start, end = soon(0).strftime("%Y%m%dT000000Z"), soon(10).strftime("%Y%m%dT000000Z")
    for data in ("", "<C:calendar-data/>"):
        body = QUERY.format(data=data, range=f'<C:time-range start="{start}" end="{end}"/>')
        fast_query, plain_query = _both(two_servers, two_servers[2], "REPORT", CAL, body)
        assert _comparable(fast_query) == _comparable(plain_query)
        assert len(fast_query.hrefs(200)) == 4  # a-2 is 40 days out
    assert answered_fast == ["sync", "multiget", "query", "query"]


def test_incremental_sync_reports_changes_and_deletions_like_radicale(two_servers, crm, answered_fast):
    fast, plain, password = two_servers
    with fast.client(ALICE, password) as client:
        token = dav.parse(dav.request(client, "REPORT", CAL, dav.body("04b-sync-collection-initial.xml"))).sync_token
        created = client.put(f"{CAL}phone.ics", content=vevent("phone-1"), headers={"If-None-Match": "*"})
        assert created.status_code == 201
    crm.load({"activities": [activity("a-0", ALICE, soon(1), title="Renamed in the CRM")],
              "deleted_activities": ["a-1"]})
    body = dav.body("04-sync-collection.xml", SYNC_TOKEN=token)
    fast_sync, plain_sync = _both(two_servers, password, "REPORT", CAL, body)
    assert _comparable(fast_sync) == _comparable(plain_sync)
    assert fast_sync.sync_token == plain_sync.sync_token != token
    changed = {href.rsplit("/", 1)[1]: item["status"] for href, item in fast_sync.responses.items()}
    assert sorted(changed.values()) == [200, 200, 404] and changed["phone.ics"] == 200
    assert answered_fast[-1] == "sync"


def test_ctag_poll_equals_radicales(two_servers, answered_fast):
    fast_poll, plain_poll = _both(two_servers, two_servers[2], "PROPFIND", CAL,
                                  dav.body("04a-propfind-calendar-ctag.xml"), "0")
    prop = ".//D:propstat/D:prop/"
    for answer in (fast_poll, plain_poll):
        assert answer.root.findtext(prop + "CS:getctag", namespaces=dav.NS)
    assert fast_poll.root.findtext(prop + "CS:getctag", namespaces=dav.NS) == \
        plain_poll.root.findtext(prop + "CS:getctag", namespaces=dav.NS)
    assert fast_poll.root.findtext(prop + "D:sync-token", namespaces=dav.NS) == \
        plain_poll.root.findtext(prop + "D:sync-token", namespaces=dav.NS)
    assert answered_fast == ["poll"]


def test_refusals_keep_radicales_statuses(two_servers, crm, answered_fast):
    fast, _, password = two_servers
    sync = dav.body("04b-sync-collection-initial.xml")
    with fast.client(ALICE, "wrong-password") as intruder:
        assert dav.request(intruder, "REPORT", CAL, sync).status_code == 401
    crm.enable(BOB, "bob-pass")
    with fast.client(BOB, "bob-pass") as bob:
        assert dav.request(bob, "REPORT", CAL, sync).status_code in (403, 404)
    with fast.client(ALICE, password) as client:
        assert dav.request(client, "REPORT", CAL, sync).status_code == 207
        bad_token = dav.body("04-sync-collection.xml", SYNC_TOKEN="http://other.invalid/1")
        assert dav.request(client, "REPORT", CAL, bad_token).status_code == 403
        assert dav.request(client, "REPORT", CAL, "<not xml").status_code == 400
        crm.run("caldav", "disable", ALICE)
        assert dav.request(client, "REPORT", CAL, sync).status_code == 401  # at once, cached login or not
    assert answered_fast == ["sync"]


def test_cached_renderings_follow_every_change(two_servers, crm):
    fast, _, password = two_servers
    from sqlalchemy import text

    def event_text(client) -> str:
        answer = dav.parse(dav.request(client, "REPORT", CAL, dav.multiget_body([f"{CAL}{href}"]), None))
        return next(iter(answer.responses.values()))["calendar_data"]

    def cached_renderings() -> int:
        with fast.engine.connect() as db:
            return db.execute(text("SELECT count(*) FROM activity_renderings")).scalar()

    href = next(a["href"] for a in crm.export(ALICE)["activities"] if a["id"] == "a-0")
    with fast.client(ALICE, password) as client:
        assert "SUMMARY:Demo & <review>" in event_text(client)
        # stored after the answer went out: wait for it, bounded
        deadline = time.monotonic() + 10
        while cached_renderings() == 0 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert cached_renderings() == 1
        crm.load({"activities": [activity("a-0", ALICE, soon(1), title="Renamed in the CRM")]})
        assert "SUMMARY:Renamed in the CRM" in event_text(client)
        crm.load({"users": [user(ALICE, "Alice Renamed", "Europe/Berlin")]})
        assert "ORGANIZER;CN=Alice Renamed:mailto:" in event_text(client)


def test_answers_are_encoded_in_pieces_and_gzipped_only_when_worth_it():
    import zlib

    parts = ["<response>" + "é" * 1000 + "</response>"] * 300  # several 64 KiB pieces
    body, gzipped = http.encode_answer(parts, True)
    assert gzipped and len(body) > 2
    assert zlib.decompress(b"".join(body), 16 + zlib.MAX_WBITS).decode("utf-8") == "".join(parts)
    body, gzipped = http.encode_answer(parts, False)
    assert not gzipped and b"".join(body).decode("utf-8") == "".join(parts)
    body, gzipped = http.encode_answer(["<multistatus/>"], True)
    assert not gzipped and body == [b"<multistatus/>"]
