"""`crm-caldav export --changes-since POSITION`: exactly what changed after a position,
deletions included, with the position to ask from next time (issue 12), on SQLite and
PostgreSQL, for changes a CalDAV client made through the real server (httpx)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.factories import ALICE, BOB, activity, soon, user, vevent

PASSWORD = "alice-pass"


def _changes(crm: Any, position: str, *extra: str) -> dict[str, Any]:
    return json.loads(crm.run("export", "--changes-since", position, *extra).stdout)


@pytest.fixture
def loaded(crm):
    """Alice (enabled) and Bob, three activities each."""
    crm.load({
        "users": [user(ALICE), user(BOB)],
        "contacts": [{"id": "c-1", "name": "Kenji Sato", "email": "kenji@example.jp"}],
        "activities": [activity(f"{owner[0]}-{i}", owner, soon(i + 1), participants=[{"contact": "c-1"}])
                       for owner in (ALICE, BOB) for i in range(3)],
    })
    crm.enable(ALICE, PASSWORD)
    return crm


def test_changes_since_a_position_are_exactly_the_clients_puts_and_deletes(loaded, server):
    crm = loaded
    position = _changes(crm, "0")["position"]
    hrefs = {a["id"]: a["href"] for a in crm.export()["activities"]}
    calendar = f"/{ALICE}/crm/"
    with server.client(ALICE, PASSWORD) as client:
        created = client.put(f"{calendar}phone-new.ics", content=vevent("phone-new", summary="From the phone"),
                             headers={"Content-Type": "text/calendar", "If-None-Match": "*"})
        assert created.status_code == 201, created.text
        edited = client.get(f"{calendar}{hrefs['a-1']}").text.replace("Meeting a-1", "Moved on the phone")
        assert client.put(f"{calendar}{hrefs['a-1']}", content=edited,
                          headers={"Content-Type": "text/calendar"}).status_code in (201, 204)
        assert client.delete(f"{calendar}{hrefs['a-2']}").status_code in (200, 204)

    changes = _changes(crm, position)

    assert changes["since"] == position
    assert {a["title"] for a in changes["activities"]} == {"From the phone", "Moved on the phone"}
    assert {a["source"] for a in changes["activities"]} == {"caldav", "crm"}
    assert changes["deleted_activities"] == ["a-2"]
    # Asked again from the new position: nothing.
    again = _changes(crm, changes["position"])
    assert (again["activities"], again["deleted_activities"]) == ([], [])
    assert again["position"] == changes["position"]


def test_changes_of_one_owner_leave_other_calendars_out(loaded):
    crm = loaded
    position = _changes(crm, "0", "--owner", ALICE)["position"]
    crm.load({"activities": [activity("b-0", BOB, soon(1), title="Bob's change"),
                             activity("a-0", ALICE, soon(1), title="Alice's change")],
              "deleted_activities": ["b-1"]})

    mine = _changes(crm, position, "--owner", ALICE)
    everyone = _changes(crm, "0")

    assert [a["id"] for a in mine["activities"]] == ["a-0"] and mine["deleted_activities"] == []
    assert {a["id"] for a in everyone["activities"]} == {"a-0", "a-1", "a-2", "b-0", "b-2"}
    assert everyone["deleted_activities"] == ["b-1"]


def test_an_answer_imports_back_unchanged(loaded):
    crm = loaded
    answer = crm.run("export", "--changes-since", "0").stdout
    before = crm.export()

    crm.run("import", "-", input=answer)

    assert crm.export()["activities"] == before["activities"]


@pytest.mark.parametrize("position, message", [
    ("yesterday", "'yesterday' is not a position"),
    ("1:5,x", "'x' is not a position"),
    ("1:999999", "is ahead of this database"),
    ("-1", "'-1' is not a position"),
    ("1:-5", "'1:-5' is not a position"),
    ("1:" + "9" * 19, "is not a position"),  # past a BIGINT: refused before any query
    ("\u0661:\u0665", "is not a position"),  # Arabic-Indic digits, which int() would take
    ("1:5,1:7", "user 1 appears twice"),
])
def test_a_bad_position_is_one_clear_line(loaded, position, message):
    result = loaded.run("export", "--changes-since", position, expect=1)
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.output
