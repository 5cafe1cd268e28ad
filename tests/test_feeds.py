"""Issue 11, done-when 5: subscription feeds (`caldav feed add/list/revoke`). A feed URL serves
exactly what the calendar offers as one iCalendar document, answers a repeated GET with its
ETag by 304, and a revoked feed and a guessed URL get the same 404 after the same work."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import icalendar
import pytest
from sqlalchemy import event

from crm_model.db import make_engine, make_session_factory
from crm_model.services import admins as admin_service
from crm_model.services import feeds as feed_service
from tests import dav
from tests.conftest import Crm
from tests.factories import ALICE, BOB, activity, soon, sync_body, user, vevent

CAL = f"/{ALICE}/crm/"
BERLIN_EVENT = vevent("berlin-1", extra="").replace(
    "DTSTART:20261125T100000Z\r\nDTEND:20261125T110000Z",
    "DTSTART;TZID=Customized Time Zone:20261125T100000\r\nDTEND;TZID=Customized Time Zone:20261125T110000",
).replace("BEGIN:VEVENT", "BEGIN:VTIMEZONE\r\nTZID:Customized Time Zone\r\nBEGIN:STANDARD\r\n"
          "DTSTART:16010101T000000\r\nTZOFFSETFROM:+0100\r\nTZOFFSETTO:+0100\r\nEND:STANDARD\r\n"
          "END:VTIMEZONE\r\nBEGIN:VEVENT", 1)


def _add(crm: Crm, email: str = ALICE, label: str = "Outlook") -> dict:
    return json.loads(crm.run("caldav", "feed", "add", email, "--label", label, "--json").stdout)


def _feeds(crm: Crm, email: str = ALICE) -> dict[str, dict]:
    return {f["label"]: f for f in json.loads(crm.run("caldav", "feed", "list", email, "--json").stdout)}


def _selects(statements: list[str]) -> list[str]:
    return [s for s in statements if s.lstrip().upper().startswith("SELECT")]


def _path(added: dict) -> str:
    return "/" + added["url"].split("/", 3)[3]


@pytest.fixture
def alice(crm: Crm) -> str:
    """Alice with three meetings and one from a year ago (before her window), Bob with one; both enabled."""
    crm.load({"users": [user(ALICE), user(BOB)],
              "activities": [*(activity(f"m-{i}", ALICE, soon(i + 1)) for i in range(3)),
                             activity("old", ALICE, datetime.now(UTC) - timedelta(days=400)),
                             activity("bobs", BOB, soon(2), title="Bob's secret")]})
    crm.enable(BOB)
    return crm.enable(ALICE)


def test_cli_adds_lists_and_revokes_feeds_and_prints_https_and_webcal_urls(alice, crm):
    added = _add(crm)
    _add(crm, label="Google")

    assert added["url"].startswith("http://127.0.0.1:5232/feeds/") and added["url"].endswith(".ics")
    assert added["webcal"] == "webcal://" + added["url"].removeprefix("http://")
    token = _path(added).removeprefix("/feeds/").removesuffix(".ics")
    assert len(token) >= 22  # at least 128 random bits, URL-safe base64
    text = crm.run("caldav", "feed", "add", ALICE, "--label", "Thunderbird").stdout
    assert "webcal://" in text and "url: http" in text
    feeds = _feeds(crm)
    assert list(feeds) == ["Outlook", "Google", "Thunderbird"]
    assert all(f["revoked_at"] is None and f["last_used_at"] is None for f in feeds.values())
    assert token not in crm.run("caldav", "feed", "list", ALICE).stdout  # shown once only

    crm.run("caldav", "feed", "revoke", ALICE, "Outlook")
    crm.run("caldav", "feed", "revoke", ALICE, f"#{feeds['Google']['id']}")

    after = _feeds(crm)
    assert after["Outlook"]["revoked_at"] and after["Google"]["revoked_at"]
    assert after["Thunderbird"]["revoked_at"] is None
    assert "already has" in crm.run("caldav", "feed", "add", ALICE, "--label", "Thunderbird", expect=1).stderr
    assert "no feed" in crm.run("caldav", "feed", "revoke", ALICE, "Nokia", expect=1).stderr
    assert "no user" in crm.run("caldav", "feed", "list", "nobody@example.com", expect=1).stderr


def test_feed_urls_start_with_the_public_url(alice, crm, monkeypatch):
    monkeypatch.setenv("CRM_CALDAV_PUBLIC_URL", "https://cal.example.com/")
    added = _add(crm)
    assert added["url"].startswith("https://cal.example.com/feeds/")
    assert added["webcal"].startswith("webcal://cal.example.com/feeds/")


def _vevents(text: str) -> dict[str, bytes]:
    calendar = icalendar.Calendar.from_ical(text)
    return {str(e["UID"]): e.to_ical() for e in calendar.walk("VEVENT")}


def test_feed_is_one_icalendar_document_of_exactly_what_a_sync_collection_offers(alice, crm, server):
    added = _add(crm)
    with server.client(ALICE, alice) as phone:
        assert phone.put(f"{CAL}berlin-1.ics", content=BERLIN_EVENT).status_code == 201
        synced = dav.parse(phone.request("REPORT", CAL, content=sync_body(), headers={"Depth": "1"}))
    offered = {}
    for item in synced.responses.values():
        offered.update(_vevents(item["calendar_data"]))

    response = httpx.get(server.url + _path(added))

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/calendar")
    feed = icalendar.Calendar.from_ical(response.text)
    assert _vevents(response.text) == offered and len(offered) == 4  # three meetings and the PUT, not "old"
    assert [str(z["TZID"]) for z in feed.walk("VTIMEZONE")] == ["Customized Time Zone"]
    assert "Bob's secret" not in response.text and "Meeting old" not in response.text


def test_repeated_get_with_the_etag_answers_304_until_the_calendar_changes(alice, crm, server):
    url = server.url + _path(_add(crm))
    first = httpx.get(url)
    etag = first.headers["etag"]

    statements: list[str] = []
    event.listen(server.engine, "before_cursor_execute", lambda *args: statements.append(args[2]))
    again = httpx.get(url, headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.content == b"" and again.headers["etag"] == etag
    assert len(_selects(statements)) == 1 and "FROM feeds JOIN users" in _selects(statements)[0]  # as a poll

    with server.client(ALICE, alice) as phone:
        assert phone.put(f"{CAL}new-1.ics", content=vevent("new-1")).status_code == 201
    changed = httpx.get(url, headers={"If-None-Match": etag})
    assert changed.status_code == 200 and changed.headers["etag"] != etag
    assert "new-1" in _vevents(changed.text)


def test_revoked_feed_and_guessed_url_get_the_same_404_after_the_same_queries(alice, crm, server):
    added = _add(crm)
    crm.run("caldav", "feed", "revoke", ALICE, "Outlook")
    revoked_path = _path(added)
    guessed_path = "/feeds/" + "A" * len(revoked_path.removeprefix("/feeds/").removesuffix(".ics")) + ".ics"
    statements: list[str] = []
    event.listen(server.engine, "before_cursor_execute", lambda *args: statements.append(args[2]))

    answers = []
    for path in (revoked_path, guessed_path):
        statements.clear()
        answers.append((httpx.get(server.url + path), list(statements)))

    (revoked, revoked_sql), (guessed, guessed_sql) = answers
    assert revoked.status_code == guessed.status_code == 404
    assert revoked.content == guessed.content
    assert dict(revoked.headers).keys() == dict(guessed.headers).keys()
    assert revoked_sql == guessed_sql and len(_selects(revoked_sql)) == 1  # one lookup of the token's hash


def test_feed_of_a_user_whose_caldav_is_disabled_answers_404(alice, crm, server):
    path = _path(_add(crm))
    crm.run("caldav", "disable", ALICE)
    assert httpx.get(server.url + path).status_code == 404


def test_other_users_feed_never_shows_alices_events(alice, crm, server):
    bobs = httpx.get(server.url + _path(_add(crm, BOB)))
    assert bobs.status_code == 200
    assert set(_vevents(bobs.text)) and all("m-" not in uid for uid in _vevents(bobs.text))
    assert "Bob's secret" in bobs.text and "Meeting m-0" not in bobs.text


def test_guessed_feed_urls_count_nothing_against_login_throttling(alice, crm, server):
    for attempt in range(server.settings.login_free_failures * 3):
        assert httpx.get(f"{server.url}/feeds/guess-{attempt}.ics").status_code == 404
    with server.client(ALICE, alice) as phone:
        assert dav.parse(phone.request("REPORT", CAL, content=sync_body(), headers={"Depth": "1"})).hrefs(200)


def test_feed_refuses_writes(alice, crm, server):
    assert httpx.put(server.url + _path(_add(crm)), content=b"x").status_code == 405


def test_a_fetch_records_the_feeds_last_use_at_most_once_a_minute(alice, crm, database_url):
    first = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
    engine = make_engine(database_url)
    try:
        with make_session_factory(engine).begin() as session:
            _, token = feed_service.add_feed(session, email=ALICE, label="Calendar app", now=first - timedelta(hours=1))
        with make_session_factory(engine).begin() as session:
            feed_service.record_feed_use(session, token=token, now=first)
            feed_service.record_feed_use(session, token=token, now=first + timedelta(seconds=30))
    finally:
        engine.dispose()
    assert _feeds(crm)["Calendar app"]["last_used_at"] == first.isoformat()


ADMIN, ADMIN_PASSWORD = "admin@example.com", "correct horse battery staple"
CSRF = re.compile(r'name="csrf" value="([^"]+)"')


def _admin_client(server) -> tuple[httpx.Client, str]:
    with make_session_factory(server.engine, write=True).begin() as session:
        admin_service.add_admin(session, email=ADMIN, password=ADMIN_PASSWORD, now=datetime.now(UTC))
    client = httpx.Client(base_url=server.url, timeout=30)
    form = client.get("/admin/login")
    client.post("/admin/login", data={"csrf": CSRF.findall(form.text)[0], "email": ADMIN,
                                      "password": ADMIN_PASSWORD})
    return client, CSRF.findall(client.get("/admin/").text)[0]


def test_admin_page_adds_a_feed_showing_its_url_once_lists_and_revokes_it(alice, crm, server):
    client, csrf = _admin_client(server)
    try:
        assert f"/admin/users/{ALICE}/feeds" in client.get(f"/admin/users/{ALICE}").text
        added = client.post(f"/admin/users/{ALICE}/feeds", data={"csrf": csrf, "label": "Outlook"})
        assert added.status_code == 200
        url = re.search(r'id="feed-url">([^<]+)<', added.text)[1]  # type: ignore[index]
        assert f'href="webcal://{url.split("://", 1)[1]}"' in added.text
        assert httpx.get(url).status_code == 200

        listing = client.get(f"/admin/users/{ALICE}/feeds")
        assert "Outlook" in listing.text and url.split("/feeds/")[1] not in listing.text
        assert client.post(f"/admin/users/{ALICE}/feeds", data={"label": "Google"}).status_code == 403  # no CSRF
        feed_id = _feeds(crm)["Outlook"]["id"]
        revoked = client.post(f"/admin/users/{ALICE}/feeds/{feed_id}/revoke", data={"csrf": csrf})
        assert revoked.status_code == 303
        assert "revoked" in client.get(f"/admin/users/{ALICE}/feeds").text
    finally:
        client.close()
    assert httpx.get(url).status_code == 404


def test_readme_documents_the_feed_commands_and_a_subscription_feeds_section():
    readme = (Path(__file__).parents[1] / "README.md").read_text()
    assert "\n## Subscription feeds\n" in readme
    for command in ("add EMAIL --label L [--json]", "list EMAIL [--json]", "revoke EMAIL LABEL-or-ID"):
        assert f"| `crm-caldav caldav feed {command}` |" in readme
