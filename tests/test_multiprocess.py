"""Issue 4, done-when 5: two server processes share one database under concurrent writers.

20 clients create, edit and delete overlapping events through both processes for
a bounded time. Every edit and delete carries If-Match (and every create
If-None-Match: *), so the acknowledged writes of one href must form one chain:
no two acknowledged writes built on the same version (that would be a lost
update), every refused write was a 412 (or a 404 for an event already gone),
and both processes then agree with `crm-caldav export`.
"""

from __future__ import annotations

import random
import re
import subprocess
import sys
import threading
import time
from collections import defaultdict
from pathlib import Path

import httpx
import pytest

from tests import dav
from tests.factories import ALICE, user, vevent

pytestmark = pytest.mark.e2e
CAL = f"/{ALICE}/crm/"
HREFS = [f"SHARED-{n}" for n in range(8)]
CLIENTS, SECONDS = 20, 8.0


def _spawn(database_url: str, cwd: Path) -> tuple[subprocess.Popen, str]:
    command = [str(Path(sys.executable).with_name("crm-caldav")), "serve", "--port", "0"]
    process = subprocess.Popen(command, cwd=cwd, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True,
                               env={"CRM_CALDAV_DB": database_url,
                                    "PATH": str(Path(sys.executable).parent)})
    for line in process.stderr:
        if match := re.search(r"Serving CalDAV on (http://\S+)/", line):
            threading.Thread(target=process.stderr.read, daemon=True).start()  # keep the pipe drained
            return process, match.group(1)
    raise AssertionError(f"server did not start (exit {process.wait()})")


class Writer:
    """One client: random creates, edits and deletes on the shared hrefs."""

    def __init__(self, number: int, url: str, password: str, log: list, lock: threading.Lock) -> None:
        self.number, self.url, self.password, self.log, self.lock = number, url, password, log, lock
        self.random = random.Random(number)
        self.count = 0

    def run(self, deadline: float) -> None:
        with httpx.Client(base_url=self.url, auth=(ALICE, self.password), timeout=60) as client:
            while time.monotonic() < deadline:
                self.step(client, self.random.choice(HREFS))

    def step(self, client: httpx.Client, uid: str) -> None:
        href = f"{CAL}{uid}.ics"
        self.count += 1
        title = f"w{self.number}-{self.count}"
        current = client.get(href)
        if current.status_code == 404:
            response = client.put(href, content=vevent(uid, summary=title), headers={"If-None-Match": "*"})
            self.record(uid, "create", None, title, response.status_code)
            return
        base = re.search(r"SUMMARY:(.*)\r\n", current.text).group(1)
        etag = current.headers["ETag"]
        if self.random.random() < 0.05:
            time.sleep(0.01)  # widen the window for a stale write now and then
        if self.random.random() < 0.2:
            response = client.delete(href, headers={"If-Match": etag})
            self.record(uid, "delete", base, None, response.status_code)
        else:
            response = client.put(href, content=vevent(uid, summary=title), headers={"If-Match": etag})
            self.record(uid, "edit", base, title, response.status_code)

    def record(self, uid: str, op: str, base: str | None, title: str | None, status: int) -> None:
        with self.lock:
            self.log.append((uid, op, base, title, status))


def test_two_processes_lose_no_acknowledged_write(database_url, crm, tmp_path):
    crm.load({"users": [user(ALICE)]})
    password = crm.enable(ALICE)
    servers = [_spawn(database_url, tmp_path) for _ in range(2)]
    try:
        log: list = []
        lock = threading.Lock()
        deadline = time.monotonic() + SECONDS
        writers = [Writer(n, servers[n % 2][1], password, log, lock) for n in range(CLIENTS)]
        threads = [threading.Thread(target=w.run, args=(deadline,)) for w in writers]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=SECONDS + 120)
        _check_log(log, crm)
        _check_both_processes_agree(servers, password, crm)
    finally:
        for process, _ in servers:
            process.terminate()
            process.wait(timeout=10)


def _check_log(log: list, crm) -> None:
    assert len(log) > 100, "too few writes to prove anything"
    statuses = {status for *_, status in log}
    assert statuses <= {200, 201, 204, 404, 412}, statuses
    assert 412 in statuses, "no stale write happened: the test did not exercise concurrency"
    exported = {a["uid"]: a["title"] for a in crm.export(ALICE)["activities"]}
    assert len(crm.export(ALICE)["activities"]) == len(exported)  # nothing duplicated
    by_uid = defaultdict(list)
    for uid, op, base, title, status in log:
        if status in (200, 201, 204):
            by_uid[uid].append((op, base, title))
    for uid in HREFS:
        acknowledged = by_uid[uid]
        bases = [base for op, base, _ in acknowledged if op != "create"]
        assert len(bases) == len(set(bases)), f"{uid}: two acknowledged writes built on one version"
        titles = {title for _, _, title in acknowledged if title}
        assert set(bases) <= titles, f"{uid}: a write built on a version never acknowledged"
        heads = titles - set(bases)  # versions nobody built on: at most the live one
        if uid in exported:
            assert heads == {exported[uid]}, (uid, heads, exported[uid])
        else:
            assert not heads, (uid, heads)


def _check_both_processes_agree(servers, password: str, crm) -> None:
    exported = {a["href"] for a in crm.export(ALICE)["activities"]}
    answers = []
    for _, url in servers:
        with httpx.Client(base_url=url, auth=(ALICE, password), timeout=60) as client:
            result = dav.parse(dav.request(client, "REPORT", CAL, dav.body("04b-sync-collection-initial.xml")))
        answers.append({href.rsplit("/", 1)[1]: r["etag"] for href, r in result.responses.items()})
    assert answers[0] == answers[1] and set(answers[0]) == exported
