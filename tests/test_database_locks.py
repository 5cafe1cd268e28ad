"""Issue 9: database time limits. A request that waits on a lock, a slow statement or the pool
answers 503 + Retry-After within the limit, other users keep their answers, nothing is lost.

End to end against the real server, with limits of 1-3 s (production: 5/15/5 s). Locks are
held by a second, plain connection, as another program writing the CRM would hold them.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest
from sqlalchemy import create_engine, text

from crm_model.db import make_engine
from server.app import create_app
from server.config import Settings
from server.http import make_server
from tests import dav
from tests.conftest import RunningServer, settings_with
from tests.factories import ALICE, BOB, activity, soon, user, vevent

pytestmark = pytest.mark.e2e
CAL = f"/{ALICE}/crm/"
LOCK_TIMEOUT = 1
MARGIN = 1.0  # seconds over a limit that a refused request may take (login, HTTP, scheduling)
POLL = dav.body("04a-propfind-calendar-ctag.xml")
LOCKING = {
    "table": "LOCK TABLE activities IN ACCESS EXCLUSIVE MODE",
    "row for update": "SELECT id FROM users WHERE email = :email FOR UPDATE",
    "row update": "UPDATE users SET name = 'Alice Renamed' WHERE email = :email",
}
Request = Callable[[httpx.Client], httpx.Response]
REQUESTS: dict[str, Request] = {
    "PUT": lambda c: c.put(f"{CAL}NEW-1.ics", content=vevent("NEW-1")),
    "DELETE": lambda c: c.delete(f"{CAL}gone.ics"),
    "GET": lambda c: c.get(f"{CAL}kept.ics"),
    "poll": lambda c: dav.request(c, "PROPFIND", CAL, POLL, "0"),
    "sync REPORT": lambda c: dav.request(c, "REPORT", CAL, dav.body("04b-sync-collection-initial.xml")),
    "multiget REPORT": lambda c: dav.request(c, "REPORT", CAL, dav.multiget_body([f"{CAL}kept.ics"]), None),
    "PROPFIND Depth 1": lambda c: dav.request(c, "PROPFIND", CAL, dav.body("04c-propfind-calendar-etags.xml")),
    "PROPPATCH": lambda c: dav.request(c, "PROPPATCH", CAL, dav.body("03c-proppatch-calendar-color.xml"), None),
}


@contextmanager
def serving(settings: Settings, **engine_options: Any) -> Iterator[RunningServer]:
    """The real server on ``settings.database_limits`` (the conftest server runs without limits)."""
    engine = make_engine(settings.database_url, settings.database_limits, **engine_options)
    http_server = make_server("127.0.0.1", 0, create_app(settings, engine))
    threading.Thread(target=http_server.serve_forever, daemon=True).start()
    try:
        yield RunningServer(f"http://127.0.0.1:{http_server.server_address[1]}", engine, settings)
    finally:
        http_server.shutdown()
        engine.dispose()


@pytest.fixture
def limited(server_settings: Settings) -> Settings:
    return settings_with(server_settings, db_lock_timeout_seconds=LOCK_TIMEOUT,
                         db_statement_timeout_seconds=2, db_pool_timeout_seconds=1)


@pytest.fixture
def passwords(crm) -> dict[str, str]:
    crm.load({"users": [user(ALICE, "Alice"), user(BOB)], "activities": [
        activity("a-1", ALICE, soon(1), uid="kept", href="kept.ics"),
        activity("a-2", ALICE, soon(2), uid="gone", href="gone.ics"),
        activity("b-1", BOB, soon(1)),
    ]})
    return {ALICE: crm.enable(ALICE), BOB: crm.enable(BOB)}


@contextmanager
def clients(running: RunningServer, passwords: dict[str, str], *,
            sync: bool = True) -> Iterator[tuple[httpx.Client, httpx.Client]]:
    """Alice's and Bob's clients, logged in once (as a phone is) and, with ``sync``, synced once.

    Alice's events are read once, so their renderings are cached (a rendering made during a
    lock waits up to the lock timeout to be stored, then is dropped: that answer is slow).
    Without ``sync``: a first sync in a minute needs a second pooled connection.
    """
    with running.client(ALICE, passwords[ALICE]) as alice, running.client(BOB, passwords[BOB]) as bob:
        for client, calendar in ((alice, CAL), (bob, f"/{BOB}/crm/")):
            assert dav.request(client, "PROPFIND", calendar, POLL, "0").status_code == 207
            if sync:
                assert dav.request(client, "REPORT", calendar, dav.body("04b-sync-collection-initial.xml")).is_success
        assert REQUESTS["PROPFIND Depth 1"](alice).status_code == 207
        yield alice, bob


@contextmanager
def postgres_lock(database_url: str, statement: str, *, commit: bool = False) -> Iterator[None]:
    """``statement`` run in an open transaction of another connection, ended on exit."""
    engine = create_engine(database_url)
    try:
        with engine.connect() as connection:
            transaction = connection.begin()
            connection.execute(text(statement), {"email": ALICE})
            try:
                yield
            finally:
                transaction.commit() if commit else transaction.rollback()
    finally:
        engine.dispose()


def timed(request: Request, client: httpx.Client) -> tuple[httpx.Response, float]:
    """The answer and how long it took, in seconds."""
    started = time.monotonic()
    response = request(client)
    return response, time.monotonic() - started


def assert_refused_in_time(response: httpx.Response, elapsed: float, limit: float, what: str) -> None:
    assert (response.status_code, response.headers.get("Retry-After")) == (503, "5"), (what, response.text)
    assert elapsed < limit + MARGIN, (what, elapsed)


def wait_for_lock_waiter(database_url: str, deadline_seconds: float = 5.0) -> None:
    """Return once some PostgreSQL session waits for a lock (polled until the deadline)."""
    engine = create_engine(database_url)
    deadline = time.monotonic() + deadline_seconds
    try:
        with engine.connect() as connection:
            while connection.execute(text(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                    "AND wait_event_type = 'Lock'")).scalar() == 0:
                assert time.monotonic() < deadline, "no request started waiting for the lock"
                connection.rollback()
    finally:
        engine.dispose()


def assert_stored(crm, uids: set[str]) -> None:
    """Alice's activities are exactly ``uids``: nothing lost, nothing half-written."""
    assert {a["uid"] for a in crm.export(ALICE)["activities"]} == uids


