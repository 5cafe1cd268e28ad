"""Issue 11, done-when 1 and 3: the admin page at /admin/, in headless Chromium and over plain HTTP.

The browser is Debian's ``chromium`` package (/usr/bin/chromium, installed by
.ci/run), driven by Playwright; nothing downloads a browser. Without it the
browser test is skipped, saying so; the HTTP tests run everywhere. The
SQLite run saves screenshots of the main pages under docs/screenshots/.
"""

from __future__ import annotations

import plistlib
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import caldav
import httpx
import pytest

from crm_model.db import make_session_factory
from crm_model.services import admins as admin_service
from server.config import Settings
from tests import dav
from tests.factories import ALICE, BOB, activity, soon, sync_body, user

pytestmark = pytest.mark.e2e
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run"]
SCREENSHOTS = Path(__file__).parents[1] / "docs" / "screenshots"
ADMIN, ADMIN_PASSWORD = "admin@zillum.com", "correct horse battery staple"
CSRF = re.compile(r'name="csrf" value="([^"]+)"')
CALENDAR = f"/{ALICE}/crm/"


@pytest.fixture
def server_settings(database_url: str) -> Settings:
    return Settings(database_url=database_url, login_free_failures=3)


@pytest.fixture
def site(crm, server):
    """Alice (two synced activities, one of a type not synced, one long before the window), Bob, one admin."""
    crm.load({
        "users": [user(ALICE, "Alice Archer"), user(BOB)],
        "activities": [
            activity("a-1", ALICE, soon(2), title="Product demo"),
            activity("a-2", ALICE, soon(5), title="Pricing call", type="call"),
            activity("a-3", ALICE, soon(3), title="Lunch with the team", type="lunch"),
            activity("a-4", ALICE, datetime.now(UTC) - timedelta(days=400), title="Old kickoff"),
            activity("b-1", BOB, soon(3), title="Bob's meeting"),
        ],
    })
    with make_session_factory(server.engine, write=True).begin() as session:
        admin_service.add_admin(session, email=ADMIN, password=ADMIN_PASSWORD, now=datetime.now(UTC))
    return server


def _csrf(page: httpx.Response) -> str:
    match = CSRF.search(page.text)
    assert match, page.text
    return match.group(1)


def _logged_in(url: str) -> tuple[httpx.Client, str]:
    """An HTTP client with an admin session, and the session's CSRF token."""
    client = httpx.Client(base_url=url, timeout=30)
    form = client.get("/admin/login")
    answer = client.post("/admin/login", data={"csrf": _csrf(form), "email": ADMIN, "password": ADMIN_PASSWORD})
    assert answer.status_code == 303 and answer.headers["location"] == "/admin/"
    return client, _csrf(client.get("/admin/"))


def test_page_without_a_session_redirects_to_the_login(site):
    with httpx.Client(base_url=site.url, timeout=30) as client:
        for path in ("/admin/", f"/admin/users/{ALICE}", f"/admin/users/{ALICE}/preview"):
            answer = client.get(path)
            assert (answer.status_code, answer.headers["location"]) == (303, "/admin/login"), path
        assert client.post(f"/admin/users/{ALICE}/enable", data={"csrf": "x"}).headers["location"] == "/admin/login"


def test_form_post_without_or_with_a_wrong_csrf_token_is_refused_and_changes_nothing(site, crm):
    client, token = _logged_in(site.url)
    assert client.post(f"/admin/users/{ALICE}/enable").status_code == 403
    assert client.post(f"/admin/users/{ALICE}/enable", data={"csrf": token[:-2] + "xx"}).status_code == 403
    assert client.post(f"/admin/users/{ALICE}/devices", data={"label": "Phone"}).status_code == 403
    assert '"enabled": false' in crm.run("caldav", "status", ALICE, "--json").stdout.replace("False", "false")
    assert client.post(f"/admin/users/{ALICE}/enable", data={"csrf": token}).status_code == 200


def test_login_form_post_without_its_csrf_token_is_refused(site):
    with httpx.Client(base_url=site.url, timeout=30) as client:
        answer = client.post("/admin/login", data={"email": ADMIN, "password": ADMIN_PASSWORD})
        assert answer.status_code == 403 and "crm_admin_session" not in answer.headers.get("set-cookie", "")


def test_caldav_app_password_never_opens_the_admin_page(site, crm):
    password = crm.enable(ALICE, "alice-app-password")
    assert site.client(ALICE, password).get(f"/{ALICE}/crm/").status_code == 200  # it does open CalDAV
    with httpx.Client(base_url=site.url, timeout=30) as client:
        answer = client.post("/admin/login", data={"csrf": _csrf(client.get("/admin/login")),
                                                   "email": ALICE, "password": password})
        assert answer.status_code == 403 and "Wrong e-mail or password" in answer.text
        assert "crm_admin_session" not in answer.headers.get("set-cookie", "")
    basic = site.client(ALICE, password).get("/admin/")
    assert (basic.status_code, basic.headers["location"]) == (303, "/admin/login")


def test_failed_admin_logins_are_throttled_with_429_and_retry_after(site):
    with httpx.Client(base_url=site.url, timeout=30) as client:
        token = _csrf(client.get("/admin/login"))
        statuses = [client.post("/admin/login", data={"csrf": token, "email": ADMIN, "password": "wrong"}).status_code
                    for _ in range(5)]
        assert statuses == [403, 403, 403, 403, 429]  # 3 free failures, then a backoff after the 4th
        blocked = client.post("/admin/login", data={"csrf": token, "email": ADMIN, "password": ADMIN_PASSWORD})
        assert blocked.status_code == 429 and int(blocked.headers["retry-after"]) >= 1


