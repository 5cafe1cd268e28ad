"""Issue 9 (and SPEC 6): Bob never reads or changes Alice's data, whatever the method and
however the path to her home, calendar or event is spelled.

Every method (PROPFIND at depth 0 and 1, and each kind of REPORT: sync-collection
with Alice's token, multiget of her hrefs, calendar-query, free-busy) is sent by Bob
to Alice's home, calendar and event, through each path trick; requests go out
byte for byte (http.client: no client-side normalisation of "..", "%2e" or "//").
No answer (status, headers, body) may hold Alice's UIDs, titles or descriptions, each
status is a 4xx (OPTIONS aside, which Radicale answers for anyone), and
``crm.export()`` is unchanged. Bob's requests on his own calendar that name Alice's
things (her token, her hrefs, her UID, a COPY into her calendar) may succeed, but
never with her data (a UID names an event within one calendar: Bob may use hers for his own).
"""

from __future__ import annotations

import base64
import http.client
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import pytest

from server.config import Settings
from tests.factories import ALICE, BOB, activity, soon, user, vevent

pytestmark = pytest.mark.e2e

ALICE_SECRETS = ["ALICE-UID-SECRET-1", "ALICE-UID-SECRET-2", "Alice quarterly numbers", "Alice private notes"]
C = 'xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav"'
RANGE = '<C:time-range start="20000101T000000Z" end="20990101T000000Z"/>'
TRICKS: dict[str, Callable[[str], tuple[str, dict[str, str]]]] = {
    "plain": lambda p: (p, {}),
    "dot-dot": lambda p: (f"/{BOB}/crm/../.." + p, {}),
    "encoded-dot-dot": lambda p: (f"/{BOB}/crm/%2e%2e/%2E%2E" + p, {}),
    "double-slashes": lambda p: (p.replace("/", "//"), {}),
    "trailing-dots": lambda p: (p.replace(ALICE, ALICE + ".") + ".", {}),
    "upper-case-email": lambda p: (p.replace(ALICE, ALICE.upper()), {}),
    "encoded-at": lambda p: (p.replace("@", "%40"), {}),
    "script-name": lambda p: (p, {"X-Script-Name": "/caldav"}),
    "script-name-in-path": lambda p: ("/caldav" + p, {"X-Script-Name": "/caldav"}),
}


@pytest.fixture
def server_settings(database_url: str) -> Settings:
    return Settings(database_url=database_url, login_free_failures=1000)


@pytest.fixture
def world(crm, server) -> dict[str, Any]:
    """Alice's two events (known UIDs, titles, hrefs) and Bob's one; Alice's current sync token."""
    crm.load({"users": [user(ALICE), user(BOB)], "activities": [
        activity("a-1", ALICE, soon(1), title=ALICE_SECRETS[2], uid=ALICE_SECRETS[0], href="a-one.ics"),
        activity("a-2", ALICE, soon(2), description=ALICE_SECRETS[3], uid=ALICE_SECRETS[1], href="a-two.ics"),
        activity("b-1", BOB, soon(3), title="Bob's call", uid="BOB-UID-1", href="b-one.ics")]})
    crm.enable(ALICE, "alice-pass")
    crm.enable(BOB, "bob-pass")
    sync = ('<D:sync-collection xmlns:D="DAV:"><D:sync-token/><D:sync-level>1</D:sync-level>'
            "<D:prop><D:getetag/></D:prop></D:sync-collection>")
    status, _, body = _send(server.url, "REPORT", f"/{ALICE}/crm/", sync, {"Depth": "1"}, login=(ALICE, "alice-pass"))
    assert status == 207
    token = body.split(b"<sync-token>")[1].split(b"</sync-token>")[0].decode()
    return {"token": token, "before": crm.export()}


def _send(url: str, method: str, path: str, body: str = "", headers: dict[str, str] | None = None,
          login: tuple[str, str] = (BOB, "bob-pass")) -> tuple[int, list[tuple[str, str]], bytes]:
    """(status, headers, body) of one request sent exactly as given."""
    address = urlsplit(url)
    connection = http.client.HTTPConnection(address.hostname or "", address.port, timeout=30)
    credentials = base64.b64encode(f"{login[0]}:{login[1]}".encode()).decode()
    try:
        connection.request(method, path, body=body.encode(), headers={
            "Authorization": f"Basic {credentials}", "Content-Type": "text/xml; charset=utf-8", **(headers or {})})
        response = connection.getresponse()
        return response.status, response.getheaders(), response.read()
    finally:
        connection.close()


