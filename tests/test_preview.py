"""Issue 11: `caldav preview` says, before enabling, how many activities the
calendar will offer and how many each rule keeps off, from the same rule code
as enabling: its offered count is what the calendar then offers."""

from __future__ import annotations

import json

import pytest

from tests import dav
from tests.conftest import Crm
from tests.factories import ALICE, activity, soon, user

CAL = f"/{ALICE}/crm/"


@pytest.fixture
def capped(crm: Crm) -> Crm:
    """Alice (not enabled): one old meeting, one task, five meetings soon; the CLI with a cap of 3."""
    crm.load({"users": [user(ALICE, timezone_name="Asia/Tokyo")], "activities": [
        activity("long-ago", ALICE, soon(-100)),
        activity("task-1", ALICE, soon(2), type="task"),
        *(activity(f"m-{i}", ALICE, soon(i + 1)) for i in range(5)),
    ]})
    return Crm(crm.database_url, env={"CRM_CALDAV_INITIAL_CAP": "3"})


def _preview(crm: Crm) -> dict:
    return json.loads(crm.run("caldav", "preview", ALICE, "--json").stdout)


def test_preview_counts_each_rule_and_names_the_first_activities(capped):
    preview = _preview(capped)

    assert {name: preview[name]["count"] for name in ("offered", "type_not_synced", "outside_window", "over_cap")} \
        == {"offered": 3, "type_not_synced": 1, "outside_window": 1, "over_cap": 2}
    assert [a["id"] for a in preview["offered"]["first"]] == ["m-0", "m-1", "m-2"]
    assert [a["id"] for a in preview["over_cap"]["first"]] == ["m-3", "m-4"]
    assert [a["id"] for a in preview["outside_window"]["first"]] == ["long-ago"]
    assert preview["type_not_synced"]["first"][0] == {
        "id": "task-1", "title": "Meeting task-1", "start": preview["type_not_synced"]["first"][0]["start"]}
    assert preview["cap"] == 3 and preview["enabled"] is False


def test_preview_offered_count_equals_what_the_calendar_offers_after_enable(capped, server):
    offered = _preview(capped)["offered"]["count"]

    password = capped.enable(ALICE)
    with server.client(ALICE, password) as phone:
        listing = dav.parse(dav.request(phone, "REPORT", CAL, dav.body("04b-sync-collection-initial.xml")))

    assert len(listing.hrefs(200)) == offered == 3
    status = json.loads(capped.run("caldav", "status", ALICE, "--json").stdout)
    assert status["initial_set_size"] == status["offered"] == offered


def test_preview_changes_nothing_and_prints_the_counts(capped):
    text = capped.run("caldav", "preview", ALICE).stdout

    assert "would offer 3 activities" in text
    assert "type not synced: 1" in text and "outside the window: 1" in text and "over the cap: 2" in text
    status = json.loads(capped.run("caldav", "status", ALICE, "--json").stdout)
    assert status["enabled"] is False and status["initial_set_size"] == 0


def test_preview_of_an_unknown_user_is_a_clear_error(crm):
    assert "no user" in crm.run("caldav", "preview", "nobody@example.com", expect=1).stderr
