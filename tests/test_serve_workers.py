"""`crm-caldav serve --workers N`: forked processes on one socket, replaced when one dies, stopped together."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from tests import dav
from tests.factories import ALICE, activity, soon, user

pytestmark = pytest.mark.e2e
POLL = dav.body("04a-propfind-calendar-ctag.xml")


def _children(pid: int) -> set[int]:
    found = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.add(int(entry.name))
    return found


def _wait_for(condition, seconds: float = 30):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError("condition not met in time")


def test_workers_serve_and_a_dead_one_is_replaced_and_sigterm_stops_all(database_url, crm, tmp_path):
    crm.load({"users": [user(ALICE)], "activities": [activity("A1", ALICE, soon())]})
    password = crm.enable(ALICE)
    command = [str(Path(sys.executable).with_name("crm-caldav")), "serve", "--port", "0", "--workers", "2"]
    process = subprocess.Popen(command, cwd=tmp_path, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True,
                               env={"CRM_CALDAV_DB": database_url, "PATH": str(Path(sys.executable).parent)})
    try:
        url = None
        for line in process.stderr:
            if match := re.search(r"Serving CalDAV on (http://\S+)/", line):
                url = match.group(1)
                break
        assert url, f"server did not start (exit {process.poll()})"
        threading.Thread(target=process.stderr.read, daemon=True).start()

        def polls() -> bool:
            with httpx.Client(base_url=url, auth=(ALICE, password), timeout=10) as client:
                return all(client.request("PROPFIND", f"/{ALICE}/crm/", content=POLL,
                                          headers={"Depth": "0"}).status_code == 207 for _ in range(10))

        workers = _wait_for(lambda: _children(process.pid) if len(_children(process.pid)) == 2 else None)
        assert _wait_for(polls)
        victim = min(workers)
        os.kill(victim, signal.SIGKILL)
        replaced = _wait_for(lambda: (c := _children(process.pid)) and len(c) == 2 and victim not in c and c)
        assert len(replaced - workers) == 1
        assert _wait_for(polls)
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
        assert not any(Path(f"/proc/{pid}").exists() for pid in replaced)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_sigterm_while_the_workers_are_still_starting_stops_every_process(database_url, crm, tmp_path):
    """A SIGTERM that arrives before the workers have built their application still stops them all.

    The workers once kept the supervisor's SIGTERM handler until their application was
    built: such a SIGTERM was lost and the processes ran on.
    """
    crm.load({"users": [user(ALICE)], "activities": [activity("A1", ALICE, soon())]})
    command = [str(Path(sys.executable).with_name("crm-caldav")), "serve", "--port", "0", "--workers", "2"]
    process = subprocess.Popen(command, cwd=tmp_path, stderr=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                               env={"CRM_CALDAV_DB": database_url, "PATH": str(Path(sys.executable).parent)})
    workers: set[int] = set()
    try:
        workers = _wait_for(lambda: _children(process.pid) if len(_children(process.pid)) == 2 else None)
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)
        _wait_for(lambda: not any(Path(f"/proc/{pid}").exists() for pid in workers), seconds=30)
    finally:
        for pid in [process.pid, *workers]:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        process.wait()
