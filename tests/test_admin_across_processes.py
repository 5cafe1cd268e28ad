"""The admin page's sessions and one-time profile links hold across server processes on one database.

Two servers on the same database stand for two worker processes (or two hosts
behind a proxy): a browser or a phone may land on either.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import closing
from datetime import UTC, datetime

import httpx
import pytest
from sqlalchemy import select

from crm_model.db import make_session_factory
from crm_model.models import ProfileDownload
from crm_model.services import admins as admin_service
from server.config import Settings
from tests.conftest import RunningServer, start_server
from tests.factories import ALICE, user

pytestmark = pytest.mark.e2e
ADMIN, ADMIN_PASSWORD = "admin@zillum.com", "correct horse battery staple"
CSRF = re.compile(r'name="csrf" value="([^"]+)"')
SESSION_COOKIE = "crm_admin_session"


@pytest.fixture
def two_servers(database_url: str, crm) -> Iterator[tuple[RunningServer, RunningServer]]:
    crm.load({"users": [user(ALICE, "Alice Archer")], "activities": []})
    started = [start_server(Settings(database_url=database_url)) for _ in range(2)]
    with make_session_factory(started[0][0].engine).begin() as db:
        admin_service.add_admin(db, email=ADMIN, password=ADMIN_PASSWORD, now=datetime.now(UTC))
    try:
        yield started[0][0], started[1][0]
    finally:
        for running, http_server in started:
            http_server.shutdown()
            http_server.server_close()
            running.engine.dispose()


def _csrf(page: httpx.Response) -> str:
    match = CSRF.search(page.text)
    assert match, page.text
    return match.group(1)


def _log_in(url: str) -> httpx.Client:
    client = httpx.Client(base_url=url, timeout=30)
    form = client.get("/admin/login")
    answer = client.post("/admin/login", data={"csrf": _csrf(form), "email": ADMIN, "password": ADMIN_PASSWORD})
    assert answer.status_code == 303 and answer.headers["location"] == "/admin/"
    return client


def _on(url: str, client: httpx.Client) -> httpx.Client:
    """A client of the server at ``url`` with ``client``'s session cookie (the same browser, another process)."""
    return httpx.Client(base_url=url, timeout=30, cookies={SESSION_COOKIE: client.cookies[SESSION_COOKIE]})


def test_session_and_its_csrf_token_from_one_process_work_on_another_until_logout_there(two_servers):
    a, b = two_servers
    with closing(_log_in(a.url)) as on_a, _on(b.url, on_a) as on_b:
        token = _csrf(on_a.get(f"/admin/users/{ALICE}"))
        page = on_b.get(f"/admin/users/{ALICE}")
        assert page.status_code == 200 and ADMIN in page.text and _csrf(page) == token
        enabled = on_b.post(f"/admin/users/{ALICE}/enable", data={"csrf": token})
        assert enabled.status_code == 200 and 'id="password"' in enabled.text
        assert on_b.post(f"/admin/users/{ALICE}/devices", data={"csrf": "wrong", "label": "x"}).status_code == 403
        logout = on_b.post("/admin/logout", data={"csrf": token})
        assert (logout.status_code, logout.headers["location"]) == (303, "/admin/login")
        after = on_a.get("/admin/")
        assert (after.status_code, after.headers["location"]) == (303, "/admin/login")
        refused = on_a.post(f"/admin/users/{ALICE}/disable", data={"csrf": token})
        assert refused.headers["location"] == "/admin/login"


def test_profile_link_offered_by_one_process_downloads_once_on_another_and_is_gone_everywhere(two_servers):
    a, b = two_servers
    with closing(_log_in(a.url)) as on_a:
        page = on_a.post(f"/admin/users/{ALICE}/devices", data={"csrf": _csrf(on_a.get(f"/admin/users/{ALICE}")),
                                                                "label": "Alice's iPhone"})
        password = re.search(r'id="password">([^<]+)<', page.text).group(1)
        link = re.search(r'id="download" href="([^"]+)"', page.text).group(1)
    path = httpx.URL(link).path
    with httpx.Client(base_url=b.url, timeout=30) as phone_on_b, httpx.Client(base_url=a.url, timeout=30) as on_a:
        download = phone_on_b.get(path)
        assert download.status_code == 200 and password.encode() in download.content
        assert download.headers["content-type"] == "application/x-apple-aspen-config"
        assert on_a.get(path).status_code == 404
        assert phone_on_b.get(path).status_code == 404


def test_a_waiting_profile_link_keeps_no_clear_password_in_the_database(two_servers):
    a, _ = two_servers
    with closing(_log_in(a.url)) as on_a:
        page = on_a.post(f"/admin/users/{ALICE}/devices", data={"csrf": _csrf(on_a.get(f"/admin/users/{ALICE}")),
                                                                "label": "Alice's iPad"})
        password = re.search(r'id="password">([^<]+)<', page.text).group(1)
        token = re.search(r'id="download" href="[^"]+/profile/([^"]+)"', page.text).group(1)
    with make_session_factory(a.engine, write=False).begin() as db:
        rows = db.execute(select(*ProfileDownload.__table__.columns)).all()
    assert len(rows) == 1
    values = [str(value) for value in rows[0]]
    assert "Alice's iPad" in values
    assert not any(password in value or token in value for value in values), values