def skip_unless(database_url: str, backend: str) -> None:
    if not database_url.startswith(backend):
        pytest.skip(f"{backend} only")


def test_a_locked_activities_table_answers_503_within_the_lock_timeout(database_url, crm, limited, passwords,
                                                                       caplog):
    skip_unless(database_url, "postgresql")
    waiting = ("PUT", "DELETE", "GET", "sync REPORT", "multiget REPORT")
    with serving(limited) as running, clients(running, passwords) as (alice, bob):
        with postgres_lock(database_url, LOCKING["table"]):
            for what in waiting:
                assert_refused_in_time(*timed(REQUESTS[what], alice), LOCK_TIMEOUT, what)
            poll, elapsed = timed(REQUESTS["poll"], alice)  # the user's row alone: no wait
            assert poll.status_code == 207 and elapsed < MARGIN
            assert dav.request(bob, "PROPFIND", f"/{BOB}/crm/", POLL, "0").status_code == 207
        assert "LockNotAvailable" in caplog.text
        for what in waiting:
            assert REQUESTS[what](alice).is_success, what
    assert_stored(crm, {"kept", "NEW-1"})


def test_a_propfind_answered_by_radicale_under_a_lock_answers_503(database_url, crm, limited, passwords):
    skip_unless(database_url, "postgresql")
    with serving(limited) as running, clients(running, passwords) as (alice, _):
        with postgres_lock(database_url, LOCKING["table"]):
            assert_refused_in_time(*timed(REQUESTS["PROPFIND Depth 1"], alice), LOCK_TIMEOUT, "PROPFIND")


@pytest.mark.parametrize("lock", ["row for update", "row update"])
def test_a_locked_user_row_refuses_that_users_writes_while_other_users_poll_fast(database_url, crm, limited,
                                                                                 passwords, lock):
    skip_unless(database_url, "postgresql")
    with serving(limited) as running, clients(running, passwords) as (alice, bob):
        with postgres_lock(database_url, LOCKING[lock], commit=True):
            for what in ("PUT", "DELETE"):
                assert_refused_in_time(*timed(REQUESTS[what], alice), LOCK_TIMEOUT, what)
            for what in ("GET", "poll", "sync REPORT", "multiget REPORT", "PROPFIND Depth 1"):
                response, elapsed = timed(REQUESTS[what], alice)  # readers do not wait for a row lock
                assert response.is_success and elapsed < MARGIN, (what, response.status_code, elapsed)
            put = threading.Thread(target=REQUESTS["PUT"], args=(alice,))
            put.start()
            wait_for_lock_waiter(database_url)
            poll, elapsed = timed(lambda c: dav.request(c, "PROPFIND", f"/{BOB}/crm/", POLL, "0"), bob)
            assert poll.status_code == 207 and elapsed < 0.5 and put.is_alive()
            put.join()
        assert REQUESTS["PUT"](alice).status_code == 201
        assert REQUESTS["DELETE"](alice).status_code == 204
    assert_stored(crm, {"kept", "NEW-1"})
    assert crm.export(ALICE)["users"][0]["name"] == ("Alice Renamed" if lock == "row update" else "Alice")


