"""The admin page's server-side state: sessions end when idle, when too old and at logout; downloads work once.

The state lives in the database (SQLite, and PostgreSQL when configured), so
a fake clock drives the expiry.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine

from crm_model.db import make_engine, make_session_factory, upgrade_schema
from crm_model.services import admins as admin_service
from crm_model.services.admin_sessions import DOWNLOAD_LIFETIME, SESSION_IDLE, SESSION_MAX
from server.admin.sessions import DownloadStore, SessionStore
from server.admin.web import parse_cookies, set_cookie
from tests.factories import ALICE, user

START = datetime(2030, 1, 1, 9, 0, tzinfo=UTC)
SECOND = timedelta(seconds=1)


class Clock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def engine(database_url: str, crm) -> Iterator[Engine]:
    crm.load({"users": [user(ALICE)], "activities": []})
    engine = make_engine(database_url)
    upgrade_schema(engine)
    try:
        yield engine
    finally:
        engine.dispose()


@pytest.fixture
def admin_id(engine: Engine) -> int:
    with make_session_factory(engine).begin() as db:
        return admin_service.add_admin(db, email="admin@example.com", password="long enough pass",
                                       now=START).id


def _sessions(engine: Engine, clock: Clock) -> SessionStore:
    return SessionStore(write_sessions=make_session_factory(engine), now=clock)


def test_session_lives_while_used_and_ends_after_the_idle_time(engine, admin_id):
    clock = Clock()
    store = _sessions(engine, clock)
    token, session = store.start(admin_id)
    assert session.email == "admin@example.com"
    clock.now += SESSION_IDLE - SECOND
    assert store.get(token).csrf == session.csrf
    clock.now += SESSION_IDLE - SECOND  # idle time restarted at the last use
    assert store.get(token).csrf == session.csrf
    clock.now += SESSION_IDLE + SECOND
    assert store.get(token) is None


def test_session_ends_at_its_maximum_age_even_when_used(engine, admin_id):
    clock = Clock()
    store = _sessions(engine, clock)
    token, _ = store.start(admin_id)
    while clock.now < START + SESSION_MAX - timedelta(minutes=1):
        clock.now += timedelta(minutes=10)
        assert store.get(token) is not None
    clock.now = START + SESSION_MAX + SECOND
    assert store.get(token) is None


def test_session_last_use_is_written_at_most_once_a_minute(engine, admin_id):
    clock = Clock()
    store = _sessions(engine, clock)
    token, _ = store.start(admin_id)
    clock.now += timedelta(seconds=30)
    assert store.get(token).last_seen_at == START
    clock.now += timedelta(seconds=30)
    assert store.get(token).last_seen_at == START + timedelta(minutes=1)


def test_session_ends_at_logout_and_unknown_tokens_have_none(engine, admin_id):
    store = _sessions(engine, Clock())
    token, session = store.start(admin_id)
    assert len(token) >= 43 and len(session.csrf) >= 43 and token != session.csrf
    store.end(token)
    assert store.get(token) is None and store.get("guessed") is None and store.get(None) is None


def test_download_token_serves_once_and_expires(engine):
    clock = Clock()
    store = DownloadStore(write_sessions=make_session_factory(engine), now=clock)
    first = store.offer(email=ALICE, label="iPhone", password="pw-1")
    assert "pw-1" not in first and len(first) >= 43
    pending = store.take(first)
    assert pending is not None
    assert (pending.email, pending.label, pending.password) == (ALICE, "iPhone", "pw-1")
    assert store.take(first) is None and store.take("guessed") is None
    late = store.offer(email=ALICE, label="iPad", password="pw-2")
    clock.now += DOWNLOAD_LIFETIME + SECOND
    assert store.take(late) is None


def test_cookie_is_httponly_samesite_strict_and_secure_only_when_asked():
    name, value = set_cookie("s", "t", path="/admin/", secure=False)
    assert (name, value) == ("Set-Cookie", "s=t; Path=/admin/; HttpOnly; SameSite=Strict")
    assert set_cookie("s", "", path="/admin/", secure=True, max_age=0)[1].endswith("; Max-Age=0; Secure")


def test_cookie_header_parsing_keeps_the_first_value_of_a_name_and_skips_junk():
    assert parse_cookies('a=1; junk; b="2"; a=3') == {"a": "1", "b": "2"}
