"""The server's log as an operator reads it (issue 12): one line per request, login lines, no traceback, no secret.

Each test runs the real ``crm-caldav serve`` in a process of its own and reads
its standard error after SIGTERM.
"""

from __future__ import annotations

import base64
import json
import re
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from server.request_log import loggable_path
from storage_plugin.rules import RECURRENCE_REFUSAL
from tests import dav
from tests.factories import ALICE, activity, soon, sync_body, user, vevent

pytestmark = pytest.mark.e2e
POLL = dav.body("04a-propfind-calendar-ctag.xml")
CALENDAR = f"/{ALICE}/crm/"
UNAUTHORIZED = "Log in with your CRM e-mail and an app password."
TIME = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z"


@contextmanager
def serving(database_url: str, tmp_path: Path, **environment: str) -> Iterator[tuple[str, list[str]]]:
    """(URL, log lines) of a real server process; the list fills once the block ends (SIGTERM)."""
    command = [str(Path(sys.executable).with_name("crm-caldav")), "serve", "--port", "0"]
    process = subprocess.Popen(command, cwd=tmp_path, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True,
                               env={"CRM_CALDAV_DB": database_url, "PATH": str(Path(sys.executable).parent),
                                    **environment})
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(line.rstrip("\n") for line in process.stderr))
    try:
        for line in process.stderr:
            lines.append(line.rstrip("\n"))
            if match := re.search(r"Serving CalDAV on (http://\S+?)/", line):
                break
        else:
            raise AssertionError(f"server did not start: {lines}")
        reader.start()  # a full pipe would stop the server
        yield match.group(1), lines
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)
        if reader.is_alive():
            reader.join(timeout=30)


def short_run(url: str, password: str) -> None:
    """Login (a poll), sync, a PUT, a refused recurring PUT, a discovery PROPFIND (Radicale's), a failed login."""
    with httpx.Client(base_url=url, auth=(ALICE, password), timeout=30) as phone:
        assert phone.request("PROPFIND", CALENDAR, content=POLL, headers={"Depth": "0"}).status_code == 207
        assert phone.request("REPORT", CALENDAR, content=sync_body(), headers={"Depth": "1"}).status_code == 207
        assert phone.put(f"{CALENDAR}new.ics", content=vevent("NEW-1")).status_code == 201
        refused = phone.put(f"{CALENDAR}weekly.ics", content=vevent("WEEKLY-1", extra="RRULE:FREQ=WEEKLY"))
        assert refused.status_code == 403
        assert phone.request("PROPFIND", f"/{ALICE}/", headers={"Depth": "0"}).status_code == 207
    with httpx.Client(base_url=url, auth=(ALICE, "wrong-password"), timeout=30) as stranger:
        assert stranger.request("PROPFIND", CALENDAR, content=POLL, headers={"Depth": "0"}).status_code == 401


def test_a_short_run_logs_one_line_per_request_and_per_login_and_nothing_else(database_url, crm, tmp_path):
    crm.load({"users": [user(ALICE)], "activities": [activity("a-1", ALICE, soon())]})
    password = crm.enable(ALICE)
    device = json.loads(crm.run("caldav", "password", "list", ALICE, "--json").stdout)[0]["id"]
    with serving(database_url, tmp_path) as (url, log):
        short_run(url, password)
    you = f"user={ALICE} device={device} from=127.0.0.1"
    expected = [
        rf"INFO server\.handler: Login of {ALICE} \(device {device}\) from 127\.0\.0\.1",
        rf"INFO crm_caldav\.request: PROPFIND {CALENDAR} 207 \d+\.\d ms [1-9]\d* B {you}",
        rf"INFO crm_caldav\.request: REPORT {CALENDAR} 207 \d+\.\d ms [1-9]\d* B {you}",
        rf"INFO crm_caldav\.request: PUT {CALENDAR}new\.ics 201 \d+\.\d ms 0 B {you}",
        rf"INFO crm_caldav\.request: PUT {CALENDAR}weekly\.ics 403 \d+\.\d ms [1-9]\d* B {you} "
        + re.escape(f"reason={json.dumps(RECURRENCE_REFUSAL)}"),
        rf"INFO crm_caldav\.request: PROPFIND /{ALICE}/ 207 \d+\.\d ms [1-9]\d* B {you}",
        rf"WARNING server\.handler: Failed login for {ALICE} from 127\.0\.0\.1",
        rf"INFO crm_caldav\.request: PROPFIND {CALENDAR} 401 \d+\.\d ms [1-9]\d* B from=127\.0\.0\.1 "
        + re.escape(f"reason={json.dumps(UNAUTHORIZED)}"),
    ]
    # waitress counts its request threads busy until each first waits for work: on a loaded machine the
    # first request can find none idle yet and waitress warns "Task queue depth is 1" (its overload signal).
    records = [line for line in log if not line.startswith("Serving CalDAV on ") and " waitress.queue: " not in line]
    assert len(records) == len(expected), "\n".join(log)
    for line, pattern in zip(records, expected, strict=True):
        assert re.fullmatch(rf"{TIME} {pattern}", line), (line, pattern)
    assert password not in "\n".join(log)


