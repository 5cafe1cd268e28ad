"""Issue 9: one stored event that cannot be rendered or parsed as stored (written by
another program with plain SQL, or an old row) never fails an answer for the others.

Each case writes one poisoned activity straight into the database, then runs every
read a client makes against the real server: sync-collection (first and
incremental), multiget, calendar-query with a time range (answered from SQL, and
with a text-match and with expand, answered by Radicale), free-busy, a GET of the
calendar and of the event, PROPFIND. Every answer is a success that still holds the
other events; the poisoned one is served as a safe rendering (storage_plugin.rendering).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import text

from tests import dav
from tests.factories import ALICE, activity, free_busy_body, query_body, soon, sync_body, user

pytestmark = pytest.mark.e2e
CAL = f"/{ALICE}/crm/"
WIDE = {"start": "00010101T000000Z", "end": "99991231T000000Z"}
POISON_HREF = "poisoned.ics"

# case -> the columns that differ from a sound client event (a value per dialect when they differ)
POISONS: dict[str, dict[str, Any]] = {
    "year 202": {"starts_at": "0202-12-15 10:00:00", "ends_at": "0202-12-15 11:00:00"},
    "year 1, all day": {"starts_at": "0001-01-01 00:00:00", "ends_at": "0001-01-02 00:00:00", "all_day": True},
    "year 9999": {"starts_at": "9999-12-31 10:00:00", "ends_at": "9999-12-31 11:00:00",
                  "tzid": "Pacific/Kiritimati"},
    "unknown TZID": {"tzid": "Nowhere/Atlantis"},
    "kept lines not JSON": {"client_extras": "{oops"},
    "kept lines of the wrong shape": {"client_extras": '{"calendar": 5, "event": ["no colon"]}'},
    "kept line without a name": {"client_extras": '{"event": [":value only", "X-OK:1"]}'},
    "reminder of 4,000 years": {"reminder_minutes": 2_000_000_000},
    "control character in the title": {"title": "bad\x01title\x1b[31m"},
    "line break in the UID": {"uid": "poison\r\nRRULE:FREQ=DAILY"},
    "NUL in the description (SQLite only)": {"description": {"sqlite": "a\x00b", "postgresql": None}},
    "not a date (SQLite) / infinity (PostgreSQL)": {
        "starts_at": {"sqlite": "garbage", "postgresql": "infinity"},
        "ends_at": {"sqlite": "garbage", "postgresql": "infinity"}},
}


@pytest.fixture
def calendar(crm, server):
    crm.load({"users": [user(ALICE)],
              "activities": [activity("good-1", ALICE, soon(1)), activity("good-2", ALICE, soon(2))]})
    password = crm.enable(ALICE)
    good = {a["href"] for a in crm.export(ALICE)["activities"]}
    return password, good


def _poison(server, case: str) -> None:
    dialect = server.engine.dialect.name
    row: dict[str, Any] = {
        "id": "poisoned", "type": "meeting", "title": "Poisoned", "starts_at": "2026-11-25 10:00:00",
        "ends_at": "2026-11-25 11:00:00", "all_day": False, "tzid": None, "floating": False,
        "location": None, "description": None, "private": False, "reminder_minutes": None,
        "source": "caldav", "uid": "poisoned-uid", "href": POISON_HREF, "client_extras": None,
    }
    for column, value in POISONS[case].items():
        row[column] = value[dialect] if isinstance(value, dict) else value
    now = datetime.now(UTC).replace(tzinfo=None)
    with server.engine.begin() as connection:
        owner = connection.execute(text("SELECT id FROM users WHERE email = :e"), {"e": ALICE}).scalar_one()
        columns = ", ".join(row)
        values = ", ".join(f":{column}" for column in row)
        connection.execute(text(f"INSERT INTO activities ({columns}, owner_id, created_at, updated_at) "
                                f"VALUES ({values}, :owner, :now, :now)"), {**row, "owner": owner, "now": now})


def _hrefs(answer: dav.Multistatus) -> set[str]:
    return {href.rsplit("/", 1)[-1] for href in answer.hrefs()}


@pytest.mark.parametrize("case", POISONS)
def test_a_poisoned_event_fails_no_answer_for_the_others(server, calendar, case):
    password, good = calendar
    with server.client(ALICE, password) as client:
        token = dav.parse(dav.request(client, "REPORT", CAL, sync_body(data=False))).sync_token
        _poison(server, case)

        first = dav.parse(dav.request(client, "REPORT", CAL, sync_body()))
        assert good <= _hrefs(first)
        assert _hrefs(dav.parse(dav.request(client, "REPORT", CAL, sync_body(token)))) >= {POISON_HREF}
        multiget = dav.multiget_body([CAL + href for href in (*good, POISON_HREF)])
        assert _hrefs(dav.parse(dav.request(client, "REPORT", CAL, multiget))) >= good
        for body in (query_body(**WIDE), query_body(**WIDE, summary="Meeting"), query_body(**WIDE, expand=True)):
            assert good <= _hrefs(dav.parse(dav.request(client, "REPORT", CAL, body)))
        free_busy = dav.request(client, "REPORT", CAL, free_busy_body(**WIDE))
        assert free_busy.status_code == 200 and "FREEBUSY" in free_busy.text
        assert good <= _hrefs(dav.parse(dav.request(client, "PROPFIND", CAL, "", "1")))
        whole = client.get(CAL)
        assert whole.status_code == 200 and whole.text.count("BEGIN:VEVENT") >= len(good)
        assert client.get(CAL + POISON_HREF).status_code in (200, 404)