def test_a_statement_over_the_statement_timeout_answers_503(database_url, crm, server_settings, passwords,
                                                            caplog):
    skip_unless(database_url, "postgresql")
    settings = settings_with(server_settings, db_lock_timeout_seconds=3, db_statement_timeout_seconds=1)
    with serving(settings) as running, clients(running, passwords) as (alice, _):
        with postgres_lock(database_url, LOCKING["table"]):
            assert_refused_in_time(*timed(REQUESTS["PUT"], alice), 1, "PUT")
        assert "QueryCanceled" in caplog.text
        assert REQUESTS["PUT"](alice).status_code == 201
    assert_stored(crm, {"kept", "gone", "NEW-1"})


def test_the_connection_of_a_timed_out_request_serves_the_next_one(database_url, crm, limited, passwords):
    """One pooled connection: it times out on the lock, then answers again with its limits intact."""
    skip_unless(database_url, "postgresql")
    with (serving(limited, pool_size=1, max_overflow=0) as running,
          clients(running, passwords, sync=False) as (alice, _)):
        with postgres_lock(database_url, LOCKING["table"]):
            assert REQUESTS["PUT"](alice).status_code == 503
        assert REQUESTS["PUT"](alice).status_code == 201
        assert REQUESTS["GET"](alice).status_code == 200
        with running.engine.connect() as connection:
            limits = [connection.execute(text(f"SHOW {name}")).scalar() for name in ("lock_timeout",
                                                                                       "statement_timeout")]
        assert limits == ["1s", "2s"]
    assert_stored(crm, {"kept", "gone", "NEW-1"})


@contextmanager
def sqlite_write_lock(database_url: str) -> Iterator[None]:
    """The SQLite write lock, held by another connection (BEGIN IMMEDIATE) until exit."""
    connection = sqlite3.connect(database_url.removeprefix("sqlite:///"), isolation_level=None)
    try:
        connection.execute("BEGIN IMMEDIATE")
        yield
        connection.execute("ROLLBACK")
    finally:
        connection.close()


def test_a_held_sqlite_write_lock_refuses_writes_with_503_while_readers_answer(database_url, crm, limited,
                                                                               passwords):
    skip_unless(database_url, "sqlite")
    with serving(limited) as running, clients(running, passwords) as (alice, bob):
        with sqlite_write_lock(database_url):
            for what in ("PUT", "DELETE", "PROPPATCH"):
                assert_refused_in_time(*timed(REQUESTS[what], alice), LOCK_TIMEOUT, what)
            for what in ("GET", "poll", "sync REPORT", "multiget REPORT", "PROPFIND Depth 1"):
                response, elapsed = timed(REQUESTS[what], alice)  # WAL: readers never wait for the writer
                assert response.is_success and elapsed < MARGIN, (what, response.status_code, elapsed)
            assert dav.request(bob, "PROPFIND", f"/{BOB}/crm/", POLL, "0").status_code == 207
        assert REQUESTS["PUT"](alice).status_code == 201
        assert REQUESTS["DELETE"](alice).status_code == 204
    assert_stored(crm, {"kept", "NEW-1"})


def test_a_request_waiting_longer_than_the_pool_timeout_answers_503(database_url, crm, limited, passwords):
    with (serving(limited, pool_size=1, max_overflow=0) as running,
          clients(running, passwords, sync=False) as (alice, _)):
        with running.engine.connect():  # the pool's only connection, taken
            assert_refused_in_time(*timed(REQUESTS["poll"], alice), limited.db_pool_timeout_seconds, "poll")
            assert_refused_in_time(*timed(REQUESTS["PUT"], alice), limited.db_pool_timeout_seconds, "PUT")
        assert REQUESTS["poll"](alice).status_code == 207
        assert REQUESTS["PUT"](alice).status_code == 201
    assert_stored(crm, {"kept", "gone", "NEW-1"})