def _requests(token: str) -> list[tuple[str, str, str, dict[str, str]]]:
    """(name, method, body, headers) of every request Bob tries; "{path}" is the target."""
    multiget = "".join(f"<D:href>/{ALICE}/crm/a-{n}.ics</D:href>" for n in ("one", "two"))
    event = vevent(ALICE_SECRETS[0], summary="Bob was here")
    return [
        ("GET", "GET", "", {}), ("HEAD", "HEAD", "", {}), ("PUT", "PUT", event, {"Content-Type": "text/calendar"}),
        ("DELETE", "DELETE", "", {}),
        ("PROPFIND-0", "PROPFIND", "", {"Depth": "0"}), ("PROPFIND-1", "PROPFIND", "", {"Depth": "1"}),
        ("PROPPATCH", "PROPPATCH", '<D:propertyupdate xmlns:D="DAV:"><D:set><D:prop><D:displayname>Bob'
         "</D:displayname></D:prop></D:set></D:propertyupdate>", {}),
        ("REPORT-sync", "REPORT", f'<D:sync-collection xmlns:D="DAV:"><D:sync-token>{token}</D:sync-token>'
         "<D:sync-level>1</D:sync-level><D:prop><D:getetag/></D:prop></D:sync-collection>", {"Depth": "1"}),
        ("REPORT-multiget", "REPORT", f"<C:calendar-multiget {C}><D:prop><D:getetag/><C:calendar-data/>"
         f"</D:prop>{multiget}</C:calendar-multiget>", {"Depth": "1"}),
        ("REPORT-query", "REPORT", f"<C:calendar-query {C}><D:prop><C:calendar-data/></D:prop><C:filter>"
         f'<C:comp-filter name="VCALENDAR"><C:comp-filter name="VEVENT">{RANGE}</C:comp-filter>'
         "</C:comp-filter></C:filter></C:calendar-query>", {"Depth": "1"}),
        ("REPORT-free-busy", "REPORT", f"<C:free-busy-query {C}>{RANGE}</C:free-busy-query>", {"Depth": "1"}),
        ("MKCALENDAR", "MKCALENDAR", "", {}), ("MKCOL", "MKCOL", "", {}),
        ("MOVE", "MOVE", "", {"Destination": f"/{BOB}/crm/stolen.ics"}),
        ("COPY", "COPY", "", {"Destination": f"/{BOB}/crm/copied.ics"}),
        ("POST", "POST", "x", {}), ("OPTIONS", "OPTIONS", "", {}),
    ]


def _leaks(status: int, headers: list[tuple[str, str]], body: bytes) -> list[str]:
    seen = (" ".join(f"{k}: {v}" for k, v in headers) + body.decode("utf-8", "replace")).lower()
    return [secret for secret in ALICE_SECRETS if secret.lower() in seen]


@pytest.mark.parametrize("trick", list(TRICKS))
def test_bob_never_reads_or_changes_alices_data(server, crm, world, trick):
    wrong = []
    for target in (f"/{ALICE}/", f"/{ALICE}/crm/", f"/{ALICE}/crm/a-one.ics"):
        path, extra = TRICKS[trick](target)
        for name, method, body, headers in _requests(world["token"]):
            status, answer_headers, answer = _send(server.url, method, path, body, {**headers, **extra})
            allowed = 200 <= status < 300 if method == "OPTIONS" else 400 <= status < 500
            leaks = _leaks(status, answer_headers, answer)
            if not allowed or leaks:
                wrong.append(f"{name} {path}: {status} {leaks} {answer[:200]!r}")
    assert not wrong, "\n".join(wrong)
    assert crm.export() == world["before"]


def test_bobs_own_requests_that_name_alices_things_never_show_her_data(server, crm, world):
    requests = {name: (method, body, headers) for name, method, body, headers in _requests(world["token"])}
    wrong = []
    for name in ("REPORT-sync", "REPORT-multiget", "REPORT-query", "REPORT-free-busy", "PROPFIND-1", "PUT"):
        method, body, headers = requests[name]
        path = f"/{BOB}/crm/new.ics" if method == "PUT" else f"/{BOB}/crm/"
        status, answer_headers, answer = _send(server.url, method, path, body, headers)
        if status >= 500 or _leaks(status, answer_headers, answer):
            wrong.append(f"{name} on Bob's calendar: {status} {answer[:300]!r}")
    for method, path, headers in [
        ("PROPFIND", "/", {"Depth": "1"}), ("PROPFIND", f"/{BOB}/", {"Depth": "1"}),
        ("COPY", f"/{BOB}/crm/b-one.ics", {"Destination": f"/{ALICE}/crm/b-one.ics"}),
        ("MOVE", f"/{BOB}/crm/b-one.ics", {"Destination": f"/{ALICE}/crm/b-one.ics"}),
        ("COPY", f"/{BOB}/crm/b-one.ics", {"Destination": f"http://h/{ALICE}/crm/x.ics", "Overwrite": "T"}),
    ]:
        status, answer_headers, answer = _send(server.url, method, path, "", headers)
        expected = status < 500 if method == "PROPFIND" else 400 <= status < 500
        if not expected or _leaks(status, answer_headers, answer):
            wrong.append(f"{method} {path} {headers}: {status} {answer[:300]!r}")
    assert not wrong, "\n".join(wrong)
    after = crm.export()
    assert [a for a in after["activities"] if a["owner"] == ALICE] == [
        a for a in world["before"]["activities"] if a["owner"] == ALICE]
    bobs = str([a for a in after["activities"] if a["owner"] == BOB]).lower()
    assert not [text for text in ALICE_SECRETS[2:] if text.lower() in bobs]  # his PUT reused her UID: his own event
