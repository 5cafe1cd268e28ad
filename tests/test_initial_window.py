"""Issue 3, done-when 1: the initial window of 2,000 (SPEC 3.2) and `explain`."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tests import dav
from tests.factories import ALICE, BOB, activity, user

pytestmark = pytest.mark.e2e
CAL = f"/{ALICE}/crm/"


def _first_of_previous_month(moment: datetime) -> datetime:
    first = moment.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    return (first - timedelta(days=1)).replace(day=1)


@pytest.fixture
def window(crm, server):
    now = datetime.now(UTC).replace(microsecond=0)
    begin, step = now - timedelta(days=92), timedelta(hours=(365 + 92) * 24 / 2600)
    starts = {f"a-{i}": begin + i * step for i in range(2600)}
    crm.load({
        "users": [user(ALICE), user(BOB)],
        "activities": [activity(i, ALICE, s, reminder_minutes=None) for i, s in starts.items()]
        + [activity("task-1", ALICE, now + timedelta(days=2), type="task"),
           activity("b-1", BOB, now + timedelta(days=2))],
    })
    password = crm.enable(ALICE)
    hrefs = {a["id"]: f"{CAL}{a['href']}" for a in crm.export(ALICE)["activities"]}
    with server.client(ALICE, password) as client:
        yield {"starts": starts, "hrefs": hrefs, "client": client, "now": now}


def _sync(client, token: str = ""):
    name = "04-sync-collection.xml" if token else "04b-sync-collection-initial.xml"
    return dav.parse(dav.request(client, "REPORT", CAL, dav.body(name, SYNC_TOKEN=token)))


def test_offers_exactly_the_2000_earliest_from_the_previous_month(window):
    start = _first_of_previous_month(window["now"])
    eligible = sorted((s, i) for i, s in window["starts"].items() if s >= start)
    expected = {window["hrefs"][i] for _, i in eligible[:2000]}
    offered = _sync(window["client"]).hrefs(200)
    assert len(offered) == 2000 and offered == expected
    assert min(window["starts"][i] for i, h in window["hrefs"].items() if h in offered) >= start


def test_later_crm_changes_appear_and_a_deletion_pulls_nothing_in(window, crm):
    client, hrefs = window["client"], window["hrefs"]
    first = _sync(client)
    old_outside = "a-0"  # three months back: outside the window
    member = next(i for i in sorted(window["starts"], key=window["starts"].get) if hrefs[i] in first.hrefs())
    crm.load({"activities": [
        activity("new-1", ALICE, window["now"] + timedelta(days=1), title="Created after T"),
        activity(old_outside, ALICE, window["starts"][old_outside], title="Edited after T", reminder_minutes=None),
    ]})
    second = _sync(client, first.sync_token)
    new_href = f"{CAL}{next(a['href'] for a in crm.export(ALICE)['activities'] if a['id'] == 'new-1')}"
    assert second.hrefs(200) == {new_href, hrefs[old_outside]} and not second.hrefs(404)

    crm.load({"deleted_activities": [member]})
    third = _sync(client, second.sync_token)
    assert third.hrefs() == {hrefs[member]} and third.hrefs(404) == {hrefs[member]}
    assert len(_sync(client).hrefs(200)) == 2000 - 1 + 2


def test_explain_names_the_rule_for_each_activity(window, crm):
    ordered = sorted(window["starts"], key=window["starts"].get)
    offered = _sync(window["client"]).hrefs(200)
    member = next(i for i in ordered if window["hrefs"][i] in offered)
    over_cap = ordered[-1]
    crm.load({"deleted_activities": ["a-5"]})
    crm.run("caldav", "disable", BOB)
    cases = [
        (member, 0, "initial window"),
        ("a-0", 1, "starts before the initial window"),
        (over_cap, 1, "window was already full"),
        ("task-1", 1, "type 'task' is not synced"),
        ("b-1", 1, f"owned by {BOB}"),
        ("a-5", 1, "deleted"),
    ]
    for activity_id, code, words in cases:
        result = crm.run("explain", ALICE, activity_id, expect=code)
        assert words in result.stdout and result.stdout.count("\n") == 1, (activity_id, result.stdout)
    assert "disabled" in crm.run("explain", BOB, "b-1", expect=1).stdout
    crm.run("explain", ALICE, "no-such-activity", expect=2)
    crm.run("explain", "nobody@example.com", "a-1", expect=2)
