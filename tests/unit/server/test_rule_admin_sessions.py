"""The admin page's server-side state: sessions end when idle, when too old and at logout; downloads work once."""

from __future__ import annotations

from server.admin.sessions import (
    DOWNLOAD_SECONDS,
    SESSION_IDLE_SECONDS,
    SESSION_MAX_SECONDS,
    DownloadStore,
    SessionStore,
)
from server.admin.web import parse_cookies, set_cookie


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_session_lives_while_used_and_ends_after_the_idle_time():
    clock = Clock()
    store = SessionStore(clock=clock)
    token, session = store.start("admin@example.com")
    clock.now += SESSION_IDLE_SECONDS - 1
    assert store.get(token) is session
    clock.now += SESSION_IDLE_SECONDS - 1  # idle time restarted at the last use
    assert store.get(token) is session
    clock.now += SESSION_IDLE_SECONDS + 1
    assert store.get(token) is None


def test_session_ends_at_its_maximum_age_even_when_used():
    clock = Clock()
    store = SessionStore(clock=clock)
    token, _ = store.start("admin@example.com")
    while clock.now < 1000.0 + SESSION_MAX_SECONDS - 60:
        clock.now += 600
        assert store.get(token) is not None
    clock.now = 1000.0 + SESSION_MAX_SECONDS + 1
    assert store.get(token) is None


def test_session_ends_at_logout_and_unknown_tokens_have_none():
    store = SessionStore(clock=Clock())
    token, session = store.start("admin@example.com")
    assert len(token) >= 43 and len(session.csrf) >= 43 and token != session.csrf
    store.end(token)
    assert store.get(token) is None and store.get("guessed") is None and store.get(None) is None


def test_download_token_serves_once_and_expires():
    clock = Clock()
    store = DownloadStore(clock=clock)
    first = store.offer(email="a@example.com", label="iPhone", password="pw-1")
    assert "pw-1" not in first
    pending = store.take(first)
    assert pending is not None
    assert (pending.email, pending.label, pending.password) == ("a@example.com", "iPhone", "pw-1")
    assert store.take(first) is None
    late = store.offer(email="a@example.com", label="iPad", password="pw-2")
    clock.now += DOWNLOAD_SECONDS + 1
    assert store.take(late) is None


def test_cookie_is_httponly_samesite_strict_and_secure_only_when_asked():
    name, value = set_cookie("s", "t", path="/admin/", secure=False)
    assert (name, value) == ("Set-Cookie", "s=t; Path=/admin/; HttpOnly; SameSite=Strict")
    assert set_cookie("s", "", path="/admin/", secure=True, max_age=0)[1].endswith("; Max-Age=0; Secure")


def test_cookie_header_parsing_keeps_the_first_value_of_a_name_and_skips_junk():
    assert parse_cookies('a=1; junk; b="2"; a=3') == {"a": "1", "b": "2"}
