"""Issue 2, done-when 3: vdirsyncer syncs the calendar two-way with a local folder."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.factories import ALICE, activity, soon, user, vevent

pytestmark = pytest.mark.e2e
VDIRSYNCER = shutil.which("vdirsyncer") or str(Path(sys.executable).with_name("vdirsyncer"))


def _vdirsyncer(config: Path, *args: str) -> str:
    result = subprocess.run([VDIRSYNCER, "-c", str(config), *args], capture_output=True, text=True,
                            timeout=120, input="")
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout + result.stderr


@pytest.fixture
def synced(tmp_path, crm, server):
    crm.load({"users": [user(ALICE)],
              "activities": [activity(f"a-{i}", ALICE, soon(i + 1)) for i in range(5)]})
    password = crm.enable(ALICE)
    local = tmp_path / "local"
    config = tmp_path / "config"
    config.write_text(f"""
[general]
status_path = "{tmp_path / 'status'}"

[pair crm]
a = "crm_remote"
b = "crm_local"
collections = null
conflict_resolution = "a wins"

[storage crm_remote]
type = "caldav"
url = "{server.url}/{ALICE}/crm/"
username = "{ALICE}"
password = "{password}"

[storage crm_local]
type = "filesystem"
path = "{local}"
fileext = ".ics"
""")
    local.mkdir()
    _vdirsyncer(config, "discover")
    _vdirsyncer(config, "sync")
    return config, local


def _local_uids(local: Path) -> dict[str, str]:
    found = {}
    for path in local.glob("*.ics"):
        text = path.read_text()
        uid = next(line[4:] for line in text.splitlines() if line.startswith("UID:"))
        found[uid] = text
    return found


def test_first_sync_brings_every_offered_activity(synced, crm):
    _, local = synced
    exported = {a["uid"] for a in crm.export(ALICE)["activities"]}
    assert set(_local_uids(local)) == exported and len(exported) == 5


def test_next_sync_brings_exactly_the_crm_change(synced, crm):
    config, local = synced
    before = _local_uids(local)
    changed = activity("a-2", ALICE, soon(3), title="Moved by the CRM")
    crm.load({"activities": [changed]})
    output = _vdirsyncer(config, "sync")
    after = _local_uids(local)
    differing = [uid for uid in after if after[uid] != before.get(uid)]
    uid = next(a["uid"] for a in crm.export(ALICE)["activities"] if a["id"] == "a-2")
    assert differing == [uid] and "SUMMARY:Moved by the CRM" in after[uid]
    assert output.count("Copying (updating)") == 1


def test_event_added_locally_becomes_a_crm_activity(synced, crm):
    config, local = synced
    (local / "LOCAL-1.ics").write_text(vevent("LOCAL-1", summary="Added on the laptop"))
    _vdirsyncer(config, "sync")
    activities = crm.export(ALICE)["activities"]
    added = [a for a in activities if a["uid"] == "LOCAL-1"]
    assert len(added) == 1 and added[0]["title"] == "Added on the laptop" and added[0]["source"] == "caldav"