def test_session_cookie_is_httponly_samesite_strict_and_secure_only_under_https(site):
    for proto, secure in (("http", False), ("https", True)):
        with httpx.Client(base_url=site.url, timeout=30, headers={"X-Forwarded-Proto": proto}) as client:
            token = _csrf(client.get("/admin/login"))  # its cookie is Secure under https: httpx keeps it back
            answer = client.post("/admin/login", data={"csrf": token, "email": ADMIN, "password": ADMIN_PASSWORD},
                                 headers={"Cookie": f"crm_admin_login={token}"})
            cookie = next(c for c in answer.headers.get_list("set-cookie") if c.startswith("crm_admin_session="))
            assert "; HttpOnly" in cookie and "; SameSite=Strict" in cookie and "; Path=/admin/" in cookie
            assert ("; Secure" in cookie) is secure, (proto, cookie)


def test_profile_link_downloads_the_new_devices_profile_once(site):
    client, token = _logged_in(site.url)
    page = client.post(f"/admin/users/{ALICE}/devices", data={"csrf": token, "label": "Alice's iPad"})
    password = re.search(r'id="password">([^<]+)<', page.text).group(1)
    link = re.search(r'id="download" href="([^"]+)"', page.text).group(1)
    assert password not in link and "<svg" in page.text
    with httpx.Client(timeout=30) as phone:  # no session: the phone scanned the QR code
        download = phone.get(link)
        assert download.headers["content-type"] == "application/x-apple-aspen-config"
        [account] = plistlib.loads(download.content)["PayloadContent"]
        assert (account["CalDAVUsername"], account["CalDAVPassword"]) == (ALICE, password)
        assert phone.get(link).status_code == 404


def test_a_refused_form_value_is_named_on_the_users_page_and_changes_nothing(site):
    client, token = _logged_in(site.url)
    assert client.post(f"/admin/users/{ALICE}/devices", data={"csrf": token, "label": "Phone"}).status_code == 200
    again = client.post(f"/admin/users/{ALICE}/devices", data={"csrf": token, "label": "Phone"})
    assert again.status_code == 400 and "already has a device labelled" in again.text
    assert client.get(f"/admin/users/{ALICE}").text.count("Revoke Phone") == 1
    unknown = client.get("/admin/users/nobody@example.com")
    assert unknown.status_code == 404


@dataclass
class SteadyDevice:
    """A device that polls the calendar by sync token between the admin's steps."""

    client: httpx.Client
    token: str = ""

    def poll(self) -> set[str]:
        answer = dav.parse(dav.request(self.client, "REPORT", CALENDAR, sync_body(self.token, data=False)))
        self.token = answer.sync_token or ""
        return answer.hrefs(200)


@pytest.fixture
def browser_page(tmp_path: Path) -> Iterator[object]:
    if not CHROMIUM.exists():
        pytest.skip("no browser: /usr/bin/chromium is missing (apt-get install -y chromium; .ci/run does it)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(tmp_path / "chromium-profile"), executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True,
            viewport={"width": 390, "height": 844}, device_scale_factor=2, accept_downloads=True)
        try:
            yield context.pages[0] if context.pages else context.new_page()
        finally:
            context.close()


def test_admin_previews_enables_adds_downloads_and_revokes_while_another_device_keeps_syncing(
        site, browser_page, database_url, tmp_path):
    page, shots = browser_page, database_url.startswith("sqlite")
    page.goto(f"{site.url}/admin/users/{ALICE}")
    assert page.url.endswith("/admin/login")
    _shot(page, "login", shots)
    page.fill("#email", ADMIN)
    page.fill("#password", ADMIN_PASSWORD)
    page.click("button[type=submit]")
    page.get_by_role("link", name=ALICE).wait_for()
    _shot(page, "users", shots)

    page.get_by_role("link", name=ALICE).click()
    page.get_by_role("link", name="Preview the calendar").click()
    assert page.inner_text("#offered") == "2"
    assert "Lunch with the team" in page.inner_text("main") and "Old kickoff" in page.inner_text("main")
    _shot(page, "preview", shots)

    page.get_by_role("button", name="Enable CalDAV").click()
    steady = SteadyDevice(site.client(ALICE, page.inner_text("#password")))
    assert len(steady.poll()) == 2  # the two offered activities

    page.get_by_role("link", name=f"← {ALICE}").click()
    page.fill("#label", "Alice's iPhone")
    page.get_by_role("button", name="Add device").click()
    iphone_password = page.inner_text("#password")
    _shot(page, "device-password", shots)
    assert steady.poll() == set()

    with page.expect_download() as download:
        page.click("#download")
    [account] = plistlib.loads(Path(download.value.path()).read_bytes())["PayloadContent"]
    assert account["CalDAVPassword"] == iphone_password
    iphone = caldav.DAVClient(url=account["CalDAVPrincipalURL"], username=account["CalDAVUsername"],
                              password=account["CalDAVPassword"])
    assert [c.get_display_name() for c in iphone.principal().calendars()] == [ALICE]
    assert steady.poll() == set()

    page.goto(f"{site.url}/admin/users/{ALICE}")
    _shot(page, "user", shots)
    page.get_by_role("button", name="Revoke Alice's iPhone").click()
    page.get_by_text("revoked").wait_for()
    assert site.client(ALICE, iphone_password).get(CALENDAR).status_code == 401
    assert steady.poll() == set()

    page.fill("#activity", "a-3")
    page.get_by_role("button", name="Explain").click()
    assert "type 'lunch' is not synced" in page.inner_text("#explanation")
    assert steady.poll() == set()


def _shot(page: object, name: str, save: bool) -> None:
    """A full-page screenshot of the phone-sized page, kept in docs/screenshots/ from the SQLite run."""
    if save:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / f"admin-{name}.png"), full_page=True)  # type: ignore[attr-defined]
