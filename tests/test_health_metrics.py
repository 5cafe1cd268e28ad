"""/health and /metrics (issue 12): no login, 503 while the database is down, counts without user data."""

from __future__ import annotations

import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import create_engine, text

from tests import dav
from tests.conftest import settings_with, start_server
from tests.database_outages import refused_connections
from tests.factories import ALICE, activity, soon, user

pytestmark = pytest.mark.e2e
POLL = dav.body("04a-propfind-calendar-ctag.xml")
UNAUTHORIZED_POLLS = ("crm_caldav_requests_total", (("method", "PROPFIND"), ("status", "401")))
POLLS = ("crm_caldav_requests_total", (("method", "PROPFIND"), ("status", "207")))


def samples(body: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of a Prometheus text answer: (name, sorted labels) -> value."""
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(body) for s in family.samples}


def scrape_until(client: httpx.Client, done, seconds: float = 15) -> dict:
    """The samples of /metrics once ``done(samples)`` holds: a request is counted once its answer is sent,
    which can be a moment after the client has read it."""
    deadline = time.monotonic() + seconds
    while True:
        values = samples(client.get("/metrics").text)
        if done(values) or time.monotonic() > deadline:
            return values


def poll(client: httpx.Client) -> httpx.Response:
    return client.request("PROPFIND", f"/{ALICE}/crm/", content=POLL, headers={"Depth": "0"})


def test_health_answers_200_without_login_and_metrics_count_requests_without_user_data(crm, server):
    crm.load({"users": [user(ALICE)], "activities": [activity("a-1", ALICE, soon())]})
    password = crm.enable(ALICE)
    with httpx.Client(base_url=server.url, timeout=30) as anonymous:
        health = anonymous.get("/health")
        assert (health.status_code, health.text) == (200, "ok\n")
        assert anonymous.head("/health").status_code == 200
        with server.client(ALICE, password) as phone:
            assert [poll(phone).status_code for _ in range(3)] == [207, 207, 207]
        with server.client(ALICE, "not-the-password") as stranger:
            assert poll(stranger).status_code == 401
        values = scrape_until(anonymous, lambda v: v.get(UNAUTHORIZED_POLLS) == 1)
        scrape = anonymous.get("/metrics")
    assert scrape.status_code == 200 and scrape.headers["Content-Type"].startswith("text/plain; version=")
    assert values[POLLS] == 3
    assert values[UNAUTHORIZED_POLLS] == 1
    assert values[("crm_caldav_requests_total", (("method", "HEAD"), ("status", "200")))] == 1  # /health
    assert values[("crm_caldav_request_duration_seconds_count", (("method", "PROPFIND"),))] == 4
    assert values[("crm_caldav_failed_logins_total", ())] == 1
    assert values[("crm_caldav_active_devices", ())] == 1  # the phone's device, used just now
    assert ALICE not in scrape.text and "alice" not in scrape.text


def test_health_is_503_while_the_database_is_down_and_200_again_after(database_url, crm, server):
    crm.load({"users": [user(ALICE)]})
    with httpx.Client(base_url=server.url, timeout=30) as monitor:
        assert monitor.get("/health").status_code == 200
        outage = refused_connections if database_url.startswith("postgresql") else _missing_table
        with outage(database_url):
            began = time.monotonic()
            down = monitor.get("/health")
            waited = time.monotonic() - began
        assert (down.status_code, down.text, down.headers["Retry-After"]) == (503, "database unavailable\n", "5")
        assert waited < 6, waited
        assert monitor.get("/health").status_code == 200
        errors = {labels: value for (name, labels), value in samples(monitor.get("/metrics").text).items()
                  if name == "crm_caldav_database_errors_total"}
    assert sum(errors.values()) >= 1, errors


def test_health_is_503_within_its_time_limit_while_a_table_is_locked(database_url, crm, server):
    if not database_url.startswith("postgresql"):
        pytest.skip("SQLite readers are never blocked by a writer (WAL)")
    crm.load({"users": [user(ALICE)]})
    locker = create_engine(database_url)
    with locker.connect() as connection, httpx.Client(base_url=server.url, timeout=30) as monitor:
        connection.execute(text("LOCK TABLE devices IN ACCESS EXCLUSIVE MODE"))  # until the rollback below
        began = time.monotonic()
        down = monitor.get("/health")
        waited = time.monotonic() - began
        connection.rollback()
        assert down.status_code == 503 and 2.5 < waited < 6, (down.status_code, waited)
        assert monitor.get("/health").status_code == 200
    locker.dispose()


def test_health_and_metrics_switched_off_answer_404(server_settings, crm):
    settings = settings_with(server_settings, health_enabled=False, metrics_enabled=False)
    running, http_server = start_server(settings)
    try:
        with httpx.Client(base_url=running.url, timeout=30) as anonymous:
            for path, setting in (("/health", "CRM_CALDAV_HEALTH"), ("/metrics", "CRM_CALDAV_METRICS")):
                answer = anonymous.get(path)
                assert answer.status_code == 404 and f"{setting}=off" in answer.text
    finally:
        http_server.shutdown()
        running.engine.dispose()


# serve --workers N as the CLI runs it once the parent calls share_between_processes before forking.
SHARING_SERVE = ("import sys; from server.metrics import share_between_processes; "
                 "print('metrics in', share_between_processes(2), file=sys.stderr, flush=True); "
                 "from server.cli import main; main()")


@pytest.mark.parametrize("directory", ["the operator's", "a temporary one"])
def test_metrics_of_every_worker_process_add_up_in_one_scrape(database_url, crm, tmp_path, directory):
    crm.load({"users": [user(ALICE)], "activities": [activity("a-1", ALICE, soon())]})
    password = crm.enable(ALICE)
    env = {"CRM_CALDAV_DB": database_url, "PATH": str(Path(sys.executable).parent)}
    if directory == "the operator's":
        (tmp_path / "metrics").mkdir()
        env["PROMETHEUS_MULTIPROC_DIR"] = str(tmp_path / "metrics")
        command = [str(Path(sys.executable).with_name("crm-caldav"))]
    else:
        command = [sys.executable, "-c", SHARING_SERVE]
    process = subprocess.Popen([*command, "serve", "--port", "0", "--workers", "2"], cwd=tmp_path, env=env,
                               stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
    try:
        url, metrics_dir = _served_url(process)
        metrics_dir = metrics_dir or tmp_path / "metrics"
        with httpx.Client(base_url=url, auth=(ALICE, password), timeout=30) as phone:
            for _ in range(20):  # new connections: the two processes share them
                with httpx.Client(base_url=url, auth=(ALICE, password), timeout=30) as one_off:
                    assert poll(one_off).status_code == 207
            assert scrape_until(phone, lambda v: v.get(POLLS) == 20)[POLLS] == 20
            counts = {samples(phone.get("/metrics").text)[POLLS] for _ in range(6)}  # whichever process answers
        assert counts == {20}
        assert len(list(metrics_dir.glob("counter_*.db"))) == 2  # both processes answered
    finally:
        process.terminate()
        assert process.wait(timeout=30) == 0
    assert metrics_dir.exists() == (directory == "the operator's")  # a temporary one is removed at exit


def _served_url(process: subprocess.Popen) -> tuple[str, Path | None]:
    """The server's URL, and the metrics directory it printed (SHARING_SERVE), once it serves."""
    directory = None
    for line in process.stderr:
        if line.startswith("metrics in "):
            directory = Path(line.removeprefix("metrics in ").strip())
        if match := re.search(r"Serving CalDAV on (http://\S+?)/", line):
            threading.Thread(target=process.stderr.read, daemon=True).start()
            return match.group(1), directory
    raise AssertionError(f"server did not start (exit {process.poll()})")


@contextmanager
def _missing_table(database_url: str) -> Iterator[None]:
    """SQLite: a table the server reads is gone inside the block (SELECT 1 would still answer)."""
    engine = create_engine(database_url)
    with engine.begin() as connection:
        connection.execute(text("ALTER TABLE devices RENAME TO devices_away"))
    try:
        yield
    finally:
        with engine.begin() as connection:
            connection.execute(text("ALTER TABLE devices_away RENAME TO devices"))
        engine.dispose()
