"""Issue 2, done-when 3: vdirsyncer syncs the calendar two-way with a local folder."""

from __future__ import annotations

import pytest

from tests import vdir
from tests.factories import ALICE, activity, soon, user, vevent

pytestmark = pytest.mark.e2e


@pytest.fixture
def synced(tmp_path, crm, server):
    crm.load({"users": [user(ALICE)],
              "activities": [activity(f"a-{i}", ALICE, soon(i + 1)) for i in range(5)]})
    password = crm.enable(ALICE)
    return vdir.setup_pair(tmp_path, f"{server.url}/{ALICE}/crm/", ALICE, password)


def test_first_sync_brings_every_offered_activity(synced, crm):
    _, local = synced
    exported = {a["uid"] for a in crm.export(ALICE)["activities"]}
    assert set(vdir.local_events(local)) == exported and len(exported) == 5


def test_next_sync_brings_exactly_the_crm_change(synced, crm):
    config, local = synced
    before = vdir.local_events(local)
    changed = activity("a-2", ALICE, soon(3), title="Moved by the CRM")
    crm.load({"activities": [changed]})
    output = vdir.run(config, "sync")
    after = vdir.local_events(local)
    differing = [uid for uid in after if after[uid] != before.get(uid)]
    uid = next(a["uid"] for a in crm.export(ALICE)["activities"] if a["id"] == "a-2")
    assert differing == [uid] and "SUMMARY:Moved by the CRM" in after[uid]
    assert output.count("Copying (updating)") == 1


def test_event_added_locally_becomes_a_crm_activity(synced, crm):
    config, local = synced
    (local / "LOCAL-1.ics").write_text(vevent("LOCAL-1", summary="Added on the laptop"))
    vdir.run(config, "sync")
    activities = crm.export(ALICE)["activities"]
    added = [a for a in activities if a["uid"] == "LOCAL-1"]
    assert len(added) == 1 and added[0]["title"] == "Added on the laptop" and added[0]["source"] == "caldav"
