"""Issue 11: `caldav enable` on an enabled user changes nothing and says so (the
old password keeps working, the initial window is not restarted), and a second
`serve --demo` keeps the demo users' logins."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests import dav
from tests.conftest import Crm
from tests.factories import ALICE, activity, soon, user

CAL = f"/{ALICE}/crm/"


def _status(crm: Crm) -> dict:
    return json.loads(crm.run("caldav", "status", ALICE, "--json").stdout)


def _sync(client, token: str = "") -> dav.Multistatus:
    name = "04-sync-collection.xml" if token else "04b-sync-collection-initial.xml"
    return dav.parse(dav.request(client, "REPORT", CAL, dav.body(name, SYNC_TOKEN=token)))


@pytest.fixture
def enabled(crm: Crm) -> str:
    crm.load({"users": [user(ALICE)], "activities": [activity(f"m-{i}", ALICE, soon(i + 1)) for i in range(3)]})
    return crm.enable(ALICE, "first-password")


def test_second_enable_changes_nothing_and_says_so(enabled, crm):
    before = _status(crm)

    text = crm.run("caldav", "enable", ALICE).stdout
    again = json.loads(crm.run("caldav", "enable", ALICE, "--json").stdout)

    assert "already enabled" in text and "nothing changed" in text
    assert again["changed"] is False and again["password"] is None and "already enabled" in again["message"]
    assert _status(crm) == before
    devices = json.loads(crm.run("caldav", "password", "list", ALICE, "--json").stdout)
    assert [(d["label"], d["revoked_at"]) for d in devices] == [("first device", None)]


def test_old_password_still_works_and_window_is_not_restarted_after_second_enable(enabled, crm, server):
    with server.client(ALICE, enabled) as phone:
        first = _sync(phone)
        crm.run("caldav", "enable", ALICE, "--password-stdin", input="ignored-password\n")
        again = _sync(phone, first.sync_token)

    assert again.hrefs() == set() and again.sync_token == first.sync_token  # no change logged
    with server.client(ALICE, "ignored-password") as other:
        assert other.request("PROPFIND", CAL, headers={"Depth": "0"}).status_code == 401


def test_enable_after_disable_gives_a_new_first_password_and_the_old_one_fails(enabled, crm, server):
    crm.run("caldav", "disable", ALICE)
    second = crm.enable(ALICE, "second-password")

    with server.client(ALICE, second) as phone:
        assert len(_sync(phone).hrefs(200)) == 3
    with server.client(ALICE, enabled) as phone:
        assert phone.request("PROPFIND", CAL, headers={"Depth": "0"}).status_code == 401
    labels = [(d["label"], d["revoked_at"] is None)
              for d in json.loads(crm.run("caldav", "password", "list", ALICE, "--json").stdout)]
    assert labels == [("first device", False), ("first device", True)]


def _serve_demo(folder: Path) -> tuple[list[tuple[str, str]], list[str], str, subprocess.Popen]:
    """Start `serve --demo` in ``folder``: the logins printed, the other lines, the URL and the process."""
    command = [str(Path(sys.executable).with_name("crm-caldav")), "serve", "--demo", "--port", "0"]
    process = subprocess.Popen(command, cwd=folder, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               text=True, env={"PATH": str(Path(sys.executable).parent)})
    logins, lines = [], []
    assert process.stdout is not None
    for line in process.stdout:
        if match := re.fullmatch(r"(\S+@\S+) (\S+)\n", line):
            logins.append(match.groups())
        elif match := re.search(r"Serving CalDAV on (http://\S+/)", line):
            return logins, lines, match.group(1), process
        else:
            lines.append(line)
    raise AssertionError(f"the demo server did not start: {lines}")


@pytest.mark.e2e
def test_serve_demo_twice_keeps_the_logins_of_the_first_run(tmp_path):
    logins, _, _, process = _serve_demo(tmp_path)
    process.terminate()
    process.wait(timeout=10)
    assert len(logins) == 3

    again, lines, url, process = _serve_demo(tmp_path)
    try:
        assert again == []
        assert sum("logins unchanged" in line for line in lines) == 3
        email, password = logins[0]
        response = httpx.request("PROPFIND", f"{url}{email}/crm/", auth=(email, password),
                                 headers={"Depth": "1"}, timeout=30)
        assert response.status_code == 207
    finally:
        process.terminate()
        process.wait(timeout=10)
