"""Issue 10, done-when 3 (SPEC 3.2): a new window or new synced types reach
devices as changes. A device's old sync token returns exactly what left the
calendar (404) and what joined it, and keeps working afterwards."""

from __future__ import annotations

import pytest

from tests import dav
from tests.conftest import Crm
from tests.factories import ALICE, activity, soon, user

pytestmark = pytest.mark.e2e
CAL = f"/{ALICE}/crm/"


def _sync(client, token: str = "") -> dav.Multistatus:
    name = "04-sync-collection.xml" if token else "04b-sync-collection-initial.xml"
    return dav.parse(dav.request(client, "REPORT", CAL, dav.body(name, SYNC_TOKEN=token)))


def _hrefs(crm: Crm, *ids: str) -> set[str]:
    by_id = {a["id"]: f"{CAL}{a['href']}" for a in crm.export(ALICE)["activities"]}
    return {by_id[i] for i in ids}


@pytest.fixture
def typed(crm):
    """Alice's meetings, calls and tasks, CalDAV enabled with the default types (meeting, call)."""
    crm.load({"users": [user(ALICE)], "activities": [
        *(activity(f"meeting-{i}", ALICE, soon(i + 1)) for i in range(3)),
        *(activity(f"call-{i}", ALICE, soon(i + 1, hour=14), type="call") for i in range(2)),
        *(activity(f"task-{i}", ALICE, soon(i + 1, hour=16), type="task") for i in range(2)),
    ]})
    return crm.enable(ALICE)


def test_new_synced_types_reach_an_old_token_as_removals_and_additions(typed, crm, server):
    with server.client(ALICE, typed) as phone:
        first = _sync(phone)
        assert first.hrefs(200) == _hrefs(crm, "meeting-0", "meeting-1", "meeting-2", "call-0", "call-1")

        crm.run("caldav", "settings", ALICE, "--types", "meeting,task")
        changed = _sync(phone, first.sync_token)

        assert changed.hrefs(404) == _hrefs(crm, "call-0", "call-1")
        assert changed.hrefs(200) == _hrefs(crm, "task-0", "task-1")
        assert changed.hrefs() == changed.hrefs(404) | changed.hrefs(200)
        assert changed.sync_token != first.sync_token
        assert _sync(phone).hrefs(200) == _hrefs(crm, "meeting-0", "meeting-1", "meeting-2", "task-0", "task-1")


def test_token_after_a_settings_change_keeps_working(typed, crm, server):
    with server.client(ALICE, typed) as phone:
        first = _sync(phone)
        crm.run("caldav", "settings", ALICE, "--types", "meeting,task")
        second = _sync(phone, first.sync_token)

        assert _sync(phone, second.sync_token).hrefs() == set()
        crm.load({"activities": [activity("meeting-1", ALICE, soon(2), title="Moved room")]})
        third = _sync(phone, second.sync_token)
        assert third.hrefs() == third.hrefs(200) == _hrefs(crm, "meeting-1")
        # the first token still names its position too
        assert _sync(phone, first.sync_token).hrefs() == second.hrefs() | third.hrefs()


def test_settings_change_that_keeps_the_types_changes_no_token(typed, crm, server):
    with server.client(ALICE, typed) as phone:
        first = _sync(phone)
        crm.run("caldav", "settings", ALICE, "--types", "call,meeting", "--sync-type", "two-way")

        again = _sync(phone, first.sync_token)
        assert again.hrefs() == set() and again.sync_token == first.sync_token


def test_types_changed_while_disabled_reach_the_token_after_re_enable(typed, crm, server):
    with server.client(ALICE, typed) as phone:
        first = _sync(phone)
    crm.run("caldav", "disable", ALICE)
    crm.run("caldav", "settings", ALICE, "--types", "task")
    password = crm.enable(ALICE, "new-password")

    with server.client(ALICE, password) as phone:
        changed = _sync(phone, first.sync_token)
    assert changed.hrefs(404) == _hrefs(crm, "meeting-0", "meeting-1", "meeting-2", "call-0", "call-1")
    assert changed.hrefs(200) == _hrefs(crm, "task-0", "task-1")


def test_re_enable_with_a_new_window_keeps_tokens_and_returns_the_difference(crm, server):
    crm.load({"users": [user(ALICE)], "activities": [
        activity("long-ago", ALICE, soon(-100)),  # before the default window (previous month)
        *(activity(f"soon-{i}", ALICE, soon(i + 2)) for i in range(3)),
    ]})
    with server.client(ALICE, crm.enable(ALICE)) as phone:
        first = _sync(phone)
    assert first.hrefs(200) == _hrefs(crm, "soon-0", "soon-1", "soon-2")
    crm.run("caldav", "disable", ALICE)

    wider = Crm(crm.database_url, env={"CRM_CALDAV_WINDOW_MONTHS_BACK": "6", "CRM_CALDAV_INITIAL_CAP": "3"})
    with server.client(ALICE, wider.enable(ALICE, "second-password")) as phone:
        changed = _sync(phone, first.sync_token)
        assert changed.hrefs(404) == _hrefs(crm, "soon-2")  # over the new cap of 3
        assert changed.hrefs(200) == _hrefs(crm, "long-ago")  # inside the wider window
        assert _sync(phone, changed.sync_token).hrefs() == set()


def test_tokens_above_the_current_position_or_not_issued_here_are_refused(typed, crm, server):
    with server.client(ALICE, typed) as phone:
        token = _sync(phone).sync_token
        prefix, _, position = token.rpartition("/")
        for bad in (f"{prefix}/{int(position) + 1}", f"{prefix}/x{position}", "http://x/1", f"{token}x"):
            response = dav.request(phone, "REPORT", CAL, dav.body("04-sync-collection.xml", SYNC_TOKEN=bad))
            assert response.status_code == 403 and "valid-sync-token" in response.text, bad


def test_re_enable_moves_only_what_changed_in_the_change_log(typed, crm, server):
    """Re-enabling with the same window: no activity leaves or joins, so the token sees nothing."""
    with server.client(ALICE, typed) as phone:
        first = _sync(phone)
    crm.run("caldav", "disable", ALICE)
    password = crm.enable(ALICE, "again")
    with server.client(ALICE, password) as phone:
        again = _sync(phone, first.sync_token)
    assert again.hrefs() == set()


def test_synced_types_changed_by_an_import_reach_an_old_token_as_the_difference(typed, crm, server):
    with server.client(ALICE, typed) as phone:
        first = _sync(phone)
        crm.load({"users": [{**user(ALICE), "caldav": {"synced_types": ["meeting", "task"]}}]})
        changed = _sync(phone, first.sync_token)
        assert changed.hrefs(404) == _hrefs(crm, "call-0", "call-1")
        assert changed.hrefs(200) == _hrefs(crm, "task-0", "task-1")
        assert _sync(phone, changed.sync_token).hrefs() == set()
