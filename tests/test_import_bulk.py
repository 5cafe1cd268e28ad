"""`crm-caldav import` of thousands of activities (the bulk path of transfer.import_data).

Checks what the chunked lookups and executemany writes must keep: the export
equals the file, a re-import changes exactly what differs, change tracking
(database triggers) records exactly the activities that changed, and one bad
item anywhere refuses the whole file with the place named.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import text

from crm_model.db import make_engine
from crm_model.services.transfer.importing import INSERT_PAGE
from tests.factories import ALICE, BOB, user

CAROL = "carol@example.com"
OWNERS = {ALICE: "Europe/Berlin", BOB: "America/New_York", CAROL: "UTC"}
N = 3000  # activities: several IN-list chunks and executemany batches
IMPORT_KEYS = ("id", "owner", "type", "title", "start", "end", "all_day", "location", "description",
               "private", "reminder_minutes", "participants")


def _participants(i: int) -> list[dict[str, Any]]:
    choices = [{"contact": f"c-{i % 40}"}, {"lead": f"l-{i % 15}"},
               {"email": f"guest{i}@example.org", "name": f"Guest {i}"}, {"contact": f"c-{(i + 7) % 40}"}]
    return choices[: i % 5]  # 0 to 4 participants


def _activity(i: int, **changes: Any) -> dict[str, Any]:
    owner = list(OWNERS)[i % 3]
    start = (datetime(2026, 3, 1, 9, tzinfo=ZoneInfo(OWNERS[owner])) + timedelta(hours=7 * i))
    data = {
        "id": f"a-{i}", "owner": owner, "type": "call" if i % 4 == 0 else "meeting",
        "title": f"Activity {i}", "start": start.isoformat(), "end": (start + timedelta(minutes=45)).isoformat(),
        "all_day": False, "location": f"Room {i % 9}" if i % 2 else None, "description": None,
        "private": i % 10 == 0, "reminder_minutes": 15 if i % 3 else None, "participants": _participants(i),
    }
    if i % 2:  # half the file brings its own uid and href, as an export does
        data.update(uid=f"UID-{i}", href=f"UID-{i}.ics")
    data.update(changes)
    return data


def _document() -> dict[str, Any]:
    return {
        "users": [user(email, timezone_name=zone) for email, zone in OWNERS.items()],
        "contacts": [{"id": f"c-{i}", "name": f"Contact {i}", "email": f"Contact{i}@Example.com"} for i in range(40)],
        "leads": [{"id": f"l-{i}", "name": f"Lead {i}", "email": f"lead{i}@example.net"} for i in range(15)],
        # a-7 keeps an href that is not its uid's, as one a client named can.
        "activities": [_activity(i, href="renamed-7.ics") if i == 7 else _activity(i) for i in range(N)],
    }


def _as_imported(activities: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {a["id"]: {key: a[key] for key in IMPORT_KEYS} for a in activities}


def _positions(database_url: str) -> dict[str, int]:
    engine = make_engine(database_url)
    try:
        with engine.connect() as connection:
            return dict(connection.execute(text("SELECT email, sync_pos FROM users")).all())
    finally:
        engine.dispose()


def _changed_since(database_url: str, positions: dict[str, int]) -> set[str]:
    """Ids of the activities the change log recorded after ``positions`` (per owner)."""
    engine = make_engine(database_url)
    try:
        with engine.connect() as connection:
            rows = connection.execute(text(
                "SELECT u.email, c.pos, c.activity_id FROM calendar_changes c JOIN users u ON u.id = c.user_id"))
            return {activity_id for email, pos, activity_id in rows if pos > positions.get(email, 0)}
    finally:
        engine.dispose()


@pytest.fixture
def loaded(crm):
    document = _document()
    result = crm.run("import", "-", input=json.dumps(document))
    assert f"activities: {N} created, 0 updated, 0 deleted" in result.stderr
    return document


def test_a_large_file_is_stored_as_given(crm, loaded, database_url):
    exported = crm.export()
    assert _as_imported(exported["activities"]) == _as_imported(loaded["activities"])
    by_id = {a["id"]: a for a in exported["activities"]}
    assert by_id["a-1"]["uid"] == "UID-1" and by_id["a-1"]["href"] == "UID-1.ics"
    assert by_id["a-7"]["uid"] == "UID-7" and by_id["a-7"]["href"] == "renamed-7.ics"
    assert by_id["a-2"]["href"] == f"{by_id['a-2']['uid']}.ics" and by_id["a-2"]["source"] == "crm"
    assert {c["email"] for c in exported["contacts"]} == {f"contact{i}@example.com" for i in range(40)}
    # Every activity was recorded by the triggers, in its owner's change log.
    assert _changed_since(database_url, {}) == set(by_id)
    # SQLite's row triggers take one position per activity and one per participant row;
    # PostgreSQL's statement triggers (migrations 0005, 0010) one per owner and statement
    # (multi-row INSERTs of up to INSERT_PAGE rows, fewer when the bound parameters run out).
    participants = sum(len(a["participants"]) for a in loaded["activities"])
    positions = sum(_positions(database_url).values())
    if database_url.startswith("sqlite"):
        assert positions == N + participants
    else:
        assert len(OWNERS) * 2 * -(-N // INSERT_PAGE) <= positions <= len(OWNERS) * 2 * 10


def test_a_reimport_changes_exactly_what_differs(crm, loaded, database_url):
    before = {a["id"]: a for a in crm.export()["activities"]}
    positions = _positions(database_url)
    retitled = {f"a-{i}" for i in range(0, N, 7)}
    regrouped = {f"a-{i}" for i in range(1, N, 11)}
    moved = {f"a-{i}" for i in range(2, N, 101)}  # to another owner's calendar
    deleted = {f"a-{i}" for i in range(3, N, 13)} - retitled - regrouped - moved
    activities = []
    for i in range(N):
        item = _activity(i)
        if item["id"] in retitled:
            item["title"] += " (moved to Friday)"
        if item["id"] in regrouped:
            item["participants"] = item["participants"][1:] + [{"email": "new@example.org"}]
        if item["id"] in moved:
            item["owner"] = CAROL if item["owner"] != CAROL else ALICE
            item["start"], item["end"] = before[item["id"]]["start"], before[item["id"]]["end"]
        if item["id"] not in deleted:
            activities.append(item)
    created = [_activity(N + i, uid=f"NEW-{i}", href=f"NEW-{i}.ics") for i in range(250)]
    result = crm.run("import", "-", input=json.dumps({
        "contacts": [{"id": "c-3", "name": "Renamed", "email": "NEW3@example.com"}],
        "activities": activities + created, "deleted_activities": sorted(deleted) + ["never-existed"],
    }))

    assert (f"activities: 250 created, {len(activities)} updated, {len(deleted)} deleted"
            in result.stderr)
    exported = crm.export()
    after = {a["id"]: a for a in exported["activities"]}
    expected = _as_imported(activities + created)
    for activity_id in moved:  # export writes the same moment in the new owner's time zone
        zone = ZoneInfo(OWNERS[expected[activity_id]["owner"]])
        for key in ("start", "end"):
            expected[activity_id][key] = datetime.fromisoformat(before[activity_id][key]).astimezone(zone).isoformat()
    assert _as_imported(exported["activities"]) == expected
    assert next(c for c in exported["contacts"] if c["id"] == "c-3") == {
        "id": "c-3", "name": "Renamed", "email": "new3@example.com"}
    # Change tracking advanced for exactly the changed, created and deleted activities,
    # and for those whose ATTENDEE line shows the renamed contact (a new ETag, same updated_at).
    changed = retitled | regrouped | moved | deleted | {a["id"] for a in created}
    shows_contact = {i for i, a in before.items() if {"contact": "c-3"} in a["participants"]}
    assert shows_contact and _changed_since(database_url, positions) == changed | shows_contact
    untouched = set(before) - changed
    stamp = {i: datetime.fromisoformat(a["updated_at"]) for i, a in after.items()}
    assert all(stamp[i] == datetime.fromisoformat(before[i]["updated_at"]) for i in untouched)
    assert all(stamp[i] > datetime.fromisoformat(before[i]["updated_at"]) for i in retitled | regrouped | moved)
    assert all(after[i]["uid"] == before[i]["uid"] for i in after if i in before)


BAD_ITEMS = [
    (2500, {"start": "next Tuesday"}, "activities[2500].start: not a date-time"),
    (1700, {"participants": [{"lead": "l-1"}, {"contact": "c-999"}]},
     "activities[1700].participants[1].contact: no contact c-999"),
    (2999, {"owner": "nobody@example.com"}, "activities[2999].owner: no user nobody@example.com"),
    # UID and href are unique per owner: a-5 and item 3002 are Carol's, a-3000 Alice's, a-7 and 3001 Bob's.
    (3002, {"uid": "UID-5"}, "activities[3002].uid: already used by activity a-5"),
    (3002, {"uid": "NEW-0", "href": "x.ics", "owner": ALICE}, "activities[3002].uid: already used by activity a-3000"),
    (3001, {"href": "a/b.ics"}, "activities[3001].href: must be a plain file name"),
    # Given a uid only, the href is UID.ics, and that one is taken too.
    (3001, {"uid": "renamed-7", "href": None}, "activities[3001].uid: already used by activity a-7"),
]


def test_one_bad_item_refuses_the_whole_file(crm, loaded, database_url):
    before = crm.export()
    positions = _positions(database_url)
    for position, change, message in BAD_ITEMS:
        activities = [_activity(i, title=f"Changed {i}") for i in range(N)]
        activities += [_activity(N, uid="NEW-0", href="NEW-0.ics"), _activity(N + 1), _activity(N + 2)]
        activities[position].update(change)
        result = crm.run("import", "-", expect=1, input=json.dumps({
            "contacts": [{"id": "c-1", "name": "Not stored"}], "activities": activities,
            "deleted_activities": ["a-10", "a-11"]}))
        assert message in result.stderr
    # Nothing of any of those files was kept: no data, no change-log entry.
    assert crm.export() == before
    assert _positions(database_url) == positions