def test_debug_json_logs_are_one_object_per_line_without_a_secret_or_a_traceback(database_url, crm, tmp_path):
    crm.load({"users": [user(ALICE)], "activities": [activity("a-1", ALICE, soon())]})
    password = crm.enable(ALICE)
    feed = json.loads(crm.run("caldav", "feed", "add", ALICE, "--label", "Outlook", "--json").stdout)["url"]
    token = feed.rsplit("/", 1)[1].removesuffix(".ics")
    with serving(database_url, tmp_path, CRM_CALDAV_LOG_LEVEL="debug", CRM_CALDAV_LOG_FORMAT="json") as (url, log):
        short_run(url, password)
        assert httpx.get(f"{url}/feeds/{token}.ics").status_code == 200
    records = [json.loads(line) for line in log if not line.startswith("Serving CalDAV on ")]
    records = [record for record in records if record["logger"] != "waitress.queue"]  # as above
    text = "\n".join(log)
    secrets = [password, token, base64.b64encode(f"{ALICE}:{password}".encode()).decode(),
               base64.b64encode(f"{ALICE}:wrong-password".encode()).decode(), "wrong-password"]
    assert not [secret for secret in secrets if secret in text]
    assert "Traceback" not in text and all("traceback" not in record for record in records)
    requests = [r for r in records if r["logger"] == "crm_caldav.request"]
    assert [(r["method"], r["status"]) for r in requests] == [
        ("PROPFIND", 207), ("REPORT", 207), ("PUT", 201), ("PUT", 403), ("PROPFIND", 207), ("PROPFIND", 401),
        ("GET", 200)]
    assert requests[3]["reason"] == RECURRENCE_REFUSAL and requests[3]["user"] == ALICE
    assert requests[-1]["path"] == "/feeds/<token>.ics" and requests[-1]["bytes"] > 0
    assert any(r["logger"].startswith("radicale") and r["level"] == "DEBUG" for r in records)  # debug reaches it


@pytest.mark.parametrize(("path", "logged"), [
    ("/feeds/Zm9vYmFyLXNlY3JldC10b2tlbg.ics", "/feeds/<token>.ics"),
    ("/feeds/no-suffix-token", "/feeds/<token>"),
    ("/admin/profile/0123456789abcdef", "/admin/profile/<token>"),
    (f"/{ALICE}/crm/feeds.ics", f"/{ALICE}/crm/feeds.ics"),
    ("/admin/users/alice", "/admin/users/alice"),
])
def test_request_lines_mask_the_secret_tokens_of_feed_and_profile_paths(path, logged):
    assert loggable_path(path) == logged


def test_admin_page_and_feed_request_lines_name_who_they_acted_for(database_url, crm, tmp_path):
    from datetime import UTC, datetime

    from crm_model.db import make_engine, make_session_factory
    from crm_model.services import admins as admin_service
    from crm_model.services import feeds as feed_service

    crm.load({"users": [user(ALICE)], "activities": [activity("a-1", ALICE, soon())]})
    crm.enable(ALICE)
    admin, admin_password = "boss@example.com", "correct horse battery staple"
    engine = make_engine(database_url)
    with make_session_factory(engine).begin() as session:
        admin_service.add_admin(session, email=admin, password=admin_password, now=datetime.now(UTC))
        _, token = feed_service.add_feed(session, email=ALICE, label="Outlook", now=datetime.now(UTC))
    engine.dispose()
    with serving(database_url, tmp_path) as (url, log), httpx.Client(base_url=url, timeout=30) as browser:
        form = browser.get("/admin/login")
        csrf = re.search(r'name="csrf" value="([^"]+)"', form.text).group(1)
        wrong = browser.post("/admin/login", data={"csrf": csrf, "email": admin, "password": "wrong"})
        assert wrong.status_code == 403
        right = browser.post("/admin/login", data={"csrf": csrf, "email": admin, "password": admin_password})
        assert right.status_code == 303
        assert browser.get("/admin/").status_code == 200
        assert browser.get(f"/feeds/{token}.ics").status_code == 200
    text = "\n".join(log)
    assert re.search(rf"WARNING server\.admin\.app: Failed admin login for {re.escape(admin)} from 127\.0\.0\.1",
                     text), text
    assert re.search(rf"INFO server\.admin\.app: Admin login of {re.escape(admin)} from 127\.0\.0\.1", text), text
    assert re.search(rf"POST /admin/login 303 .* user=admin:{re.escape(admin)}", text), text
    assert re.search(rf"GET /admin/ 200 .* user=admin:{re.escape(admin)}", text), text
    assert re.search(rf"GET /feeds/<token>\.ics 200 .* user={re.escape(ALICE)}", text), text
    assert token not in text and admin_password not in text
